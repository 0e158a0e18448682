// The whole chain, screen → policy → queue → delivery, on loopback with real sockets:
// each client binds its own 127.x.y.z source address to play a distinct Internet host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, openSession, sendRaw, waitForMessages, withoutFirstHeader, ZONE } from './harness.js';
import { connectClient } from '../fakes/scripted-client.js';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MESSAGE =
  'From: Alice <alice@sender.test>\r\nTo: info@example.com\r\nSubject: hello\r\nMessage-ID: <1@sender.test>\r\n\r\nHello,\r\n.leading dot line\r\nbye\r\n';

test('a clean client is greeted with the teaser, and its message arrives byte-for-byte plus a Received: header', async () => {
  const chain = await startChain();
  try {
    const client = await connectClient({ port: chain.port, localAddress: '127.0.10.1' });
    const teaser = await client.readLine(2000);
    assert.match(teaser, /^220-mx1\.example\.net ESMTP/);
    const greeting = await client.readReply(2000);
    assert.equal(greeting.code, 220);
    client.close();

    const session = await openSession(chain.port, '127.0.10.2');
    const info = await sendRaw(session, 'alice@sender.test', ['info@example.com'], MESSAGE);
    session.quit();
    assert.match(String(info.response), /^250 2\.0\.0 Ok: queued as [0-9A-Z]+/);
    const queueId = /queued as ([0-9A-Z]+)/.exec(String(info.response))![1];

    const [delivered] = await waitForMessages(chain.mailbox, 1, 5000);
    assert.deepEqual(delivered.recipients, ['info@example.com']);
    assert.equal(delivered.sender, 'alice@sender.test');
    const received = delivered.body.toString('latin1').split('\r\n')[0];
    assert.match(received, /^Received: from /);
    assert.ok(delivered.body.toString('latin1').includes(`id ${queueId}`), 'Received: names the queue id');
    assert.equal(withoutFirstHeader(delivered.body).toString('latin1'), MESSAGE);
    await chain.log.waitFor((line) => line.event === 'status=sent' && line.queueId === queueId);
    assert.ok(chain.log.events('PASS NEW').length >= 1);
  } finally {
    await chain.close();
  }
});

test('a passed client comes back as PASS OLD and gets the real greeting without the greet wait', async () => {
  const chain = await startChain(['postscreen_greet_wait = 1s']);
  try {
    const first = await connectClient({ port: chain.port, localAddress: '127.0.11.1' });
    assert.match(await first.readLine(3000), /^220-/);
    assert.equal((await first.readReply(3000)).code, 220);
    first.close();
    await chain.log.waitFor((line) => line.event === 'PASS NEW');
    // From now on a greet wait would last 5 minutes: a greeting within the 3 s wait below
    // can only be one without it.
    writeFileSync(chain.configFile, readFileSync(chain.configFile, 'utf8').replace('postscreen_greet_wait = 1s', 'postscreen_greet_wait = 300s'));
    assert.equal(await chain.mx.reload(), true);

    const second = await connectClient({ port: chain.port, localAddress: '127.0.11.1' });
    const line = await second.readLine(3000);
    assert.match(line, /^220 mx1\.example\.net ESMTP/, 'no teaser and no greet wait on PASS OLD');
    second.close();
    await chain.log.waitFor((entry) => entry.event === 'PASS OLD');
  } finally {
    await chain.close();
  }
});

test('a pregreet talker under enforce gets 550 for every RCPT and nothing is queued', async () => {
  const chain = await startChain(['postscreen_greet_action = enforce']);
  try {
    const client = await connectClient({ port: chain.port, localAddress: '127.0.12.1' });
    client.send('EHLO early.bird\r\n');
    await chain.log.waitFor((line) => line.event === 'PREGREET');
    const greeting = await client.readReply(3000);
    assert.equal(greeting.code, 220);
    client.send('HELO bot.example\r\n');
    assert.equal((await client.readReply(2000)).code, 250);
    client.send('MAIL FROM:<bot@spam.test>\r\n');
    assert.equal((await client.readReply(2000)).code, 250);
    client.send('RCPT TO:<info@example.com>\r\n');
    const reply = await client.readReply(2000);
    assert.equal(reply.code, 550);
    // A bot that ignores the refusal pushes its message anyway: DATA, the text, the dot.
    client.send('DATA\r\n');
    assert.match((await client.readReply(2000)).lines.at(-1)!, /^554 5.5.1 Error: no valid recipients$/, 'no 354');
    client.send('Subject: spam\r\n\r\nbuy now\r\n.\r\n');
    client.send('QUIT\r\n');
    assert.equal((await client.waitForCode(221, 2000)).code, 221);
    await client.close();
    // smtpd logs "queued" before it sends a 250; the session is over, so none will come.
    assert.equal(chain.log.events('queued').length, 0);
    assert.deepEqual(readdirSync(join(chain.directory, 'queue', 'incoming')), []);
  } finally {
    await chain.close();
  }
});

test('a pregreet talker under drop gets 521 and is disconnected', async () => {
  const chain = await startChain(['postscreen_greet_action = drop']);
  try {
    const client = await connectClient({ port: chain.port, localAddress: '127.0.12.2' });
    client.send('EHLO early.bird\r\n');
    const lines: string[] = [];
    for (;;) {
      const line = await client.readLine(3000).catch(() => undefined);
      if (line === undefined) break;
      lines.push(line);
      if (/^5\d\d /.test(line)) break;
    }
    assert.match(lines.at(-1) ?? '', /^521 5\.5\.1 /);
    await client.closed;
  } finally {
    await chain.close();
  }
});

test('a client listed with 127.0.0.2 is refused; a 127.255.255.254 answer is not a listing', async () => {
  const chain = await startChain();
  try {
    chain.dns.listDnsbl(ZONE, '127.0.13.1', ['127.0.0.2'], 300);
    chain.dns.listDnsbl(ZONE, '127.0.13.2', ['127.255.255.254'], 300);

    const listed = await connectClient({ port: chain.port, localAddress: '127.0.13.1' });
    let last = '';
    for (;;) {
      const line = await listed.readLine(3000).catch(() => undefined);
      if (line === undefined) break;
      last = line;
      if (/^5\d\d /.test(line)) break;
    }
    assert.match(last, new RegExp(`^521 5\\.7\\.1 Service unavailable; client \\[127\\.0\\.13\\.1\\] blocked using ${ZONE.replace(/\./g, '\\.')}`));

    const session = await openSession(chain.port, '127.0.13.2');
    const info = await sendRaw(session, 'alice@sender.test', ['info@example.com'], MESSAGE);
    session.quit();
    assert.match(String(info.response), /^250 /);
  } finally {
    await chain.close();
  }
});

test('relay to a foreign domain is refused 554 5.7.1; an unknown recipient 550 5.1.1', async () => {
  const chain = await startChain();
  try {
    const session = await openSession(chain.port, '127.0.14.1');
    await assert.rejects(sendRaw(session, 'alice@sender.test', ['someone@foreign.test'], MESSAGE), (error: Error & { response?: string }) => {
      assert.match(String(error.response), /^554 5\.7\.1 <someone@foreign\.test>: Relay access denied/);
      return true;
    });
    session.quit();
    const second = await openSession(chain.port, '127.0.14.2');
    await assert.rejects(sendRaw(second, 'alice@sender.test', ['nobody@example.com'], MESSAGE), (error: Error & { response?: string }) => {
      assert.match(String(error.response), /^550 5\.1\.1 <nobody@example\.com>: Recipient address rejected: User unknown in relay recipient table/);
      return true;
    });
    second.quit();
    await chain.log.waitFor((line) => line.event === 'NOQUEUE: reject' && String(line.msg).includes('Relay access denied'));
  } finally {
    await chain.close();
  }
});

test('an oversize message is refused 552 5.3.4 and nothing is queued', async () => {
  const chain = await startChain();
  try {
    const session = await openSession(chain.port, '127.0.15.1');
    const big = `From: a@sender.test\r\nSubject: big\r\n\r\n${'x'.repeat(76) + '\r\n'}`.repeat(1) + ('y'.repeat(76) + '\r\n').repeat(400);
    await assert.rejects(sendRaw(session, 'alice@sender.test', ['info@example.com'], big), (error: Error & { response?: string }) => {
      assert.match(String(error.response), /^552 5\.3\.4 /);
      return true;
    });
    session.quit();
    // The 552 comes after the partial file is removed; a queued message is logged before its 250.
    assert.equal(chain.log.events('queued').length, 0);
    assert.deepEqual(readdirSync(join(chain.directory, 'queue', 'incoming')), []);
  } finally {
    await chain.close();
  }
});

test('while the mailbox server is down the message stays deferred, and is delivered once it is back', async () => {
  const chain = await startChain();
  try {
    await chain.mailbox.down();
    const session = await openSession(chain.port, '127.0.16.1');
    const info = await sendRaw(session, 'alice@sender.test', ['info@example.com'], MESSAGE);
    session.quit();
    const queueId = /queued as ([0-9A-Z]+)/.exec(String(info.response))![1];
    await chain.log.waitFor((line) => line.event === 'status=deferred' && line.queueId === queueId);
    await chain.mailbox.restart();
    const [delivered] = await waitForMessages(chain.mailbox, 1, 5000);
    assert.equal(withoutFirstHeader(delivered.body).toString('latin1'), MESSAGE);
    await chain.log.waitFor((line) => line.event === 'status=sent' && line.queueId === queueId);
  } finally {
    await chain.close();
  }
});

test('a restart of mxscreen with mail in the queue delivers it', async () => {
  const chain = await startChain();
  try {
    await chain.mailbox.down();
    const session = await openSession(chain.port, '127.0.17.1');
    const info = await sendRaw(session, 'alice@sender.test', ['joe@example.com'], MESSAGE);
    session.quit();
    const queueId = /queued as ([0-9A-Z]+)/.exec(String(info.response))![1];
    await chain.log.waitFor((line) => line.event === 'status=deferred' && line.queueId === queueId);
    await chain.mx.stop();
    await chain.mailbox.restart();
    await chain.restart();
    const [delivered] = await waitForMessages(chain.mailbox, 1, 5000);
    assert.deepEqual(delivered.recipients, ['joe@example.com']);
    await chain.log.waitFor((line) => line.event === 'status=sent' && line.queueId === queueId);
  } finally {
    await chain.close();
  }
});

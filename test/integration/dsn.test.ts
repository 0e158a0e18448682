// DSN (RFC 3461) end to end: an SMTP client gives NOTIFY, ORCPT, RET and ENVID to mxscreen;
// they travel in the queue file to the mailbox server when it offers DSN (each RCPT TO with
// its own recipient's values, one transaction), and decide our own notices (RFC 3464) when
// it does not, when it refuses a recipient, and when delivery is late.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, waitForMessages, type Chain } from './harness.js';
import { connectClient } from '../fakes/scripted-client.js';
import type { ReceivedMessage } from '../../src/sink/sink.js';

const WAIT = 3000;
const BODY_LINE = 'Only a returned whole message has this line.';
const MESSAGE = `From: alice@example.com\r\nTo: joe@example.com\r\nSubject: dsn test\r\nMessage-ID: <dsn@example.com>\r\n\r\n${BODY_LINE}\r\n`;

/**
 * Sends one message from 127.0.0.1 (mynetworks: no screening) with `mail` as the MAIL FROM
 * line and `rcpts` as the RCPT TO lines, each answered 250; resolves the queue id.
 */
async function submit(chain: Chain, mail: string, rcpts: readonly string[]): Promise<string> {
  const client = await connectClient({ port: chain.port, localAddress: '127.0.0.1' });
  try {
    const say = async (line: string, code: number): Promise<string> => {
      client.send(`${line}\r\n`);
      const reply = await client.readReply(WAIT);
      assert.equal(reply.code, code, `${line} → ${reply.lines.join(' | ')}`);
      return reply.lines.at(-1)!;
    };
    assert.equal((await client.readReply(WAIT)).code, 220);
    await say('EHLO client.example', 250);
    await say(mail, 250);
    for (const rcpt of rcpts) await say(rcpt, 250);
    await say('DATA', 354);
    const done = await say(`${MESSAGE}.`, 250);
    client.send('QUIT\r\n');
    return /queued as (\S+)/.exec(done)![1]!;
  } finally {
    await client.close();
  }
}

/** Resolves when message `id` is gone from the queue (every recipient sent or bounced, notices queued). */
async function removed(chain: Chain, id: string): Promise<void> {
  await chain.log.waitFor((line) => line.event === 'removed' && line.queueId === id, WAIT);
}

/** The notices (from <>) the mailbox server received. */
function notices(chain: Chain): ReceivedMessage[] {
  return chain.mailbox.received.filter((message) => message.sender === '');
}

/** The message/delivery-status part of a notice: its per-message block, then one block per recipient. */
function deliveryStatus(notice: ReceivedMessage): { perMessage: string; recipients: string[] } {
  const text = notice.body.toString('latin1');
  const start = text.indexOf('Reporting-MTA: ');
  assert.ok(start >= 0, 'a message/delivery-status part');
  const blocks = text.slice(start, text.indexOf('\r\n--', start)).split('\r\n\r\n').filter((block) => block.trim() !== '');
  return { perMessage: blocks[0]!, recipients: blocks.slice(1) };
}

/** Fields of a recipient block of a report, by field name: `Final-Recipient` → `rfc822; x@y`. */
function fields(block: string): Record<string, string> {
  return Object.fromEntries(block.split('\r\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
}

/** `notice` reports on exactly one recipient, `report` (its fields as they must be; Original-Recipient absent when undefined), of the message with ENVID `envid`. */
function assertSingleReport(notice: ReceivedMessage, envid: string, report: { final: string; original: string | undefined; action: string }): void {
  const status = deliveryStatus(notice);
  assert.match(status.perMessage, new RegExp(`^Original-Envelope-Id: ${envid}$`, 'm'));
  assert.equal(status.recipients.length, 1, status.recipients.join('\n--\n'));
  const block = fields(status.recipients[0]!);
  assert.deepEqual({ final: block['Final-Recipient'], original: block['Original-Recipient'], action: block['Action'] }, report);
}

/** The DSN parameters among `parameters` (smtp-server's decoded MAIL/RCPT arguments). */
function dsnOnly(parameters: Readonly<Record<string, string | boolean>>): Record<string, string | boolean> {
  return Object.fromEntries(Object.entries(parameters).filter(([key]) => ['RET', 'ENVID', 'NOTIFY', 'ORCPT'].includes(key)));
}

test('a nexthop that offers DSN gets MAIL FROM with RET and ENVID and each RCPT TO with its own NOTIFY and ORCPT, in one transaction; we send no success notice', async () => {
  const chain = await startChain();
  try {
    chain.mailbox.setOfferDsn(true);
    const id = await submit(chain, 'MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ+2B314159', [
      'RCPT TO:<joe@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;joe+2BABC@example.net',
      'RCPT TO:<info@example.com> NOTIFY=NEVER',
    ]);
    await removed(chain, id);
    const [message] = await waitForMessages(chain.mailbox, 1, WAIT);
    assert.deepEqual(message!.recipients, ['joe@example.com', 'info@example.com']);
    // Decoded by the mailbox server: what we sent was xtext again (joe+ABC, QQ+314159: without it, +AB and +31 would decode).
    assert.deepEqual(dsnOnly(message!.parameters.mail), { RET: 'HDRS', ENVID: 'QQ+314159' });
    assert.deepEqual(message!.parameters.rcpt.map(dsnOnly), [{ NOTIFY: 'SUCCESS,DELAY', ORCPT: 'rfc822;joe+ABC@example.net' }, { NOTIFY: 'NEVER' }]);
    assert.equal(chain.mailbox.connections, 1);
    // RFC 3461 §5.2.2: the DSN-capable nexthop reports success from here on, not us.
    assert.equal(chain.log.events('sender delivery status notification').length, 0);
    assert.equal(chain.mailbox.received.length, 1);
  } finally {
    await chain.close();
  }
});

test('a nexthop without DSN gets none of the parameters; NOTIFY=SUCCESS recipients get our "relayed" notice with ENVID, their own ORCPT and the headers only', async () => {
  const chain = await startChain();
  try {
    const id = await submit(chain, 'MAIL FROM:<alice@example.com> RET=FULL ENVID=ENV+2D2', [
      'RCPT TO:<joe@example.com> NOTIFY=SUCCESS ORCPT=rfc822;joe-orig@example.net',
      'RCPT TO:<info@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;info-orig@example.net',
    ]);
    await removed(chain, id);
    const messages = await waitForMessages(chain.mailbox, 2, WAIT);
    const delivered = messages.find((message) => message.sender === 'alice@example.com')!;
    assert.deepEqual(delivered.recipients, ['joe@example.com', 'info@example.com']);
    assert.deepEqual(dsnOnly(delivered.parameters.mail), {});
    assert.deepEqual(delivered.parameters.rcpt.map(dsnOnly), [{}, {}]);
    const [notice, ...more] = notices(chain);
    assert.deepEqual(more, []);
    assert.deepEqual(notice!.recipients, ['alice@example.com']);
    assertSingleReport(notice!, 'ENV-2', { final: 'rfc822; joe@example.com', original: 'rfc822;joe-orig@example.net', action: 'relayed' });
    const text = notice!.body.toString('latin1');
    assert.match(text, /^Content-Type: text\/rfc822-headers/m);
    assert.match(text, /^Subject: dsn test\r$/m);
    assert.ok(!text.includes(BODY_LINE), 'a success notice returns the headers only, whatever RET says');
    assert.equal(chain.log.events('sender delivery status notification').length, 1);
  } finally {
    await chain.close();
  }
});

test('bounces: only NOTIFY=FAILURE (or no NOTIFY) recipients are named, each with its own ORCPT, with ENVID; RET=FULL returns the message, RET=HDRS its headers; NOTIFY=NEVER gets none', async () => {
  const chain = await startChain();
  try {
    chain.mailbox.setMode('reject', 'joe@example.com');
    chain.mailbox.setMode('reject', 'info@example.com');
    const full = await submit(chain, 'MAIL FROM:<alice@example.com> RET=FULL ENVID=A-1', [
      'RCPT TO:<joe@example.com> ORCPT=rfc822;first@example.net',
      'RCPT TO:<info@example.com> NOTIFY=FAILURE ORCPT=rfc822;second@example.net',
    ]);
    const headers = await submit(chain, 'MAIL FROM:<alice@example.com> RET=HDRS ENVID=B-2', [
      'RCPT TO:<joe@example.com> NOTIFY=NEVER ORCPT=rfc822;third@example.net',
      'RCPT TO:<info@example.com> NOTIFY=FAILURE,DELAY',
    ]);
    const never = await submit(chain, 'MAIL FROM:<alice@example.com> ENVID=C-3', ['RCPT TO:<joe@example.com> NOTIFY=NEVER']);
    for (const id of [full, headers, never]) await removed(chain, id);
    assert.equal(chain.log.events('status=bounced').length, 5);
    // Notices are queued before their message is removed: these are all of them.
    assert.equal(chain.log.events('sender non-delivery notification').length, 2);
    await waitForMessages(chain.mailbox, 2, WAIT);
    const byEnvid = new Map(notices(chain).map((notice) => [/^Original-Envelope-Id: (\S+)$/m.exec(deliveryStatus(notice).perMessage)?.[1], notice]));
    assert.deepEqual([...byEnvid.keys()].sort(), ['A-1', 'B-2'], 'no bounce for NOTIFY=NEVER alone');

    assert.deepEqual(
      deliveryStatus(byEnvid.get('A-1')!).recipients.map(fields).map((block) => [block['Final-Recipient'], block['Original-Recipient'], block['Action']]),
      [
        ['rfc822; joe@example.com', 'rfc822;first@example.net', 'failed'],
        ['rfc822; info@example.com', 'rfc822;second@example.net', 'failed'],
      ],
    );
    const fullText = byEnvid.get('A-1')!.body.toString('latin1');
    assert.match(fullText, /^Content-Type: message\/rfc822/m);
    assert.ok(fullText.includes(BODY_LINE), 'RET=FULL returns the whole message');

    assertSingleReport(byEnvid.get('B-2')!, 'B-2', { final: 'rfc822; info@example.com', original: undefined, action: 'failed' });
    const headersText = byEnvid.get('B-2')!.body.toString('latin1');
    assert.match(headersText, /^Content-Type: text\/rfc822-headers/m);
    assert.match(headersText, /^Subject: dsn test\r$/m);
    assert.ok(!headersText.includes(BODY_LINE), 'RET=HDRS returns the headers only');
  } finally {
    await chain.close();
  }
});

test('delay notices: only NOTIFY=DELAY recipients are named, with their own ORCPT and ENVID, once', async () => {
  // delay_warning_time of 1 ms: the notice is due at the first attempt that finds the message older.
  const chain = await startChain(['delay_warning_time = 1ms']);
  try {
    chain.mailbox.setMode('tempfail', 'joe@example.com');
    chain.mailbox.setMode('tempfail', 'info@example.com');
    const id = await submit(chain, 'MAIL FROM:<alice@example.com> ENVID=D-4', [
      'RCPT TO:<joe@example.com> NOTIFY=FAILURE ORCPT=rfc822;joe-orig@example.net',
      'RCPT TO:<info@example.com> NOTIFY=DELAY,FAILURE ORCPT=rfc822;info-orig@example.net',
    ]);
    await chain.log.waitFor((line) => line.event === 'sender delay notification' && line.queueId === id, WAIT);
    const [notice] = await waitForMessages(chain.mailbox, 1, WAIT);
    assert.equal(notice!.sender, '');
    assertSingleReport(notice!, 'D-4', { final: 'rfc822; info@example.com', original: 'rfc822;info-orig@example.net', action: 'delayed' });
    assert.ok(!notice!.body.toString('latin1').includes(BODY_LINE), 'a delay notice returns the headers only');
    // Once: later attempts (every minimal_backoff_time) send no second notice.
    const attempts = chain.log.events('status=deferred').length;
    await chain.log.waitFor((line) => line.event === 'status=deferred' && chain.log.events('status=deferred').length >= attempts + 4, WAIT);
    assert.equal(chain.log.events('sender delay notification').length, 1);
  } finally {
    await chain.close();
  }
});

// postscreen's "after 220" tests run on the live session through the whole chain: a new
// client passes them and delivers on its first connection; a pipelining bot under
// enforce is refused before DATA and nothing is queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, openSession, sendRaw, waitForMessages } from './harness.js';
import { connectClient } from '../fakes/scripted-client.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const DEEP = [
  'postscreen_pipelining_enable = yes',
  'postscreen_pipelining_action = enforce',
  'postscreen_non_smtp_command_enable = yes',
  'postscreen_non_smtp_command_action = drop',
  'postscreen_bare_newline_enable = yes',
  'postscreen_bare_newline_action = enforce',
];
const MESSAGE = 'From: a@sender.test\r\nTo: info@example.com\r\nSubject: deep\r\n\r\nfirst connection\r\n';

test('a new client passes every deep test and delivers on its first connection; the pass is cached', async () => {
  const chain = await startChain(DEEP);
  try {
    const session = await openSession(chain.port, '127.0.50.1');
    const info = await sendRaw(session, 'a@sender.test', ['info@example.com'], MESSAGE);
    session.quit();
    assert.match(String(info.response), /^250 2\.0\.0 Ok: queued as /);
    const [delivered] = await waitForMessages(chain.mailbox, 1, 5000);
    assert.deepEqual(delivered?.recipients, ['info@example.com']);
    assert.equal(chain.log.events('PASS NEW').length, 1);
    for (const event of ['COMMAND PIPELINING', 'NON-SMTP COMMAND', 'BARE NEWLINE']) assert.equal(chain.log.events(event).length, 0, event);

    const again = await connectClient({ port: chain.port, localAddress: '127.0.50.1' });
    assert.match(await again.readLine(3000), /^220 /, 'PASS OLD: no teaser, no test to run again');
    await again.close();
    await chain.log.waitFor((line) => line.event === 'PASS OLD');
  } finally {
    await chain.close();
  }
});

test('a pipelining client under enforce is refused before DATA and nothing is queued', async () => {
  const chain = await startChain(DEEP);
  try {
    const client = await connectClient({ port: chain.port, localAddress: '127.0.50.2' });
    assert.equal((await client.waitForCode(220, 3000)).code, 220);
    client.send('HELO bot.example\r\n');
    assert.equal((await client.readReply(2000)).code, 250);
    client.send('MAIL FROM:<bot@spam.test>\r\nRCPT TO:<info@example.com>\r\nDATA\r\nhello spam\r\n.\r\nQUIT\r\n');
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const reply = await client.readReply(2000).catch(() => undefined);
      if (!reply) break;
      codes.push(reply.code);
    }
    assert.ok(!codes.includes(354), `no 354: ${codes.join(' ')}`);
    assert.ok(codes.some((code) => code === 550), `a 550 5.5.1 before DATA: ${codes.join(' ')}`);
    await chain.log.waitFor((line) => line.event === 'COMMAND PIPELINING');
    // The session is over (QUIT answered); a queued message is logged before its 250, and
    // its file would be in incoming/.
    assert.equal(codes.at(-1), 221, `the session ended with QUIT: ${codes.join(' ')}`);
    assert.equal(chain.log.events('queued').length, 0);
    assert.deepEqual(readdirSync(join(chain.directory, 'queue', 'incoming')), []);
    await client.close();
  } finally {
    await chain.close();
  }
});

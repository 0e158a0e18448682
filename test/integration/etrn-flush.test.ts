// ETRN through the whole chain: a deferred message waits out a long backoff until a client
// sends `ETRN example.com` (fast_flush_domains = $relay_domains), then it is delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, openSession, sendRaw, waitForMessages } from './harness.js';
import { connectClient } from '../fakes/scripted-client.js';

test('ETRN for a relay domain answers 250 Queuing started and delivers its deferred mail now', async () => {
  const chain = await startChain(['minimal_backoff_time = 1h', 'maximal_backoff_time = 2h', 'queue_run_delay = 1h']);
  try {
    await chain.mailbox.down();
    const session = await openSession(chain.port, '127.0.12.1');
    await sendRaw(session, 'alice@example.org', ['info@example.com'], 'Subject: etrn\r\n\r\nwaiting\r\n');
    session.close();
    await chain.log.waitFor((line) => line.event === 'status=deferred');
    await chain.mailbox.restart();

    const client = await connectClient({ port: chain.port, localAddress: '127.0.12.2' });
    await client.waitForCode(220, 3000);
    client.send('EHLO client.example.org\r\n');
    await client.waitForCode(250, 2000);
    client.send('ETRN example.com\r\n');
    const reply = await client.readReply(2000);
    assert.equal(reply.code, 250);
    assert.match(reply.lines.at(-1)!, /Queuing started/);
    await client.close();
    const [message] = await waitForMessages(chain.mailbox, 1, 3000);
    assert.ok(message!.body.toString().includes('waiting'));
  } finally {
    await chain.close();
  }
});

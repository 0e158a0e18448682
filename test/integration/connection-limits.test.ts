// Per-client connection limits as Postfix counts them, through the whole chain with 60
// parallel sessions: postscreen counts a client's connections in the screen stage only,
// smtpd counts its own (smtpd_client_connection_count_limit, 50) and exempts
// smtpd_client_event_limit_exceptions ($mynetworks). Every wait is for an event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, waitForMessages } from './harness.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';

const PARALLEL = 60;

function connectMany(port: number, localAddress: string, count: number): Promise<ScriptedClient[]> {
  return Promise.all(Array.from({ length: count }, () => connectClient({ port, localAddress, timeoutMs: 5000 })));
}

async function expectReply(client: ScriptedClient, command: string, code: number): Promise<void> {
  client.send(`${command}\r\n`);
  const reply = await client.readReply(5000);
  assert.equal(reply.code, code, `${command}: ${reply.lines.join(' / ')}`);
}

test('a trusted host (mynetworks) runs 60 parallel sessions: every one is greeted and every message is accepted and delivered', async () => {
  const chain = await startChain();
  try {
    const clients = await connectMany(chain.port, '127.0.0.1', PARALLEL);
    const greetings = await Promise.all(clients.map((client) => client.readLine(5000)));
    for (const greeting of greetings) assert.match(greeting, /^220 mx1\.example\.net ESMTP/);
    // All 60 are open in the smtpd stage at once before any message is sent.
    await Promise.all(
      clients.map(async (client, index) => {
        await expectReply(client, 'EHLO trusted.example', 250);
        await expectReply(client, 'MAIL FROM:<relay@trusted.example>', 250);
        await expectReply(client, 'RCPT TO:<info@example.com>', 250);
        await expectReply(client, 'DATA', 354);
        await expectReply(client, `Subject: parallel ${index}\r\n\r\nbody ${index}\r\n.`, 250);
        await expectReply(client, 'QUIT', 221);
      }),
    );
    const delivered = await waitForMessages(chain.mailbox, PARALLEL, 20_000);
    assert.equal(delivered.length, PARALLEL);
    assert.equal(chain.log.events('Connection concurrency limit exceeded').length, 0);
    assert.equal(chain.log.events('NOQUEUE: reject').length, 0);
  } finally {
    await chain.close();
  }
});

test('an Internet client that is PASS OLD opens 60 parallel sessions: 50 are greeted, the other 10 get smtpd\'s 421 at once while the 50 stay open', async () => {
  const chain = await startChain();
  try {
    const first = await connectClient({ port: chain.port, localAddress: '127.0.61.1' });
    assert.match(await first.readLine(3000), /^220-/);
    assert.equal((await first.readReply(3000)).code, 220);
    await first.close();
    await chain.log.waitFor((line) => line.event === 'PASS NEW');

    const clients = await connectMany(chain.port, '127.0.61.1', PARALLEL);
    const firstLines = await Promise.all(clients.map((client) => client.readLine(5000)));
    const greeted = clients.filter((_, index) => firstLines[index]!.startsWith('220 '));
    const refused = clients.filter((_, index) => !firstLines[index]!.startsWith('220 '));
    assert.equal(greeted.length, 50);
    assert.deepEqual(
      [...new Set(refused.map((client) => firstLines[clients.indexOf(client)]))],
      ['421 4.7.0 mx1.example.net Error: too many connections from 127.0.61.1'],
    );
    assert.equal(refused.length, 10);
    await Promise.all(refused.map((client) => client.waitForEnd(5000)));
    assert.ok(greeted.every((client) => !client.ended), 'the 421 came while the 50 admitted sessions were still open');
    const warnings = chain.log.events('Connection concurrency limit exceeded');
    assert.equal(warnings.length, 10);
    for (const warning of warnings) {
      assert.equal(warning.msg, 'Connection concurrency limit exceeded: 51 from unknown[127.0.61.1] for service smtpd');
      assert.equal(warning.level, 'warn');
    }
    assert.equal(chain.log.events('PASS OLD').length, PARALLEL, 'the screen stage let every one through: only smtpd counts them');
    // The admitted sessions still work.
    await expectReply(greeted[0]!, 'EHLO internet.example', 250);
    await Promise.all(greeted.map((client) => client.close()));
  } finally {
    await chain.close();
  }
});

test('an Internet client opens 60 parallel connections while it is being screened: 50 wait in the screen stage, the other 10 get postscreen\'s 421 at once', async () => {
  const chain = await startChain(['postscreen_greet_wait = 60s']);
  try {
    const clients = await connectMany(chain.port, '127.0.62.1', PARALLEL);
    const firstLines = await Promise.all(clients.map((client) => client.readLine(5000)));
    const screening = clients.filter((_, index) => firstLines[index]!.startsWith('220-'));
    const refused = clients.filter((_, index) => !firstLines[index]!.startsWith('220-'));
    assert.equal(screening.length, 50);
    assert.deepEqual([...new Set(refused.map((client) => firstLines[clients.indexOf(client)]))], ['421 4.7.0 Error: too many connections']);
    await Promise.all(refused.map((client) => client.waitForEnd(5000)));
    assert.ok(screening.every((client) => !client.ended), 'the 421 came while the 50 were still in the greet wait');
    const rejects = chain.log.events('NOQUEUE: reject');
    assert.equal(rejects.length, 10);
    for (const reject of rejects) assert.match(String(reject.msg), /^NOQUEUE: reject: CONNECT from \[127\.0\.62\.1\]:\d+: too many connections$/);
    await Promise.all(screening.map((client) => client.close()));
  } finally {
    await chain.close();
  }
});

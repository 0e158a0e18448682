import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { connectSmtp, messageIdOf, relayMainCf, sendOne, startMxscreenProcess, testMessage } from './mxscreen-process.js';

/** A free loopback port (so a restarted mxscreen listens where the clients went). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const SESSIONS = 8;
const LIMIT = 4; // default_destination_concurrency_limit: at most this many deliveries in flight

test('crash safety: after SIGKILL under load, every 250 reaches the mailbox; duplicates only from deliveries in flight', { timeout: 30_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-crash-'));
  const mailbox = await MailboxServer.start();
  const arrivals: { id: string; beforeKill: boolean }[] = [];
  let killed = false;
  /** The second mxscreen is starting: what arrives from now on was delivered by it. */
  let restarted = false;
  const seen = mailbox.received.length;
  const port = await freePort();
  writeFileSync(
    join(work, 'main.cf'),
    relayMainCf(`127.0.0.1:${port}`, mailbox.port, [
      `default_destination_concurrency_limit = ${LIMIT}`,
      'minimal_backoff_time = 100ms',
      'maximal_backoff_time = 200ms',
      'queue_run_delay = 100ms',
    ]),
  );
  let first = await startMxscreenProcess(join(work, 'main.cf'));
  try {
    const accepted = new Set<string>();
    const record = () => {
      for (const message of mailbox.received.splice(seen)) {
        const id = messageIdOf(message.body);
        if (id) arrivals.push({ id, beforeKill: !restarted });
      }
    };
    const stopAt = Date.now() + 400;
    const senders = Array.from({ length: SESSIONS }, async (_, session) => {
      let connection;
      try {
        connection = await connectSmtp(first.port, `127.0.5.${session + 1}`);
      } catch {
        return;
      }
      // Bounded: until the kill (about 400 ms) and at most 200 messages per session.
      for (let n = 0; n < 200 && Date.now() < stopAt + 1000 && !killed; n += 1) {
        const id = `s${session}n${n}`;
        if (await sendOne(connection, 'load@sender.test', 'info@example.com', testMessage(id, 2048))) accepted.add(id);
        else break;
      }
      connection.close();
    });
    // Kill while clients send and deliveries are in flight.
    await new Promise((resolve) => setTimeout(resolve, 400));
    record();
    killed = true;
    first.child.kill('SIGKILL');
    await first.exited;
    await Promise.all(senders);
    assert.ok(accepted.size > 20, `load too small: ${accepted.size} accepted`);
    // A message on the wire to the mailbox at the kill was in flight too: let the mailbox
    // finish reading what the first process sent before the second one starts.
    await new Promise((resolve) => setTimeout(resolve, 50));
    record();
    restarted = true;

    first = await startMxscreenProcess(join(work, 'main.cf'));
    const deadline = Date.now() + 10_000;
    // Bounded by the deadline: wait until every accepted message has arrived.
    for (;;) {
      record();
      const arrived = new Set(arrivals.map((a) => a.id));
      if ([...accepted].every((id) => arrived.has(id)) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // let late duplicates show
    record();

    const arrived = new Set(arrivals.map((a) => a.id));
    const lost = [...accepted].filter((id) => !arrived.has(id));
    assert.deepEqual(lost, [], 'no accepted message is lost');
    const counts = new Map<string, number>();
    for (const { id } of arrivals) counts.set(id, (counts.get(id) ?? 0) + 1);
    const duplicates = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
    const deliveredBeforeKill = new Set(arrivals.filter((a) => a.beforeKill).map((a) => a.id));
    for (const id of duplicates) assert.ok(deliveredBeforeKill.has(id), `${id} was delivered twice but not in flight at the kill`);
    assert.ok(duplicates.length <= LIMIT, `${duplicates.length} duplicates, more than the ${LIMIT} deliveries that can be in flight`);
    for (const [id, count] of counts) assert.ok(count <= 2, `${id} delivered ${count} times`);
  } finally {
    first.child.kill('SIGKILL');
    await first.exited;
    await mailbox.close();
    rmSync(work, { recursive: true, force: true });
  }
});

// Crash safety of the whole process: mxscreen is SIGKILLed while clients send and while
// deliveries are in flight; a second process on the same queue delivers the rest.
// Every wait is for an event (a count reached, the queue empty), bounded in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { connectSmtp, messageIdOf, relayMainCf, sendOne, startMxscreenProcess, testMessage } from './mxscreen-process.js';

const SESSIONS = 8;
const LIMIT = 4; // default_destination_concurrency_limit: at most this many deliveries in flight
/** Kill once this many messages got their 250 and this many reached the mailbox server. */
const KILL_AFTER = { accepted: 40, delivered: 5 };

/** Resolves once `ready()` holds, polling every 20 ms; rejects after `timeoutMs`. */
async function until(what: string, ready: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (let waited = 0; !ready(); waited += 20) {
    if (waited >= timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The messages' Message-IDs, in arrival order. */
function arrivedIds(mailbox: MailboxServer): string[] {
  return mailbox.received.map((message) => messageIdOf(message.body)).filter((id): id is string => id !== undefined);
}

/** Queue files still to deliver (a `.tmp` file the kill cut short never got its 250). */
function queuedFiles(queueDirectory: string): string[] {
  return ['incoming', 'active', 'deferred'].flatMap((queue) => {
    try {
      return readdirSync(join(queueDirectory, queue)).filter((name) => !name.endsWith('.tmp'));
    } catch {
      return [];
    }
  });
}

test('crash safety: after SIGKILL under load, every 250 reaches the mailbox; duplicates only from deliveries in flight', { timeout: 60_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-crash-'));
  // The first process delivers to `before`, the second to `after`: where a message arrived
  // says which process delivered it, whatever the timing of the kill.
  const before = await MailboxServer.start();
  const after = await MailboxServer.start();
  const mainCf = (mailbox: MailboxServer) =>
    relayMainCf('127.0.0.1:0', mailbox.port, [
      `default_destination_concurrency_limit = ${LIMIT}`,
      'minimal_backoff_time = 100ms',
      'maximal_backoff_time = 200ms',
      'queue_run_delay = 100ms',
    ]);
  writeFileSync(join(work, 'main.cf'), mainCf(before));
  let mx = await startMxscreenProcess(join(work, 'main.cf'));
  try {
    const accepted = new Set<string>();
    let killed = false;
    const senders = Array.from({ length: SESSIONS }, async (_, session) => {
      let connection;
      try {
        connection = await connectSmtp(mx.port, `127.0.5.${session + 1}`);
      } catch {
        return;
      }
      // Bounded: until the kill, at most 200 messages per session.
      for (let n = 0; n < 200 && !killed; n += 1) {
        const id = `s${session}n${n}`;
        if (await sendOne(connection, 'load@sender.test', 'info@example.com', testMessage(id, 2048))) accepted.add(id);
        else break;
      }
      connection.close();
    });
    // Kill while clients send and deliveries are in flight.
    await until('load and deliveries under way', () => accepted.size >= KILL_AFTER.accepted && before.received.length >= KILL_AFTER.delivered);
    killed = true;
    mx.child.kill('SIGKILL');
    await mx.exited;
    await Promise.all(senders);

    writeFileSync(join(work, 'main.cf'), mainCf(after));
    mx = await startMxscreenProcess(join(work, 'main.cf'));
    const arrived = () => new Set([...arrivedIds(before), ...arrivedIds(after)]);
    await until('every accepted message to arrive', () => [...accepted].every((id) => arrived().has(id))).catch(() => undefined);
    // Late duplicates can only come from what is still queued: wait until nothing is.
    await until('the queue to be empty', () => queuedFiles(join(work, 'queue')).length === 0).catch(() => undefined);

    const lost = [...accepted].filter((id) => !arrived().has(id));
    assert.deepEqual(lost, [], 'no accepted message is lost');
    const counts = new Map<string, number>();
    for (const id of [...arrivedIds(before), ...arrivedIds(after)]) counts.set(id, (counts.get(id) ?? 0) + 1);
    const duplicates = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
    const deliveredBeforeKill = new Set(arrivedIds(before));
    for (const id of duplicates) assert.ok(deliveredBeforeKill.has(id), `${id} was delivered twice but not in flight at the kill`);
    assert.ok(duplicates.length <= LIMIT, `${duplicates.length} duplicates, more than the ${LIMIT} deliveries that can be in flight`);
    for (const [id, count] of counts) assert.ok(count <= 2, `${id} delivered ${count} times`);
    assert.deepEqual(queuedFiles(join(work, 'queue')), [], 'the second process delivered everything');
  } finally {
    mx.child.kill('SIGKILL');
    await mx.exited;
    await before.close();
    await after.close();
    rmSync(work, { recursive: true, force: true });
  }
});

/*
 * bench/queue-100k — the queue with 100,000 messages in deferred/.
 *
 * Decides: the setup (`--messages` small queue files and their state files written
 * directly with the queue-file encoder, `--due` of them due now, the rest in an hour),
 * and the figures printed as JSON: setup time, start-up time (Spool.open + QueueManager
 * start: recovery, schedule index from state files, first queue run taking the due
 * ones), the time until the due messages reached a Sink on loopback, a queue run with
 * nothing due, and the process's RSS. The queue run is the manager's own, fired by its
 * queue_run_delay timer: the queue manager runs on a ManualClock (test/queue), moved on by
 * queue_run_delay once the due mail is delivered, and the run rescans deferred/ on disk
 * (readdir of every file, reconciled with the schedule), then counts every queue.
 * Deliveries and their SMTP time limits run on real time.
 * Leaves to others: everything measured. Every loop is bounded in count and time.
 * Options: --messages N (100000) --due N (1000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Sink } from '../src/sink/sink.js';
import { Spool } from '../src/queue/spool.js';
import { QueueManager } from '../src/queue/queue-manager.js';
import { encodeEndRecord, encodeQueueFileHead } from '../src/queue/queue-file.js';
import { encodeDeliveryState } from '../src/queue/delivery-state.js';
import { newQueueId } from '../src/queue/queue-id.js';
import { createLogger } from '../src/ops/log.js';
import { Metrics } from '../src/ops/metrics.js';
import type { LookupTable } from '../src/tables/lookup-table.js';
import { noDns } from '../test/fakes/no-dns.js';
import { ManualClock } from '../test/queue/manual-clock.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '100000' }, due: { type: 'string', default: '1000' } } });
const MESSAGES = Number(values.messages);
const DUE = Number(values.due);
/** queue_run_delay (ms): the clock is moved by this much to fire one queue run; less than the hour to the next attempts. */
const QUEUE_RUN_DELAY = 300_000;

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-100k-'));
  const sink = await Sink.start({ listen: '127.0.0.1:0' });
  try {
    for (const name of ['deferred', 'state']) await mkdir(join(directory, name), { recursive: true });
    const body = Buffer.from('Subject: queued\r\n\r\nsmall body\r\n');
    const clock = new ManualClock(Date.now());
    const now = clock.now();
    let t = performance.now();
    // Bounded by MESSAGES; 64 files in flight at a time.
    for (let start = 0; start < MESSAGES; start += 64) {
      await Promise.all(
        Array.from({ length: Math.min(64, MESSAGES - start) }, async (_, k) => {
          const i = start + k;
          const id = newQueueId(now - 3_600_000);
          const envelope = { sender: 'a@sender.test', recipients: [{ address: `u${i}@example.com` }], arrivalTime: now - 3_600_000, client: { address: '127.0.0.9', port: 1 }, sessionId: 'B' };
          await writeFile(join(directory, 'deferred', id), Buffer.concat([encodeQueueFileHead(id, envelope, body.length), body, encodeEndRecord(id)]));
          const nextAttempt = i < DUE ? 0 : now + 3_600_000;
          await writeFile(join(directory, 'state', id), encodeDeliveryState({ id, attempts: 1, nextAttempt, recipients: [{ address: `u${i}@example.com`, status: 'deferred', attempts: 1 }] }));
        }),
      );
    }
    const setupMs = performance.now() - t;

    const log = createLogger({ level: 'silent' });
    const metrics = new Metrics();
    const table: LookupTable = { spec: 'inline:bench', lookup: (key) => (key === 'example.com' ? `smtp:[127.0.0.1]:${sink.port}` : undefined) };
    t = performance.now();
    const spool = await Spool.open(directory, { log, metrics, clock });
    const manager = new QueueManager(
      {
        directory,
        transportMaps: [table],
        relayhost: '',
        myhostname: 'mx1.bench.test',
        minimalBackoffTime: 300_000,
        maximalBackoffTime: 4_000_000,
        queueRunDelay: QUEUE_RUN_DELAY,
        maximalQueueLifetime: 5 * 86_400_000,
        connectTimeout: 5000,
        commandTimeout: 30_000,
        concurrency: 100,
        activeLimit: 1000,
        stopGrace: 5000,
        connectionCacheTime: 2000,
        destinationConcurrencyLimit: 20,
      },
      { spool, resolver: noDns, clock, log, metrics },
    );
    await manager.start();
    const startupMs = performance.now() - t;
    const deadline = Date.now() + 120_000;
    // Bounded by the deadline.
    while (sink.count < DUE && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const dueDeliveredMs = performance.now() - t;
    await manager.whenIdle();
    t = performance.now();
    clock.advance(QUEUE_RUN_DELAY); // fires the queue_run_delay timer: the manager's own queue run
    await manager.whenIdle();
    const queueRunMs = performance.now() - t;
    const deferredFiles = (await spool.list('deferred')).length;
    const report = {
      messages: MESSAGES,
      due: DUE,
      setupMs: Math.round(setupMs),
      startupMs: Math.round(startupMs),
      dueDelivered: sink.count,
      dueDeliveredMs: Math.round(dueDeliveredMs),
      queueRun: {
        measures: 'one queue run with nothing due: readdir of deferred/ on disk, reconciled with the schedule, then every queue counted',
        deferredFiles,
        ms: Math.round(queueRunMs * 10) / 10,
      },
      scheduled: manager.scheduled,
      rssMiB: Math.round(process.memoryUsage().rss / 1048576),
    };
    await manager.stop();
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await sink.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();

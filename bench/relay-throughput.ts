/*
 * bench/relay-throughput — accepted-and-delivered throughput of mxscreen as a relay.
 *
 * Decides: the load (`--messages` 10 KiB messages over `--sessions` concurrent SMTP
 * sessions, each from its own 127.0.6.x source, one message per transaction), mxscreen as
 * a child process (`mxscreen start`, fsync contract intact), the mailbox server (Sink) in
 * this process on loopback, and the figures printed as JSON: messages/s accepted (250s
 * per second of sending), messages/s accepted-and-delivered (messages / time until the
 * last one reached the mailbox server), 250-reply latency p50/p99 (DATA sent to 250),
 * and how many connections the deliveries used.
 * Leaves to others: everything measured. Every loop is bounded in count and time.
 * Options: --messages N (2000) --sessions N (50) --size BYTES (10240) --time-limit-s N (120)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Sink } from '../src/sink/sink.js';
import { connectSmtp, relayMainCf, sendOne, startMxscreenProcess, testMessage } from '../test/queue/mxscreen-process.js';
import { percentile } from './percentile.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '50' },
    size: { type: 'string', default: '10240' },
    'time-limit-s': { type: 'string', default: '120' },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);
const DEADLINE = Date.now() + Number(values['time-limit-s']) * 1000;


async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-relay-'));
  let lastDelivery = 0;
  const sink = await Sink.start({ listen: '127.0.0.1:0', onMessage: () => void (lastDelivery = performance.now()) });
  writeFileSync(
    join(work, 'main.cf'),
    relayMainCf('127.0.0.1:0', sink.port, ['minimal_backoff_time = 1s', 'maximal_backoff_time = 2s', 'queue_run_delay = 1s']),
  );
  const mx = await startMxscreenProcess(join(work, 'main.cf'));
  const latencies: number[] = [];
  let accepted = 0;
  let failed = 0;
  try {
    const messages = Array.from({ length: MESSAGES }, (_, i) => testMessage(`relay-${i}`, SIZE));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, session) => {
        const connection = await connectSmtp(mx.port, `127.0.6.${session + 1}`);
        // Bounded by the message count and the deadline.
        while (next < MESSAGES && Date.now() < DEADLINE) {
          const i = next++;
          const t = performance.now();
          if (await sendOne(connection, 'load@sender.test', 'info@example.com', messages[i]!)) {
            accepted += 1;
            latencies.push(performance.now() - t);
          } else failed += 1;
        }
        connection.close();
      }),
    );
    const sent = performance.now();
    // Bounded by the deadline: wait for the mailbox server to have them all.
    while (sink.count < accepted && Date.now() < DEADLINE) await new Promise((resolve) => setTimeout(resolve, 20));
    latencies.sort((a, b) => a - b);
    const report = {
      messages: MESSAGES,
      sessions: SESSIONS,
      sizeBytes: SIZE,
      accepted,
      failed,
      delivered: sink.count,
      acceptedPerSecond: Math.round(accepted / ((sent - started) / 1000)),
      deliveredPerSecond: Math.round(sink.count / ((Math.max(lastDelivery, sent) - started) / 1000)),
      latencyMs: { p50: Math.round(percentile(latencies, 50) * 10) / 10, p99: Math.round(percentile(latencies, 99) * 10) / 10 },
      deliveryConnections: sink.connections,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    mx.child.kill('SIGTERM');
    await mx.exited;
    await sink.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

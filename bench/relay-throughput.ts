/*
 * bench/relay-throughput — accepted-and-delivered throughput of mxscreen as a relay.
 *
 * Decides: the load (`--messages` 10 KiB messages over `--sessions` concurrent SMTP
 * sessions, each from its own 127.0.6.x source, one message per transaction, MAIL, RCPT
 * and DATA pipelined as smtp-source does), mxscreen as a child process (`mxscreen start`,
 * fsync contract intact), the mailbox server (Sink) in this process on loopback, and the
 * figures printed as JSON: messages/s accepted (250s per second of sending), messages/s
 * accepted-and-delivered (messages / time until the last one reached the mailbox server),
 * the 250 latency p50/p99 from the end of DATA (the final dot written) to the 250, the
 * whole transaction (MAIL FROM written to that 250) beside it, and how many connections
 * the deliveries used.
 * The clients are in mynetworks (127.0.0.0/8), which postscreen_access_list =
 * permit_mynetworks allowlists: the screen stage (greet wait, DNSBL) is skipped, and the
 * report says so with the count of ALLOWLISTED and screened connections from the log.
 * Leaves to others: everything measured. Every loop is bounded in count and time.
 * Options: --messages N (2000) --sessions N (50) --size BYTES (10240) --time-limit-s N (120)
 * --workers N (mxscreen_workers; default 0, the number of CPUs)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Sink } from '../src/sink/sink.js';
import { connectClient, type ScriptedClient } from '../test/fakes/scripted-client.js';
import { relayMainCf, startMxscreenProcess, testMessage } from '../test/queue/mxscreen-process.js';
import { percentile } from './percentile.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '50' },
    size: { type: 'string', default: '10240' },
    'time-limit-s': { type: 'string', default: '120' },
    workers: { type: 'string', default: '0' },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);
const DEADLINE = Date.now() + Number(values['time-limit-s']) * 1000;
/** Longest wait for one reply (ms). */
const REPLY_WAIT = 30_000;

/** Reads one reply; true when its code is `code`. */
async function replied(client: ScriptedClient, code: number): Promise<boolean> {
  return (await client.readReply(REPLY_WAIT).catch(() => undefined))?.code === code;
}

/** The DATA content of `message`, ending in CRLF, then the final dot (no line starts with a dot). */
function dataOf(message: string): string {
  return `${message.endsWith('\r\n') ? message : `${message}\r\n`}.\r\n`;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-relay-'));
  let lastDelivery = 0;
  const sink = await Sink.start({ listen: '127.0.0.1:0', onMessage: () => void (lastDelivery = performance.now()) });
  writeFileSync(
    join(work, 'main.cf'),
    relayMainCf('127.0.0.1:0', sink.port, ['minimal_backoff_time = 1s', 'maximal_backoff_time = 2s', 'queue_run_delay = 1s', `mxscreen_workers = ${Number(values.workers)}`]),
  );
  const mx = await startMxscreenProcess(join(work, 'main.cf'));
  const screen = { allowlisted: 0, screened: 0 };
  createInterface({ input: mx.child.stdout! }).on('line', (line) => {
    if (line.includes('"event":"ALLOWLISTED"')) screen.allowlisted += 1;
    else if (/"event":"(PASS NEW|PASS OLD)"/.test(line)) screen.screened += 1;
  });
  const dotLatencies: number[] = [];
  const transactionLatencies: number[] = [];
  let accepted = 0;
  let failed = 0;
  try {
    const messages = Array.from({ length: MESSAGES }, (_, i) => dataOf(testMessage(`relay-${i}`, SIZE)));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, session) => {
        const client = await connectClient({ port: mx.port, localAddress: `127.0.6.${session + 1}`, timeoutMs: 10_000 });
        try {
          if (!(await replied(client, 220))) return;
          client.send('EHLO load.sender.test\r\n');
          if (!(await replied(client, 250))) return;
          // Bounded by the message count and the deadline.
          while (next < MESSAGES && Date.now() < DEADLINE) {
            const i = next++;
            const begun = performance.now();
            client.send('MAIL FROM:<load@sender.test>\r\nRCPT TO:<info@example.com>\r\nDATA\r\n');
            const ready = (await replied(client, 250)) && (await replied(client, 250)) && (await replied(client, 354));
            if (!ready) {
              failed += 1;
              break;
            }
            client.send(messages[i]!);
            const dot = performance.now();
            if (!(await replied(client, 250))) {
              failed += 1;
              break;
            }
            const done = performance.now();
            accepted += 1;
            dotLatencies.push(done - dot);
            transactionLatencies.push(done - begun);
          }
          client.send('QUIT\r\n');
        } finally {
          await client.close();
        }
      }),
    );
    const sent = performance.now();
    // Bounded by the deadline: wait for the mailbox server to have them all.
    while (sink.count < accepted && Date.now() < DEADLINE) await new Promise((resolve) => setTimeout(resolve, 20));
    dotLatencies.sort((a, b) => a - b);
    transactionLatencies.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 10) / 10;
    const report = {
      messages: MESSAGES,
      sessions: SESSIONS,
      sizeBytes: SIZE,
      screenStage: `skipped: the clients are in mynetworks (127.0.0.0/8), allowlisted by postscreen_access_list = permit_mynetworks (no greet wait, no DNSBL); ${screen.allowlisted} ALLOWLISTED, ${screen.screened} screened`,
      accepted,
      failed,
      delivered: sink.count,
      acceptedPerSecond: Math.round(accepted / ((sent - started) / 1000)),
      deliveredPerSecond: Math.round(sink.count / ((Math.max(lastDelivery, sent) - started) / 1000)),
      latencyMs: { measures: 'end of DATA (final dot written) to the 250', p50: round(percentile(dotLatencies, 50)), p99: round(percentile(dotLatencies, 99)) },
      transactionMs: { measures: 'MAIL FROM written to the 250 after the dot (MAIL, RCPT, DATA pipelined)', p50: round(percentile(transactionLatencies, 50)), p99: round(percentile(transactionLatencies, 99)) },
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

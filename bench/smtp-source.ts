/*
 * bench/smtp-source — end-to-end relay throughput and CPU per message under Postfix's
 * own load generator, `smtp-source -s 50 -m 2000 -l 10240` (one message per session,
 * from 127.0.0.1, a trusted host in mynetworks as in bench/relay-throughput.ts), with
 * the mail delivered to a sink (bench/delivery-sink.ts: Postfix's smtp-sink when
 * installed). Peer mode runs a private Postfix instance with the same relay job in the
 * same run (bench/postfix-peer.ts) and prints mxscreen/Postfix.
 *
 * Decides: the figures, as JSON: msg/s accepted (messages / smtp-source's run time) and
 * delivered (messages / time to the last one at the sink), CPU per message (ms: user +
 * system of the relay's process tree over the run, bench/process-tree.ts; mxscreen's
 * owner and workers, or Postfix's master and every daemon), and the ratios. Each relay
 * gets --warmup passes of the same load first (default 3), measured (the first one reported
 * as `first`) but not in the figures: a freshly started relay pays once for what a running
 * one has already done (V8 compiling the hot paths, Postfix forking its smtpd and
 * cleanup processes, both filling their file pools and caches). Three, because with two
 * workers each process compiles on its half of the load: on the 2-core machine mxscreen at
 * 2 workers delivered about 590 msg/s after one pass, about 745 after three and the same
 * after eight (Postfix and one process change little after the first). The ratios compare the
 * measured passes, the state an MX host is in most of its life. When the
 * catalogue has `mxscreen_workers`, mxscreen runs at 1, 2 and all CPUs (main.cf sets it);
 * without it, one process. The scenario skips, saying why, when smtp-source is absent.
 * Leaves to others: everything measured. Bounded: --messages and --time-limit-s per run.
 * Options: --messages N (2000) --sessions N (50) --size BYTES (10240) --peer yes|no (yes)
 *          --warmup N (3: passes before the measured one, at most 5) --time-limit-s N (120, per pass)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CATALOGUE } from '../src/config/catalogue.js';
import { relayMainCf, startMxscreenProcess } from '../test/queue/mxscreen-process.js';
import { freePort, startDeliverySink, type DeliverySink } from './delivery-sink.js';
import { peerUnavailable, PostfixPeer } from './postfix-peer.js';
import { treeCpuMs } from './process-tree.js';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '50' },
    size: { type: 'string', default: '10240' },
    peer: { type: 'string', default: 'yes' },
    'time-limit-s': { type: 'string', default: '120' },
    warmup: { type: 'string', default: '3' },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);
const TIME_LIMIT_MS = Number(values['time-limit-s']) * 1000;
const WARMUP = Math.max(0, Math.min(5, Number(values.warmup)));

interface PassFigures {
  readonly messages: number;
  readonly delivered: number;
  readonly acceptedPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly cpuMsPerMessage: number;
  readonly smtpSourceErrors: string;
}

/** The measured pass, and the first pass after the relay's start when it was a warm-up. */
type RelayFigures = PassFigures & { readonly first?: PassFigures };

/** Runs smtp-source against 127.0.0.1:`port` and measures until the sink has every message. */
async function measurePass(port: number, relayPid: number, sink: DeliverySink): Promise<PassFigures> {
  const deadline = Date.now() + TIME_LIMIT_MS;
  const before = sink.count();
  const cpuBefore = treeCpuMs(relayPid);
  const started = performance.now();
  const args = ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(SIZE), '-f', 'load@sender.test', '-t', 'info@example.com', `127.0.0.1:${port}`];
  const errors = await new Promise<string>((resolve) => {
    execFile(SMTP_SOURCE, args, { timeout: TIME_LIMIT_MS, maxBuffer: 1 << 20 }, (error, _stdout, stderr) => resolve(`${error ? `${String(error.message).split('\n')[0]} ` : ''}${stderr}`.trim().slice(-500)));
  });
  const sent = performance.now();
  // Bounded by the deadline: wait for the sink to have them all.
  while (sink.count() - before < MESSAGES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const delivered = sink.count() - before;
  const cpuMs = treeCpuMs(relayPid) - cpuBefore;
  return {
    messages: MESSAGES,
    delivered,
    acceptedPerSecond: Math.round(MESSAGES / ((sent - started) / 1000)),
    deliveredPerSecond: Math.round(delivered / ((Math.max(sink.lastAt(), sent) - started) / 1000)),
    cpuMsPerMessage: Math.round((cpuMs / Math.max(1, delivered)) * 100) / 100,
    smtpSourceErrors: errors,
  };
}

/** mxscreen as a child process (fsync contract intact) with `workers` when the catalogue knows it. */
async function runMxscreen(sink: DeliverySink, workers: number | undefined): Promise<RelayFigures> {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-smtp-source-'));
  writeFileSync(
    join(work, 'main.cf'),
    relayMainCf('127.0.0.1:0', sink.port, [
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      'queue_run_delay = 1s',
      ...(workers === undefined ? [] : [`mxscreen_workers = ${workers}`]),
    ]),
  );
  const mx = await startMxscreenProcess(join(work, 'main.cf'));
  mx.child.stdout!.resume();
  try {
    return await measure(mx.port, mx.child.pid!, sink);
  } finally {
    mx.child.kill('SIGTERM');
    await mx.exited;
    rmSync(work, { recursive: true, force: true });
  }
}

async function runPostfix(sink: DeliverySink): Promise<RelayFigures> {
  const peer = await PostfixPeer.start(await freePort(), sink.port);
  try {
    return await measure(peer.port, peer.masterPid(), sink);
  } finally {
    await peer.stop();
  }
}

/** WARMUP passes, then the measured one. */
async function measure(port: number, relayPid: number, sink: DeliverySink): Promise<RelayFigures> {
  let first: PassFigures | undefined;
  for (let pass = 0; pass < WARMUP; pass += 1) {
    const figures = await measurePass(port, relayPid, sink);
    first ??= figures;
  }
  const measured = await measurePass(port, relayPid, sink);
  return first ? { ...measured, first } : measured;
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : null);

async function main(): Promise<void> {
  if (!existsSync(SMTP_SOURCE)) {
    process.stdout.write(`${JSON.stringify({ skipped: `${SMTP_SOURCE} is not installed (Debian package postfix)` })}\n`);
    return;
  }
  const hasWorkers = CATALOGUE.some((parameter) => (parameter.name as string) === 'mxscreen_workers');
  const all = availableParallelism();
  const settings = hasWorkers ? [...new Set([1, 2, all])] : [undefined];
  const sink = await startDeliverySink();
  try {
    const mxscreen: Record<string, RelayFigures> = {};
    for (const workers of settings) mxscreen[workers === undefined ? 'single process' : `workers=${workers}`] = await runMxscreen(sink, workers);
    const unavailable = values.peer === 'no' ? 'peer mode off (--peer no)' : peerUnavailable();
    let postfix: RelayFigures | undefined;
    let peerProblem = unavailable;
    if (unavailable === undefined) {
      // A peer that cannot start is reported; mxscreen's figures stand.
      postfix = await runPostfix(sink).catch((error: unknown) => {
        peerProblem = `the Postfix peer failed: ${String(error).slice(0, 1500)}`;
        return undefined;
      });
    }
    const headline = mxscreen[hasWorkers ? `workers=${all}` : 'single process']!;
    process.stdout.write(
      `${JSON.stringify(
        {
          load: `smtp-source -s ${SESSIONS} -m ${MESSAGES} -l ${SIZE} from 127.0.0.1 (mynetworks), one message per session; ${WARMUP} warm-up pass${WARMUP === 1 ? '' : 'es'} (\`first\`) before the measured one`,
          sink: sink.kind,
          workers: hasWorkers ? `mxscreen_workers = ${settings.join(', ')} (${all} CPUs)` : 'mxscreen_workers is not in the catalogue: one process',
          mxscreen,
          postfix: postfix ?? { skipped: peerProblem ?? 'no figures' },
          ratio: postfix
            ? {
                measures: `mxscreen (${hasWorkers ? `workers=${all}` : 'single process'}) / Postfix`,
                deliveredPerSecond: ratio(headline.deliveredPerSecond, postfix.deliveredPerSecond),
                acceptedPerSecond: ratio(headline.acceptedPerSecond, postfix.acceptedPerSecond),
                cpuMsPerMessage: ratio(headline.cpuMsPerMessage, postfix.cpuMsPerMessage),
              }
            : null,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await sink.close();
  }
}

await main();

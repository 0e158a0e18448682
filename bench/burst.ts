/*
 * bench/burst — a burst of new clients connecting at once (issue 12): 1,000, 5,000 and
 * 10,000 by default, each client from its own 127.x.y.z address (none in mynetworks, none
 * seen before: every one is screened, PASS NEW), against one `mxscreen start` with
 * postscreen_pre_queue_limit and postscreen_post_queue_limit raised above the burst.
 *
 * Decides: each client connects, reads up to the `220 ` line (after the teaser and the
 * greet wait), sends QUIT and closes; a client without its `220 ` within --client-timeout-s
 * is a timeout, one that gets a socket error or any other reply (421) an error. Figures
 * per burst, as JSON: timeouts, errors, connections/s (greeted clients / time from the
 * first connect to the last `220 `), connect → `220 ` p50/p99 (greet wait included) and
 * connect → first byte, the teaser (how promptly connections are accepted), RSS
 * growth of mxscreen's process tree (peak during the burst minus before it, sampled every
 * 100 ms), and the kernel's ListenOverflows/ListenDrops (TcpExt, /proc/net/netstat) during
 * the burst. A burst larger than `ulimit -n` allows (this process holds one descriptor per
 * client, mxscreen one too) is skipped and says so; Node raises its soft limit to the hard
 * one at start, so the hard limit (`ulimit -Hn`, raised as root) is the one that counts.
 * Leaves to others: everything measured. Bounded by the client count and the time limits.
 * Options: --bursts N[,N…] (1000,5000,10000) --greet-wait-ms N (1000) --client-timeout-s N (30)
 *          --backlog N (mxscreen_listen_backlog; 0, the default, is net.core.somaxconn)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { listenBacklog } from '../src/screen/listen-backlog.js';
import { relayMainCf, startMxscreenProcess } from '../test/queue/mxscreen-process.js';
import { freePort } from './delivery-sink.js';
import { percentile } from './percentile.js';
import { treeRssBytes } from './process-tree.js';

const { values } = parseArgs({
  options: {
    bursts: { type: 'string', default: '1000,5000,10000' },
    'greet-wait-ms': { type: 'string', default: '1000' },
    'client-timeout-s': { type: 'string', default: '30' },
    backlog: { type: 'string', default: '0' },
  },
});
const BURSTS = values.bursts.split(',').map(Number).filter((n) => n > 0 && n <= 60_000);
const CLIENT_TIMEOUT_MS = Number(values['client-timeout-s']) * 1000;
const BACKLOG = Number(values.backlog);

type ClientOutcome = { readonly kind: 'greeted'; readonly ms: number; readonly at: number; readonly firstByteMs: number } | { readonly kind: 'timeout' } | { readonly kind: 'error'; readonly why: string };

/** The source address of client `i` of the burst starting at `offset`: 127.X.Y.Z, never in 127.0.0.0/16. */
function clientAddress(offset: number, i: number): string {
  const n = offset + i + 1;
  return `127.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

/** One client: connect, read to the `220 ` line, QUIT. Never rejects. */
function oneClient(port: number, localAddress: string, started: number): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let text = '';
    let firstByteMs: number | undefined;
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const finish = (outcome: ClientOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
      if (outcome.kind === 'greeted') socket.end('QUIT\r\n');
      else socket.destroy();
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), CLIENT_TIMEOUT_MS);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (settled) return;
      firstByteMs ??= performance.now() - started;
      text += chunk;
      for (const line of text.split('\r\n').slice(0, -1)) {
        if (line.startsWith('220 ')) {
          const now = performance.now();
          return finish({ kind: 'greeted', ms: now - started, at: now, firstByteMs: firstByteMs ?? now - started });
        }
        if (!line.startsWith('220-')) return finish({ kind: 'error', why: line.slice(0, 40) });
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'error', why: error.code ?? error.message }));
    socket.on('close', () => finish({ kind: 'error', why: 'closed before 220' }));
  });
}

/** TcpExt ListenOverflows and ListenDrops from /proc/net/netstat (this network namespace). */
function listenCounters(): { overflows: number; drops: number } {
  try {
    const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n').filter((line) => line.startsWith('TcpExt:'));
    const names = lines[0]!.split(/\s+/);
    const numbers = lines[1]!.split(/\s+/).map(Number);
    return { overflows: numbers[names.indexOf('ListenOverflows')] ?? 0, drops: numbers[names.indexOf('ListenDrops')] ?? 0 };
  } catch {
    return { overflows: -1, drops: -1 };
  }
}

function descriptorLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return 1024;
  }
}

async function main(): Promise<void> {
  const limit = descriptorLimit();
  const largest = Math.max(...BURSTS);
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-burst-'));
  writeFileSync(
    join(work, 'main.cf'),
    relayMainCf('127.0.0.1:0', await freePort(), [
      // Only 127.0.0.1 is trusted: every burst client is screened.
      'mynetworks = 127.0.0.1/32',
      `postscreen_greet_wait = ${Number(values['greet-wait-ms'])}ms`,
      `postscreen_pre_queue_limit = ${largest * 2}`,
      `postscreen_post_queue_limit = ${largest * 2}`,
      `mxscreen_listen_backlog = ${BACKLOG}`,
    ]),
  );
  const mx = await startMxscreenProcess(join(work, 'main.cf'));
  mx.child.stdout!.resume();
  const bursts: Record<string, unknown> = {};
  let offset = 0;
  try {
    for (const clients of BURSTS) {
      if (clients + 200 > limit) {
        bursts[String(clients)] = { skipped: `ulimit -n is ${limit}: raise the hard limit (ulimit -Hn) above ${clients + 200}: this process and mxscreen hold one descriptor per client` };
        continue;
      }
      const rssBefore = treeRssBytes(mx.child.pid!);
      let rssPeak = rssBefore;
      const sampler = setInterval(() => void (rssPeak = Math.max(rssPeak, treeRssBytes(mx.child.pid!))), 100);
      const kernelBefore = listenCounters();
      const started = performance.now();
      const outcomes = await Promise.all(Array.from({ length: clients }, (_, i) => oneClient(mx.port, clientAddress(offset, i), started)));
      clearInterval(sampler);
      rssPeak = Math.max(rssPeak, treeRssBytes(mx.child.pid!));
      const kernelAfter = listenCounters();
      offset += clients;
      const greeted = outcomes.filter((o): o is Extract<ClientOutcome, { kind: 'greeted' }> => o.kind === 'greeted');
      const errors = outcomes.filter((o): o is Extract<ClientOutcome, { kind: 'error' }> => o.kind === 'error');
      const why: Record<string, number> = {};
      for (const error of errors) why[error.why] = (why[error.why] ?? 0) + 1;
      const times = greeted.map((o) => o.ms).sort((a, b) => a - b);
      const firstBytes = greeted.map((o) => o.firstByteMs).sort((a, b) => a - b);
      const lastGreeting = Math.max(started, ...greeted.map((o) => o.at));
      bursts[String(clients)] = {
        clients,
        greeted: greeted.length,
        timeouts: outcomes.filter((o) => o.kind === 'timeout').length,
        errors: errors.length,
        errorKinds: why,
        connectionsPerSecond: Math.round(greeted.length / ((lastGreeting - started) / 1000)),
        to220Ms: { measures: 'connect to the 220 line, greet wait included', p50: Math.round(percentile(times, 50)), p99: Math.round(percentile(times, 99)) },
        toFirstByteMs: { measures: 'connect to the first byte (the teaser 220- line): accept and screener promptness', p50: Math.round(percentile(firstBytes, 50)), p99: Math.round(percentile(firstBytes, 99)) },
        rssGrowthMB: Math.round((rssPeak - rssBefore) / 1e5) / 10,
        listenOverflows: kernelAfter.overflows - kernelBefore.overflows,
        listenDrops: kernelAfter.drops - kernelBefore.drops,
      };
      // Let the sessions close before the next burst.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    process.stdout.write(
      `${JSON.stringify({ greetWaitMs: Number(values['greet-wait-ms']), listenBacklog: listenBacklog(BACKLOG), somaxconn: listenBacklog(0), ulimitN: limit, bursts }, null, 2)}\n`,
    );
  } finally {
    mx.child.kill('SIGTERM');
    await mx.exited;
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

/*
 * bench/screen — the screen stage's performance targets, on loopback, printed as JSON.
 *
 * Decides the three loads of issue 3: (1) 10,000 simultaneous connections held in the
 * greet wait (each from its own 127.x.y.z), mxscreen's VmRSS over idle; (2) PASS OLD
 * clients at a fixed rate (default 1,000 connections/s): time from TCP connect to the
 * real `220 ` line, p50/p99; (3) one DNSBL query over several slow sites: the time is
 * the slowest answer, not the sum. mxscreen runs as a child process (`mxscreen start`),
 * so its memory is its own; the fake DNS server runs here.
 * Options: --hold N (10000) --rate N (1000) --seconds N (2) --time-limit-s N (120)
 * Every loop is bounded in count and in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/clock.js';
import type { DnsResolver } from '../src/dns/resolver.js';
import { Metrics } from '../src/ops/metrics.js';
import { queryDnsbl } from '../src/screen/dnsbl.js';
import { parseDnsblSite, type DnsblSite } from '../src/screen/dnsbl-site.js';
import { startDnsServer } from '../test/fakes/dns-server.js';
import { repositoryRoot } from '../test/fakes/repository-root.js';

const { values } = parseArgs({
  options: {
    hold: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '2' },
    'time-limit-s': { type: 'string', default: '120' },
  },
});
const HOLD = Number(values.hold);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const DEADLINE = Date.now() + Number(values['time-limit-s']) * 1000;
const ZONE = 'zen.dnsbl.test';

/** The n-th distinct loopback source address of a group: 127.<group>.<hi>.<lo>. */
function sourceAddress(group: number, n: number): string {
  return `127.${group + Math.floor(n / 62_500)}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssMiB(pid: number): number {
  const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return Math.round((kib / 1024) * 10) / 10;
}

async function startMxscreen(directory: string, lines: readonly string[]): Promise<{ child: ChildProcess; port: number }> {
  const configFile = join(directory, 'main.cf');
  writeFileSync(configFile, [...lines, ''].join('\n'));
  const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/src/cli.js'), 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const output = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('mxscreen did not start within 20s')), 20_000);
    output.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { event?: string; port?: number; path?: string };
        if (entry.event === 'LISTEN' && entry.path === undefined && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not JSON
      }
    });
    child.once('exit', (code) => reject(new Error(`mxscreen exited with ${code}`)));
  });
  return { child, port };
}

/** Connects from `localAddress`; resolves with ms from 'connect' to the first line starting `want`. */
function timeToLine(port: number, localAddress: string, want: string, keep: net.Socket[] | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let connectedAt = 0;
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, 15_000);
    socket.on('connect', () => (connectedAt = performance.now()));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.split('\r\n').some((line) => line.startsWith(want))) {
        clearTimeout(timer);
        const ms = performance.now() - connectedAt;
        if (keep) keep.push(socket);
        else socket.destroy();
        resolve(ms);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function runBounded(count: number, parallel: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count && Date.now() < DEADLINE) await job(next++).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

function baseConfig(dnsPort: number): string[] {
  return [
    'myhostname = mx1.bench.test',
    'mxscreen_listen = 127.0.0.1:0',
    'mxscreen_metrics_listen =',
    `mxscreen_dns_servers = 127.0.0.1:${dnsPort}`,
    'mynetworks = 127.0.0.1/32',
    'queue_directory = queue',
    `postscreen_dnsbl_sites = ${ZONE}*2`,
    'postscreen_dnsbl_action = drop',
    'postscreen_greet_action = drop',
    'postscreen_client_connection_count_limit = 0',
    'postscreen_pre_queue_limit = 30000',
    'postscreen_post_queue_limit = 30000',
    'relay_domains = example.com',
  ];
}

/** (1) 10,000 connections waiting in the greet wait: RSS growth of the mxscreen process. */
async function greetWaitMemory(dnsPort: number): Promise<Record<string, number>> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-bench-screen-'));
  const { child, port } = await startMxscreen(directory, [...baseConfig(dnsPort), 'postscreen_greet_wait = 120s']);
  const held: net.Socket[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = rssMiB(child.pid!);
    await runBounded(HOLD, 200, async (i) => void (await timeToLine(port, sourceAddress(10, i), '220-', held)));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const loaded = rssMiB(child.pid!);
    return { held: held.length, rss_idle_mib: idle, rss_held_mib: loaded, rss_growth_mib: Math.round((loaded - idle) * 10) / 10 };
  } finally {
    for (const socket of held) socket.destroy();
    child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  }
}

/** (2) PASS OLD clients at RATE connections/s: connect → `220 ` latency. */
async function passOldLatency(dnsPort: number): Promise<Record<string, number>> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-bench-screen-'));
  const { child, port } = await startMxscreen(directory, [...baseConfig(dnsPort), 'postscreen_greet_wait = 200ms']);
  const clients = Math.min(RATE, 1000);
  try {
    await runBounded(clients, 200, async (i) => void (await timeToLine(port, sourceAddress(40, i), '220 ', undefined)));
    const latencies: number[] = [];
    const total = RATE * SECONDS;
    const started = performance.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total && Date.now() < DEADLINE; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(timeToLine(port, sourceAddress(40, i % clients), '220 ', undefined).then((ms) => void latencies.push(ms), () => undefined));
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return { connections: latencies.length, rate_per_s: Math.round(latencies.length / elapsed), p50_ms: round(percentile(latencies, 50)), p99_ms: round(percentile(latencies, 99)) };
  } finally {
    child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  }
}

/** (3) One client against 5 sites that each answer after 100 ms: one burst, not the sum. */
async function dnsblBurst(): Promise<Record<string, number>> {
  const sites: DnsblSite[] = ['a', 'b', 'c', 'd', 'e'].map((name) => parseDnsblSite(`${name}.dnsbl.test`) as DnsblSite);
  const sent: number[] = [];
  const resolver = {
    resolve4: () => {
      sent.push(performance.now());
      return new Promise((resolve) => setTimeout(() => resolve([]), 100));
    },
  } as unknown as DnsResolver;
  const started = performance.now();
  await queryDnsbl(sites, '192.0.2.1', 1000, { resolver, clock: systemClock, metrics: new Metrics() });
  return { sites: sites.length, answer_delay_ms: 100, total_ms: Math.round(performance.now() - started), spread_of_sends_ms: Math.round((Math.max(...sent) - Math.min(...sent)) * 100) / 100 };
}

async function main(): Promise<void> {
  const dns = await startDnsServer();
  dns.listDnsbl(ZONE, '127.0.0.2', ['127.0.0.2']);
  try {
    const greetWait = await greetWaitMemory(dns.port);
    const passOld = await passOldLatency(dns.port);
    const burst = await dnsblBurst();
    process.stdout.write(`${JSON.stringify({ bench: 'screen', greet_wait_hold: greetWait, pass_old_time_to_220: passOld, dnsbl_burst: burst }, null, 2)}\n`);
  } finally {
    await dns.close();
  }
}

await main();

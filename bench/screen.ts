/*
 * bench/screen — the screen stage's performance targets, on loopback, printed as JSON.
 *
 * Decides the three loads of issue 3: (1) 10,000 simultaneous connections held in the
 * greet wait (each from its own 127.x.y.z), the VmRSS of mxscreen's processes (owner and
 * workers) over idle; (2) PASS OLD clients at a fixed rate (default 1,000
 * connections/s): time from TCP connect to the real `220 ` line, open-loop arrivals,
 * time from connect() to the chunk holding the `220 ` line, p50/p99, also from the scheduled arrival (no coordinated omission), with
 * the generator's own lag, CPU and event-loop delay; (3) the DNSBL burst: new clients,
 * each screened against 5 sites (4 DNSBL, 1 DNSWL that lists the client) whose every
 * answer the real DNS server (test/fakes/dns-server.ts, UDP on loopback) sends 100 ms
 * late; the DNSWL rank ends the (6 s) greet wait once the last answer is in, so connect →
 * real `220 ` is the time of the slowest answer when the queries go out in one burst, and
 * would be their sum if they went one after the other. mxscreen runs as a child process
 * (`mxscreen start`) logging to a file, so its memory and CPU (owner and workers,
 * bench/process-tree.ts) are its own and the generator parses no log lines; the fake
 * DNS server runs here.
 * With a shared verdict cache on a real redis-server (test/fakes/redis-server.ts, loopback):
 * (4) pass-old-redis: clients passed on mx1, then PASS OLD on mx2 at RATE/s (each client's
 * first connection to mx2 reads Redis, the later ones hit mx2's near cache; both reported);
 * (5) pass-old-redis-down: PASS OLD at RATE/s on a host whose Redis was killed (near cache).
 * Options: --hold N (10000) --rate N (1000) --seconds N (5) --bursts N (20) --time-limit-s N (120)
 *          --workers N (mxscreen_workers; default: its own default, the number of CPUs)
 *          --parts greet-wait,pass-old,dnsbl-burst (the default; also pass-old-redis,
 *          pass-old-redis-down: the `screen-redis` scenario of bench/run.ts)
 * Every loop is bounded in count and in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { reverseName } from '../src/dns/reverse-name.js';
import { startDnsServer } from '../test/fakes/dns-server.js';
import { RedisServer } from '../test/fakes/redis-server.js';
import { repositoryRoot } from '../test/fakes/repository-root.js';
import { percentile } from './percentile.js';
import { treeCpuMs, treeRssBytes } from './process-tree.js';

const { values } = parseArgs({
  options: {
    hold: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    bursts: { type: 'string', default: '20' },
    parts: { type: 'string', default: 'greet-wait,pass-old,dnsbl-burst' },
    'time-limit-s': { type: 'string', default: '120' },
    workers: { type: 'string' },
  },
});
const HOLD = Number(values.hold);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const BURSTS = Number(values.bursts);
const DEADLINE = Date.now() + Number(values['time-limit-s']) * 1000;
const ZONE = 'zen.dnsbl.test';

/** The n-th distinct loopback source address of a group: 127.<group>.<hi>.<lo>. */
function sourceAddress(group: number, n: number): string {
  return `127.${group + Math.floor(n / 62_500)}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

/** Resident memory (MiB, one decimal) of mxscreen: the process `pid` and its workers (bench/process-tree.ts). */
function rssMiB(pid: number): number {
  return Math.round((treeRssBytes(pid) / 1048576) * 10) / 10;
}

/** CPU seconds (user + system) mxscreen has used so far: the process `pid` and its workers. */
function cpuSeconds(pid: number): number {
  return treeCpuMs(pid) / 1000;
}

/**
 * Starts `mxscreen start` on `lines` as main.cf, its log going to a file in `directory`
 * (the generator reads no log line but LISTEN). Resolves the SMTP port; rejects after 20 s.
 */
async function startMxscreen(directory: string, lines: readonly string[]): Promise<{ child: ChildProcess; port: number }> {
  const configFile = join(directory, 'main.cf');
  const logFile = join(directory, 'mxscreen.log');
  // --workers N: mxscreen_workers for every mxscreen this scenario starts (default: its default, the number of CPUs).
  const workers = values.workers === undefined ? [] : [`mxscreen_workers = ${Number(values.workers)}`];
  writeFileSync(configFile, [...lines, ...workers, ''].join('\n'));
  const logFd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/src/cli.js'), 'start', '--config', configFile, '--no-privilege-drop'], { stdio: ['ignore', logFd, 'inherit'] });
  closeSync(logFd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  for (let waited = 0; waited < 20_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (exited !== undefined) throw new Error(`mxscreen exited with ${exited}`);
    const listen = /"event":"LISTEN"[^\n]*?"port":(\d+)(?![^\n]*"path")/.exec(readFileSync(logFile, 'utf8'));
    if (listen) return { child, port: Number(listen[1]) };
  }
  child.kill('SIGKILL');
  throw new Error('mxscreen did not start within 20s');
}

/**
 * Connects from `localAddress`; resolves with ms from the connect() call to the arrival of
 * the chunk that holds a line starting with `want` (the client's first byte of that line).
 */
function timeToLine(port: number, localAddress: string, want: string, keep: net.Socket[] | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, 15_000);
    socket.on('data', (chunk: Buffer) => {
      const at = performance.now();
      text += chunk.toString('latin1');
      if (text.startsWith(want) || text.includes(`\r\n${want}`)) {
        clearTimeout(timer);
        if (keep) keep.push(socket);
        else socket.destroy();
        resolve(at - started);
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

/** main.cf lines every screen load starts with: loopback, no metrics, the fake DNS server. */
function mainCfHead(dnsPort: number): string[] {
  return [
    'myhostname = mx1.bench.test',
    'mxscreen_listen = 127.0.0.1:0',
    'mxscreen_metrics_listen =',
    `mxscreen_dns_servers = 127.0.0.1:${dnsPort}`,
    'mynetworks = 127.0.0.1/32',
    'queue_directory = queue',
  ];
}

function baseConfig(dnsPort: number): string[] {
  return [
    ...mainCfHead(dnsPort),
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

/**
 * PASS OLD arrivals at RATE/s for `seconds`, open loop: connection i is started at its
 * scheduled time whatever the earlier ones do. Resolves each latency (connect() → `220 `)
 * and its delay from the schedule (the generator's lag added: no coordinated omission).
 */
/** What one open-loop run measured: ms per connection (connect → `220 `, and from its scheduled start), generator lags, seconds elapsed. */
interface OpenLoopRun {
  readonly latencies: number[];
  readonly firstRound: number[];
  readonly fromSchedule: number[];
  readonly lags: number[];
  readonly elapsed: number;
}

const roundMs = (ms: number) => Math.round(ms * 100) / 100;

/** The connect → `220 ` figures every PASS OLD part reports: count, rate, p50/p99/max (ms), p99 from the schedule (ms). */
function latencyFigures(run: OpenLoopRun): Record<string, number> {
  const latencies = [...run.latencies].sort((a, b) => a - b);
  const fromSchedule = [...run.fromSchedule].sort((a, b) => a - b);
  return {
    connections: latencies.length,
    rate_per_s: Math.round(latencies.length / run.elapsed),
    p50_ms: roundMs(percentile(latencies, 50)),
    p99_ms: roundMs(percentile(latencies, 99)),
    max_ms: roundMs(latencies[latencies.length - 1] ?? NaN),
    p99_from_schedule_ms: roundMs(percentile(fromSchedule, 99)),
  };
}

async function openLoop(port: number, clients: number, seconds: number, group = 40): Promise<OpenLoopRun> {
  const latencies: number[] = [];
  const firstRound: number[] = [];
  const fromSchedule: number[] = [];
  const lags: number[] = [];
  const total = RATE * seconds;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total && Date.now() < DEADLINE; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const lag = Math.max(0, performance.now() - due);
    lags.push(lag);
    pending.push(
      timeToLine(port, sourceAddress(group, i % clients), '220 ', undefined).then(
        (ms) => {
          latencies.push(ms);
          if (i < clients) firstRound.push(ms);
          fromSchedule.push(ms + lag);
        },
        () => undefined,
      ),
    );
  }
  await Promise.all(pending);
  return { latencies, firstRound, fromSchedule, lags, elapsed: (performance.now() - started) / 1000 };
}

/**
 * (2) PASS OLD clients at RATE connections/s: connect → `220 ` latency. The clients are
 * first passed (PASS NEW) and then run for 1 s unmeasured, so the figures are the steady
 * state; the generator's own CPU and event-loop delay are reported beside mxscreen's CPU.
 */
async function passOldLatency(dnsPort: number): Promise<Record<string, number>> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-bench-screen-'));
  const { child, port } = await startMxscreen(directory, [...baseConfig(dnsPort), 'postscreen_greet_wait = 200ms']);
  const clients = Math.min(RATE, 1000);
  try {
    await runBounded(clients, 200, async (i) => void (await timeToLine(port, sourceAddress(40, i), '220 ', undefined)));
    await openLoop(port, clients, 1);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const benchCpu = process.cpuUsage();
    const childCpu = cpuSeconds(child.pid!);
    const run = await openLoop(port, clients, SECONDS);
    const benchCpuSeconds = (process.cpuUsage(benchCpu).user + process.cpuUsage(benchCpu).system) / 1e6;
    const mxscreenCpuSeconds = cpuSeconds(child.pid!) - childCpu;
    delay.disable();
    const lags = [...run.lags].sort((a, b) => a - b);
    return {
      ...latencyFigures(run),
      generator_lag_p99_ms: roundMs(percentile(lags, 99)),
      generator_event_loop_delay_p99_ms: roundMs(delay.percentile(99) / 1e6),
      generator_cpu_percent: Math.round((benchCpuSeconds / run.elapsed) * 100),
      mxscreen_cpu_percent: Math.round((mxscreenCpuSeconds / run.elapsed) * 100),
      mxscreen_cpu_ms_per_connection: roundMs((mxscreenCpuSeconds * 1000) / Math.max(1, run.latencies.length)),
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * (4)/(5) PASS OLD with postscreen_cache_map = redis:… . `shared`: the clients pass on a
 * first instance (mx1), and a second one (mx2) on the same Redis, warmed up on clients of
 * its own, is measured: each client's first connection there is a Redis read (first_round_*).
 * `down`: the clients pass on the measured instance itself, Redis is then killed, and the
 * load runs after 1 s unmeasured (its near cache alone).
 */
async function passOldRedis(dnsPort: number, mode: 'shared' | 'down'): Promise<Record<string, number>> {
  const redis = await RedisServer.start();
  const directories = [mkdtempSync(join(tmpdir(), 'mxscreen-bench-redis-')), mkdtempSync(join(tmpdir(), 'mxscreen-bench-redis-'))];
  const children: ChildProcess[] = [];
  const clients = Math.min(RATE, 1000);
  try {
    const lines = [...baseConfig(dnsPort), 'postscreen_greet_wait = 200ms', 'postscreen_cache_map = redis:cache.cf'];
    for (const directory of directories) writeFileSync(join(directory, 'cache.cf'), `url = ${redis.url()}\ntimeout = 50ms\n`);
    const mx1 = await startMxscreen(directories[0]!, lines);
    children.push(mx1.child);
    const measured = mode === 'shared' ? await startMxscreen(directories[1]!, lines) : mx1;
    if (mode === 'shared') children.push(measured.child);
    await new Promise((resolve) => setTimeout(resolve, 500)); // both connected to Redis
    await runBounded(clients, 200, async (i) => void (await timeToLine(mx1.port, sourceAddress(40, i), '220 ', undefined)));
    if (mode === 'down') {
      await redis.kill();
      await openLoop(measured.port, clients, 1);
    } else {
      // mx2 warmed up as the other benches are, on clients of its own (group 44), so the
      // measured figures are the steady state and not its first second.
      await runBounded(clients, 200, async (i) => void (await timeToLine(measured.port, sourceAddress(44, i), '220 ', undefined)));
      await openLoop(measured.port, clients, 1, 44);
    }
    const cpuBefore = cpuSeconds(measured.child.pid!);
    const run = await openLoop(measured.port, clients, SECONDS);
    const cpu = cpuSeconds(measured.child.pid!) - cpuBefore;
    const firstRound = [...run.firstRound].sort((a, b) => a - b);
    return {
      ...latencyFigures(run),
      ...(mode === 'shared' ? { first_round_p50_ms: roundMs(percentile(firstRound, 50)), first_round_p99_ms: roundMs(percentile(firstRound, 99)) } : {}),
      mxscreen_cpu_percent: Math.round((cpu / run.elapsed) * 100),
    };
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await redis.stop();
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  }
}

const BURST_ANSWER_DELAY_MS = 100;
const BURST_DNSBL_ZONES = ['a.dnsbl.test', 'b.dnsbl.test', 'c.dnsbl.test', 'd.dnsbl.test'];
const BURST_DNSWL_ZONE = 'wl.dnswl.test';

/**
 * (3) The DNSBL burst through the real DNS server and the screener: BURSTS new clients,
 * one after the other, each against 5 sites whose answers all come 100 ms late. Connect →
 * real `220 ` (the DNSWL listing ends the greet wait once every site has answered), and the
 * spread of the 5 queries' arrival times at the DNS server (ms resolution).
 */
async function dnsblBurst(): Promise<Record<string, number | string>> {
  const dns = await startDnsServer();
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-bench-screen-'));
  const zones = [...BURST_DNSBL_ZONES, BURST_DNSWL_ZONE];
  // RFC 5782 §5 test points: without them the DNSBL self-test would switch the sites off.
  for (const zone of zones) dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  dns.setAnswerDelay(BURST_ANSWER_DELAY_MS);
  const { child, port } = await startMxscreen(directory, [
    ...mainCfHead(dns.port),
    `postscreen_dnsbl_sites = ${BURST_DNSBL_ZONES.map((zone) => `${zone}*2`).join(', ')}, ${BURST_DNSWL_ZONE}*-5`,
    'postscreen_dnsbl_allowlist_threshold = -1',
    'postscreen_dnsbl_action = drop',
    'postscreen_greet_wait = 6s',
    'relay_domains = example.com',
  ]);
  const latencies: number[] = [];
  const spreads: number[] = [];
  try {
    // Bounded by BURSTS and the deadline; one client at a time, so bursts do not overlap.
    for (let i = 0; i < BURSTS && Date.now() < DEADLINE; i++) {
      const client = sourceAddress(50, i);
      dns.listDnsbl(BURST_DNSWL_ZONE, client, ['127.0.2.3']);
      const names = new Set(zones.map((zone) => reverseName(client, zone)));
      latencies.push(await timeToLine(port, client, '220 ', undefined));
      const arrivals = dns.queries.filter((query) => names.has(query.name)).map((query) => query.at);
      if (arrivals.length === zones.length) spreads.push(Math.max(...arrivals) - Math.min(...arrivals));
    }
  } finally {
    child.kill('SIGKILL');
    await dns.close();
    rmSync(directory, { recursive: true, force: true });
  }
  latencies.sort((a, b) => a - b);
  spreads.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    measures: 'connect → real 220 of a new client whose 5 DNSBL/DNSWL answers all arrive 100 ms late (real DNS server, real screener); serial queries would take the sum',
    bursts: latencies.length,
    sites: zones.length,
    answer_delay_ms: BURST_ANSWER_DELAY_MS,
    sum_of_answer_delays_ms: BURST_ANSWER_DELAY_MS * zones.length,
    connect_to_220_p50_ms: round(percentile(latencies, 50)),
    connect_to_220_max_ms: round(latencies[latencies.length - 1] ?? NaN),
    query_spread_at_dns_server_p50_ms: percentile(spreads, 50),
    query_spread_at_dns_server_max_ms: spreads[spreads.length - 1] ?? NaN,
  };
}

const PARTS = ['greet-wait', 'pass-old', 'dnsbl-burst', 'pass-old-redis', 'pass-old-redis-down'] as const;

async function main(): Promise<void> {
  const parts = new Set(values.parts.split(',').map((part) => part.trim()));
  const unknown = [...parts].filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length > 0) throw new Error(`--parts: unknown ${unknown.join(', ')}; use ${PARTS.join(',')}`);
  const report: Record<string, unknown> = { bench: 'screen' };
  const dns = await startDnsServer();
  dns.listDnsbl(ZONE, '127.0.0.2', ['127.0.0.2']);
  try {
    if (parts.has('greet-wait')) report.greet_wait_hold = await greetWaitMemory(dns.port);
    if (parts.has('pass-old')) report.pass_old_time_to_220 = await passOldLatency(dns.port);
    if (parts.has('pass-old-redis')) report.pass_old_redis_time_to_220 = await passOldRedis(dns.port, 'shared');
    if (parts.has('pass-old-redis-down')) report.pass_old_redis_down_time_to_220 = await passOldRedis(dns.port, 'down');
  } finally {
    await dns.close();
  }
  if (parts.has('dnsbl-burst')) report.dnsbl_burst = await dnsblBurst();
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

await main();

/*
 * bench/mixed-load — a bounded mixed load against a real mxscreen process, on loopback.
 *
 * Decides: the load (clean clients that each send a 10 KiB message stream over one
 * session, DNSBL-listed clients, pregreet talkers, each connection from its own 127.x.y.z
 * source address), and the figures printed: connections/s, messages/s accepted and
 * delivered, transaction latency (MAIL FROM to the 250 after DATA) p50/p99, and the peak
 * RSS of the mxscreen process (VmHWM). mxscreen runs as a child process (`mxscreen start`)
 * so its memory is its own; the fake DNS server and the mailbox server (the sink) run here.
 * The connections run in a closed loop, `--sessions` at a time, and every clean or listed
 * one lasts at least the greet wait: connections/s cannot exceed
 * connections / (greet-wait connections × greet wait / sessions), and the report gives
 * that bound beside the figure (a figure near it measures the loop, not mxscreen).
 * Leaves to others: everything measured. Every loop is bounded in count and in time.
 * Options: --messages N (2000) --sessions N (50) --connections N (500) --listed N (200)
 *          --pregreet N (100) --greet-wait 6s|300ms (300ms) --time-limit-s N (240)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { startDnsServer } from '../test/fakes/dns-server.js';
import { Sink } from '../src/sink/sink.js';
import { startMxscreenProcess } from '../test/queue/mxscreen-process.js';
import { percentile } from './percentile.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '50' },
    connections: { type: 'string', default: '500' },
    listed: { type: 'string', default: '200' },
    pregreet: { type: 'string', default: '100' },
    'greet-wait': { type: 'string', default: '300ms' },
    'time-limit-s': { type: 'string', default: '240' },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const CONNECTIONS = Number(values.connections);
const LISTED = Number(values.listed);
const PREGREET = Number(values.pregreet);
const GREET_WAIT = values['greet-wait'];
const GREET_WAIT_MS = greetWaitMs(GREET_WAIT);
const DEADLINE = Date.now() + Number(values['time-limit-s']) * 1000;
const ZONE = 'zen.dnsbl.test';

/** `300ms` or `6s` (the two units --greet-wait takes) in ms. */
function greetWaitMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text.trim());
  if (!match) throw new Error(`--greet-wait ${text}: use N ms or N s, e.g. 300ms or 6s`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
}

/** The n-th distinct loopback source address of a group: 127.<group>.<hi>.<lo>, lo in 1..250. */
function sourceAddress(group: number, n: number): string {
  return `127.${group}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}


function message10k(n: number): string {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuvwxyz.\r\n';
  const body = line.repeat(Math.ceil(10240 / line.length)).slice(0, 10240);
  return `From: bench@sender.test\r\nTo: info@example.com\r\nSubject: bench ${n}\r\nMessage-ID: <bench-${n}@sender.test>\r\n\r\n${body}`;
}

/** Runs `count` jobs with at most `parallel` at once; stops starting new ones after the deadline. */
async function runBounded(count: number, parallel: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count && Date.now() < DEADLINE) {
      const i = next++;
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

function connectSmtp(localAddress: string, port: number): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({ host: '127.0.0.1', port, localAddress, ignoreTLS: true, connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 });
    connection.once('error', reject);
    connection.connect(() => resolve(connection));
  });
}

function send(connection: SMTPConnection, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.send({ from: 'bench@sender.test', to: ['info@example.com'] }, message10k(n), (error) => (error ? reject(error) : resolve()));
  });
}

/** A raw session: connect, optionally talk early, read until the server closes or the greeting is complete. */
function rawSession(localAddress: string, port: number, talkEarly: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let seen = '';
    const timer = setTimeout(() => socket.destroy(), 30_000);
    socket.on('connect', () => {
      if (talkEarly) socket.write('EHLO bot.example\r\n');
    });
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      if (/^220 /m.test(seen) && !talkEarly) socket.end('QUIT\r\n');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(seen.split('\r\n').filter(Boolean).pop() ?? '');
    });
  });
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kib / 1024;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mxscreen-bench-'));
  const dns = await startDnsServer();
  // RFC 5782 §5 test point: without it the DNSBL self-test marks the zone unhealthy.
  dns.listDnsbl(ZONE, '127.0.0.2', ['127.0.0.2'], 300);
  for (let i = 0; i < LISTED; i += 1) dns.listDnsbl(ZONE, sourceAddress(3, i), ['127.0.0.2'], 300);
  const sink = await Sink.start({ listen: '127.0.0.1:0' });
  writeFileSync(join(work, 'transport'), `example.com smtp:[127.0.0.1]:${sink.port}\n`);
  writeFileSync(join(work, 'relay_recipients'), '@example.com OK\n');
  writeFileSync(
    join(work, 'main.cf'),
    [
      'myhostname = mx1.bench.test',
      'mxscreen_listen = 127.0.0.1:0',
      'mxscreen_metrics_listen =',
      `mxscreen_dns_servers = 127.0.0.1:${dns.port}`,
      'mynetworks = 127.0.0.1/32',
      'queue_directory = queue',
      `postscreen_greet_wait = ${GREET_WAIT}`,
      'postscreen_greet_action = drop',
      `postscreen_dnsbl_sites = ${ZONE}*2`,
      'postscreen_dnsbl_action = drop',
      'postscreen_dnsbl_timeout = 2s',
      'relay_domains = example.com',
      'relay_recipient_maps = hash:relay_recipients',
      'transport_maps = hash:transport',
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      'queue_run_delay = 1s',
      '',
    ].join('\n'),
  );
  const { child, port, exited } = await startMxscreenProcess(join(work, 'main.cf'));
  const outcomes = { clean: 0, listedRefused: 0, pregreetRefused: 0, other: 0 };
  const mail = { accepted: 0, failed: 0 };
  try {
    // 1. connection screening: new clean clients, DNSBL-listed clients and pregreet talkers, interleaved.
    const kinds = [
      ...Array.from({ length: CONNECTIONS }, (_, i) => ({ kind: 'clean' as const, i })),
      ...Array.from({ length: LISTED }, (_, i) => ({ kind: 'listed' as const, i })),
      ...Array.from({ length: PREGREET }, (_, i) => ({ kind: 'pregreet' as const, i })),
    ].sort((a, b) => (a.i * 7 + a.kind.length) % 13 - (b.i * 7 + b.kind.length) % 13);
    const connectStart = performance.now();
    // SESSIONS at once: below postscreen_pre_queue_limit (100), which would answer 421.
    await runBounded(kinds.length, SESSIONS, async (j) => {
      const { kind, i } = kinds[j];
      const group = kind === 'clean' ? 2 : kind === 'listed' ? 3 : 4;
      const last = await rawSession(sourceAddress(group, i), port, kind === 'pregreet');
      if (kind === 'clean' && last.startsWith('221')) outcomes.clean += 1;
      else if (kind === 'listed' && last.startsWith('521')) outcomes.listedRefused += 1;
      else if (kind === 'pregreet' && last.startsWith('521')) outcomes.pregreetRefused += 1;
      else outcomes.other += 1;
    });
    const connectSeconds = (performance.now() - connectStart) / 1000;
    // Clean and listed clients are held for the whole greet wait (pregreet talkers are
    // dropped at once): with SESSIONS at a time, the loop needs at least this long.
    const heldForGreetWait = CONNECTIONS + LISTED;
    const closedLoopSeconds = (heldForGreetWait * GREET_WAIT_MS) / 1000 / SESSIONS;

    // 2. mail: SESSIONS sessions from fresh clients, MESSAGES messages in all.
    const latencies: number[] = [];
    const perSession = Math.ceil(MESSAGES / SESSIONS);
    const mailStart = performance.now();
    await runBounded(SESSIONS, SESSIONS, async (s) => {
      const connection = await connectSmtp(sourceAddress(5, s), port);
      try {
        for (let m = 0; m < perSession && s * perSession + m < MESSAGES && Date.now() < DEADLINE; m += 1) {
          const started = performance.now();
          try {
            await send(connection, s * perSession + m);
            latencies.push(performance.now() - started);
            mail.accepted += 1;
          } catch {
            mail.failed += 1;
          }
        }
      } finally {
        connection.quit();
      }
    });
    const acceptSeconds = (performance.now() - mailStart) / 1000;
    while (sink.count < mail.accepted && Date.now() < DEADLINE) await new Promise((r) => setTimeout(r, 20));
    const deliverSeconds = (performance.now() - mailStart) / 1000;
    latencies.sort((a, b) => a - b);

    const report = {
      machine: `${process.platform} ${process.arch}, node ${process.version}`,
      greetWait: GREET_WAIT,
      connections: kinds.length,
      connectionsPerSecond: +(kinds.length / connectSeconds).toFixed(1),
      connectionsPerSecondBound: {
        measures: `closed loop: ${SESSIONS} connections at a time, ${heldForGreetWait} of them held for the ${GREET_WAIT} greet wait; connections/s cannot exceed this`,
        perSecond: +(kinds.length / closedLoopSeconds).toFixed(1),
        reachedPercent: Math.round((closedLoopSeconds / connectSeconds) * 100),
      },
      screening: outcomes,
      messages: mail,
      acceptedPerSecond: +(mail.accepted / acceptSeconds).toFixed(1),
      deliveredPerSecond: +(sink.count / deliverSeconds).toFixed(1),
      delivered: sink.count,
      transactionLatencyMs: { p50: +percentile(latencies, 50).toFixed(2), p99: +percentile(latencies, 99).toFixed(2) },
      peakRssMiB: +peakRssMiB(child.pid!).toFixed(1),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await sink.close();
    await dns.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});

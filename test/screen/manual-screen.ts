/*
 * manual-screen — a Screener on a loopback listener whose time moves only when the test
 * says so.
 *
 * Decides: the fixture of the screen-stage tests that need time (stress mode, TTLs, the
 * DNSBL self-test): one ManualClock drives the screener's TimerQueue, the verdict cache
 * and, when asked, a DnsblHealth; DNS goes to an in-process DNS server of its own, and
 * every name asked is recorded as it is asked; the handoff plays the policy stage (writes
 * GREETING, keeps the socket open). Every wait for an event (a handoff, a log line, a
 * metric) is bounded; nothing sleeps for a set time.
 * Leaves to others: what each test connects, advances and asserts.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromText } from '../../src/config/config.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import type { DnsResolver } from '../../src/dns/resolver.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { DnsblHealth } from '../../src/screen/dnsbl-health.js';
import { parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';
import { SmtpListener } from '../../src/screen/listener.js';
import { Screener } from '../../src/screen/screener.js';
import { screenSettingsFromConfig, type ScreenSettings } from '../../src/screen/screen-settings.js';
import { LruVerdictCache } from '../../src/screen/verdict-cache.js';
import type { ScreenVerdict } from '../../src/screen-verdict.js';
import { startDnsServer } from '../fakes/dns-server.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { ManualClock } from '../queue/manual-clock.js';

export const BANNER = 'mx.manual.test ESMTP mxscreen';
/** What the handoff (the policy stage's part) writes first. */
export const GREETING = '220 mx.manual.test ESMTP policy';
/** postscreen_greet_wait's default, ms. */
export const GREET_WAIT_MS = 6_000;
/** Bound of every wait for an event, ms (never reached when the code works). */
export const EVENT_BOUND_MS = 3000;

export function sites(...texts: string[]): DnsblSite[] {
  return texts.map((text) => {
    const site = parseDnsblSite(text);
    if ('error' in site) throw new Error(site.error);
    return site;
  });
}

/**
 * The screen settings of a main.cf with Postfix's defaults (6 s greet wait, 300 s command
 * time limit, pre- and post-queue limits 100, …) except: myhostname mx.manual.test, greet
 * action enforce, DNSBL action drop, no access list; then `overrides`.
 */
export function manualSettings(overrides: Partial<ScreenSettings> = {}): ScreenSettings {
  const mainCf = ['myhostname = mx.manual.test', 'postscreen_greet_action = enforce', 'postscreen_dnsbl_action = drop', 'postscreen_access_list =', ''].join('\n');
  return { ...screenSettingsFromConfig(configFromText(mainCf, { file: join(tmpdir(), 'main.cf'), directory: tmpdir() })), ...overrides };
}

export interface LogLine {
  readonly event?: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface Handoff {
  readonly socket: Socket;
  readonly verdict: ScreenVerdict;
}

export interface ManualScreenOptions {
  /** Run a DnsblHealth on the same clock and resolver, handed to the screener (not started). */
  readonly health?: boolean;
  /** postscreen_cache_retention_time of the verdict cache, ms; default 0. */
  readonly retentionMs?: number;
}

/** Resolves when `ready()` holds, checked every millisecond or so; fails after EVENT_BOUND_MS. */
export async function until(ready: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + EVENT_BOUND_MS;
  while (!(await ready())) {
    if (Date.now() > deadline) assert.fail(`not within ${EVENT_BOUND_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A screener on 127.0.0.1:0 driven by a ManualClock, with its own DNS server (`dns`); `close()` when done. */
export async function startManualScreen(initial: ScreenSettings, options: ManualScreenOptions = {}) {
  const dns = await startDnsServer();
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const logs: LogLine[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const metrics = new Metrics();
  const cache = new LruVerdictCache({ maxEntries: 1000, clock, retentionMs: options.retentionMs ?? 0 });
  const nodeResolver = createNodeResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 });
  /** Every name asked, in order, recorded when the question is put (not when it arrives). */
  const asked: string[] = [];
  const resolver: DnsResolver = {
    ...nodeResolver,
    resolve4(name) {
      asked.push(name);
      return nodeResolver.resolve4(name);
    },
  };
  const health = options.health ? new DnsblHealth({ resolver, clock, log, metrics, timeoutMs: initial.dnsblTimeoutMs }) : undefined;
  health?.setSites(initial.dnsblSites);
  const handoffs: Handoff[] = [];
  const sockets: Socket[] = [];
  const screener = new Screener(initial, {
    resolver,
    clock,
    log,
    metrics,
    cache,
    ...(health ? { health } : {}),
    handoff(socket, verdict) {
      socket.on('error', () => undefined);
      socket.resume();
      socket.write(`${GREETING}\r\n`);
      handoffs.push({ socket, verdict });
    },
  });
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => {
    sockets.push(socket);
    screener.screen(socket);
  });
  const [bound] = await listener.listen();
  assert.ok(bound);
  const clients: ScriptedClient[] = [];
  const counter = async (metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, labels: Record<string, string>) =>
    (await metric.get()).values.filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value)).reduce((sum, v) => sum + v.value, 0);
  return {
    dns,
    clock,
    screener,
    health,
    logs,
    metrics,
    cache,
    handoffs,
    asked,
    resolver,
    port: bound.port,
    events: (event: string) => logs.filter((line) => line.event === event),
    /** Connects from `localAddress` (127.x.y.z). */
    async connect(localAddress: string): Promise<ScriptedClient> {
      const client = await connectClient({ port: bound.port, localAddress });
      clients.push(client);
      return client;
    },
    /** Connects and waits for the teaser line: the screener has admitted the connection and armed its greet wait. */
    async connectTeased(localAddress: string): Promise<ScriptedClient> {
      const client = await connectClient({ port: bound.port, localAddress });
      clients.push(client);
      assert.equal(await client.readLine(EVENT_BOUND_MS), `220-${BANNER}`);
      return client;
    },
    /** The handoff of `client` (its address and port), waiting for it. */
    async handoffOf(client: ScriptedClient): Promise<Handoff> {
      const find = () => handoffs.find((h) => h.verdict.client.address === client.localAddress && h.verdict.client.port === client.localPort);
      await until(() => find() !== undefined, `a handoff of ${client.localAddress}:${client.localPort}`);
      return find()!;
    },
    handedOver: (client: ScriptedClient) => handoffs.some((h) => h.verdict.client.address === client.localAddress && h.verdict.client.port === client.localPort),
    /** The first log line matching `match`, waiting for it. */
    async logLine(match: (line: LogLine) => boolean, what: string): Promise<LogLine> {
      await until(() => logs.some(match), what);
      return logs.find(match)!;
    },
    /** Sum of counter/gauge values whose labels include `labels`. */
    counter,
    /** mxscreen_dnsbl_answers_total for every site, summed. */
    dnsblAnswers: () => counter(metrics.dnsblAnswers, {}),
    async close() {
      health?.stop();
      await listener.close();
      for (const client of clients) await client.close();
      for (const socket of sockets) socket.destroy();
      await dns.close();
    },
  };
}

export type ManualScreen = Awaited<ReturnType<typeof startManualScreen>>;

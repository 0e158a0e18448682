/*
 * screener — the screen stage: one connection from accept to handover, as postscreen(8).
 *
 * Decides the flow: PROXY header (postscreen_upstream_proxy_protocol); connection limits
 * (connection-limits.ts, `NOQUEUE: reject: CONNECT`); CONNECT; postscreen_access_list
 * (ALLOWLISTED / DENYLISTED + postscreen_denylist_action); verdict cache (every early test
 * valid → PASS OLD, no teaser, on any local address); else, off
 * postscreen_allowlist_interfaces, ALLOWLIST VETO (postscreen.c: the client is never handed
 * to smtpd and nothing is cached, so a bot that only tries the backup MX never gets in);
 * then the greet wait (early-tests.ts: pregreet ∥ DNSBL). Every test's result is a
 * ScreenDecision (screen-decision.ts) applied in one place: counted, recorded as the test's
 * state, and under drop 521 and close. Then PASS NEW (cached), or the failed test's action
 * (enforce: handover with the 550; ignore: handover); a vetoed client instead stays in
 * postscreen's own engine (builtin-smtpd.ts, every deep test on, RCPT refused). At handover
 * the deep tests still due run on the live session (deep-tests.ts). Every deadline sits in
 * one TimerQueue. Hangup → HANGUP + DISCONNECT.
 * Leaves to others: reading main.cf (screen-settings.ts), the cache cleanup and the DNSBL
 * self-test (screen-stage.ts), SMTP after the handover (policy/), the tests, the cache store
 * (a shared one answers a lookup within its read deadline: the session waits for it, its
 * socket watched for a hangup).
 * Bugs: pregreet bytes are consumed (pregreet.ts); stress values are fixed constants; on a
 * vetoed address PASS OLD needs every enabled test valid, elsewhere only the early ones
 * (the deep tests run on the live session, which postscreen cannot do).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import { matchNetwork } from '../tables/match-list.js';
import { formatReply, type SmtpReply } from '../errors.js';
import type { DnsResolver } from '../dns/resolver.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { formatClient, type Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { DnsblHealthView } from '../dnsbl/dnsbl-query.js';
import { evaluateAccessList } from './access-list.js';
import { ConnectionLimits, STRESS_COMMAND_TIME_LIMIT_MS, type ConnectionCounts, type ConnectionSlot, type LimitRefusal } from './connection-limits.js';
import { BuiltinSmtpdSession, NOFORWARD_RCPT_REPLY } from './builtin-smtpd.js';
import { DEEP_TESTS, DeepTestSession, type DeepTest, type DeepTestSettings } from './deep-tests.js';
import { EarlyTests } from './early-tests.js';
import { formatSeconds } from './pregreet.js';
import { readProxyHeader } from './proxy-protocol.js';
import type { ScreenSettings } from './screen-settings.js';
import { SCREEN_REPLIES, anyFailure, enforcedFailure, failure, passesToCache, recordPass, screenOutcome, type ScreenDecision, type TestStates } from './screen-decision.js';
import { TimerQueue } from './timer-queue.js';
import { testValid, type CacheRecord, type CachedTest, type VerdictCache } from './verdict-cache.js';
import type { ScreenOutcome, ScreenVerdict } from '../screen-verdict.js';

export interface ScreenerDeps {
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly cache: VerdictCache;
  /** DNSBL site health (dnsbl-health.ts); absent: every site counts. */
  readonly health?: DnsblHealthView;
  /**
   * Receives every connection that survives the screen, paused, with no screener
   * listener left on it. It must attach its own 'error' listener at once.
   */
  readonly handoff: (socket: Socket, verdict: ScreenVerdict) => void;
  /** This process's connection counts after each change (connection-limits.ts; a worker reports them to the owner). */
  readonly onCounts?: (counts: ConnectionCounts) => void;
}

/** Per-connection state, one typed record (no flag bits). */
interface Session {
  readonly id: string;
  readonly socket: Socket;
  readonly settings: ScreenSettings;
  readonly client: { readonly address: string; readonly port: number };
  readonly local: { readonly address: string; readonly port: number };
  /** `[ip]:port` of the client. */
  readonly clientText: string;
  readonly connectedAt: number;
  readonly log: Logger;
  readonly slot: ConnectionSlot;
  /** Stress mode when the connection arrived: greet wait and command time limit. */
  readonly stress: boolean;
  /** The client is in mynetworks (matched once, at connect). */
  readonly inMynetworks: boolean;
  /**
   * postscreen_allowlist_interfaces does not list the local address: a client that is not
   * PASS OLD is never handed over and nothing is cached (postscreen's NOFORWARD).
   */
  readonly veto: boolean;
  /** The cache record found at connect, if any. */
  record: CacheRecord | undefined;
  /** Each test's state in this session (screen-decision.ts): due early tests start as todo. */
  readonly tests: TestStates;
  /** The DNSBL rank of this session's query, once the greet wait is over. */
  dnsblRank: number | undefined;
  /** The greet wait's tests, while they run. */
  early: EarlyTests | undefined;
  /** Listeners the screener added directly, removed before any handover. */
  readonly cleanups: (() => void)[];
  /** The connection left the screen's tests (handover, drop, hangup, the engine): later events do nothing. */
  finished: boolean;
}

/** Random bytes for session ids, drawn in one call per 819 ids (randomBytes is a syscall's worth). */
const SESSION_ID_BYTES = 5;
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

/** A new session id: 10 upper-case hex digits, like a Postfix queue id. */
function newSessionId(): string {
  if (idPoolAt + SESSION_ID_BYTES > idPool.length) {
    idPool = randomBytes(4095);
    idPoolAt = 0;
  }
  idPoolAt += SESSION_ID_BYTES;
  return idPool.toString('hex', idPoolAt - SESSION_ID_BYTES, idPoolAt).toUpperCase();
}

/** The screener of the screen stage (screen-stage.ts). One instance serves every listener; `screen()` per accepted socket. */
export class Screener {
  private settings: ScreenSettings;
  private readonly deps: ScreenerDeps;
  /** Every deadline of every connection, on one clock timer. */
  readonly timers: TimerQueue;
  readonly limits: ConnectionLimits;
  /** postscreen_allowlist_interfaces per local address, for the current settings. */
  private vetoByLocal = new Map<string, boolean>();

  constructor(settings: ScreenSettings, deps: ScreenerDeps) {
    this.settings = settings;
    this.deps = deps;
    this.timers = new TimerQueue(deps.clock);
    this.limits = new ConnectionLimits(settings.limits, { log: deps.log, metrics: deps.metrics, onCounts: deps.onCounts });
  }

  /** Reload: new connections use `settings`; connections being screened keep theirs. */
  setSettings(settings: ScreenSettings): void {
    this.settings = settings;
    this.vetoByLocal = new Map();
    this.limits.setSettings(settings.limits);
  }

  /** Screens one accepted connection; never throws. */
  screen(socket: Socket): void {
    if (socket.remoteAddress === undefined || socket.destroyed) {
      socket.destroy();
      return;
    }
    const settings = this.settings;
    const client = { address: unmapIpv4(socket.remoteAddress), port: socket.remotePort ?? 0 };
    const local = { address: unmapIpv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    if (!settings.proxyProtocol) {
      this.begin(socket, settings, client, local);
      return;
    }
    // The PROXY header comes first; the address it names is the one screened (postscreen_haproxy.c).
    socket.on('error', () => undefined);
    void readProxyHeader(socket, settings.proxyTimeoutMs, this.timers).then((result) => {
      if ('error' in result) {
        this.deps.log.warn(
          { event: 'PROXY', client: formatClient(client.address, client.port), reason: result.error },
          `haproxy read from ${formatClient(client.address, client.port)}: ${result.error}`,
        );
        socket.destroy();
        return;
      }
      if (socket.destroyed) return;
      socket.resume();
      this.begin(socket, settings, result.endpoints?.client ?? client, result.endpoints?.local ?? local);
    });
  }

  /** Limits, CONNECT, then the access list. */
  private begin(socket: Socket, settings: ScreenSettings, client: Session['client'], local: Session['local']): void {
    const { clock, metrics } = this.deps;
    const id = newSessionId();
    const clientText = formatClient(client.address, client.port);
    const log = this.deps.log.child({ session: id, client: clientText });
    log.info({ event: 'CONNECT', local: formatClient(local.address, local.port) }, `CONNECT from ${clientText} to ${formatClient(local.address, local.port)}`);
    const inMynetworks = matchNetwork(settings.mynetworks, client.address);
    const admitted = this.limits.admit(client.address);
    if ('reason' in admitted) {
      this.refuse(socket, log, clientText, admitted);
      return;
    }
    const session: Session = {
      id,
      socket,
      settings,
      client,
      local,
      clientText,
      connectedAt: clock.now(),
      log,
      slot: admitted,
      stress: this.limits.stress,
      inMynetworks,
      veto: this.vetoOn(settings, local.address),
      record: undefined,
      tests: {},
      dnsblRank: undefined,
      early: undefined,
      cleanups: [],
      finished: false,
    };
    // An 'error' before any other listener must not crash the process.
    const onError = () => this.hangup(session, clock.now() - session.connectedAt);
    socket.on('error', onError);
    session.cleanups.push(() => socket.off('error', onError));
    metrics.activeConnections.inc({ stage: 'screen' });
    this.checkAccess(session);
  }

  /** True when postscreen_allowlist_interfaces does not list `localAddress` (a backup MX: ALLOWLIST VETO). */
  private vetoOn(settings: ScreenSettings, localAddress: string): boolean {
    if (settings !== this.settings) return !matchNetwork(settings.allowlistInterfaces, localAddress);
    let veto = this.vetoByLocal.get(localAddress);
    if (veto === undefined) {
      veto = !matchNetwork(settings.allowlistInterfaces, localAddress);
      if (this.vetoByLocal.size < 1024) this.vetoByLocal.set(localAddress, veto);
    }
    return veto;
  }

  /** A connection limit refused the client: `NOQUEUE: reject: CONNECT`, 421, close. */
  private refuse(socket: Socket, log: Logger, clientText: string, refusal: LimitRefusal): void {
    const { metrics } = this.deps;
    metrics.connections.inc({ verdict: 'limit' });
    metrics.smtpReplies.inc({ code: String(refusal.reply.code) });
    log.info({ event: 'NOQUEUE: reject', reason: refusal.reason, code: refusal.reply.code }, `NOQUEUE: reject: CONNECT from ${clientText}: ${refusal.reason}`);
    socket.on('error', () => undefined);
    socket.end(`${formatReply(refusal.reply)}\r\n`, () => socket.destroy());
    this.timers.setTimer(1_000, () => socket.destroy()); // a client that never reads must not hold the socket
  }

  /** postscreen_access_list, then the cache, then the early tests. */
  private checkAccess(session: Session): void {
    const { settings } = session;
    const access = evaluateAccessList(settings.accessList, session.client.address, settings.mynetworks, session.inMynetworks);
    if (access.problem) session.log.warn({ table: access.by }, access.problem);
    switch (access.decision) {
      case 'permit':
        this.apply(session, { test: 'access', outcome: 'pass', until: undefined });
        session.log.info({ event: 'ALLOWLISTED', by: access.by }, `ALLOWLISTED ${session.clientText}`);
        this.handover(session, 'allowlisted');
        return;
      case 'reject':
        session.log.info({ event: 'DENYLISTED', by: access.by, action: settings.denylistAction }, `DENYLISTED ${session.clientText}`);
        this.apply(session, failure('access', settings.denylistAction, SCREEN_REPLIES.access));
        if (session.finished) return;
        break;
      case 'dunno':
        break;
      default: {
        const never: never = access.decision;
        throw new Error(`unknown access decision ${String(never)}`);
      }
    }
    this.checkCache(session);
  }

  /**
   * The cache first (postscreen.c): PASS OLD on any local address; then the backup-MX veto
   * (`ALLOWLIST VETO`); then the early tests, or for a vetoed client with none due, the engine.
   */
  private checkCache(session: Session): void {
    const { settings } = session;
    const needed: CachedTest[] = settings.dnsblSites.length > 0 ? ['pregreet', 'dnsbl'] : ['pregreet'];
    // A failed test skips the cache (postscreen.c: only when no test failed).
    if (anyFailure(session.tests)) {
      this.decideFromCache(session, needed, false);
      return;
    }
    // A shared store (shared-verdict-cache.ts) may answer later, within its read deadline; the near cache at once.
    const found = this.deps.cache.lookup(session.client.address, session.veto ? [...needed, ...settings.deepTests] : needed);
    if (found instanceof Promise) {
      void found.then((record) => {
        if (session.finished) return;
        if (session.socket.destroyed) {
          this.hangup(session, this.deps.clock.now() - session.connectedAt);
          return;
        }
        session.record = record;
        this.decideFromCache(session, needed, true);
      });
      return;
    }
    session.record = found;
    this.decideFromCache(session, needed, true);
  }

  /** PASS OLD, ALLOWLIST VETO, the early tests or the engine, on `session.record` (looked up when `looked`). */
  private decideFromCache(session: Session, needed: readonly CachedTest[], looked: boolean): void {
    const { settings } = session;
    let todo = needed;
    if (looked) {
      const now = this.deps.clock.now();
      todo = needed.filter((test) => !testValid(session.record, test, now));
      // On a vetoed address the deep tests cannot run on a live session: they must be valid too.
      const deepDue = session.veto && [...settings.deepTests].some((test) => !testValid(session.record, test, now));
      if (todo.length === 0 && !deepDue) {
        this.deps.metrics.cacheLookups.inc({ result: 'hit' });
        session.log.info({ event: 'PASS OLD' }, `PASS OLD ${session.clientText}`);
        this.handover(session, 'pass-old');
        return;
      }
      this.deps.metrics.cacheLookups.inc({ result: 'miss' });
    }
    for (const test of todo) session.tests[test] = { status: 'todo' };
    if (session.veto) {
      // postscreen.c: "Don't allowlist clients that connect to backup MX addresses."
      session.log.info({ event: 'ALLOWLIST VETO' }, `ALLOWLIST VETO ${session.clientText}`);
      if (todo.length === 0) {
        this.startEngine(session);
        return;
      }
    }
    this.startEarlyTests(session);
  }

  /** Pregreet ∥ DNSBL during the greet wait (early-tests.ts). */
  private startEarlyTests(session: Session): void {
    const { socket, settings, clientText, connectedAt, log, stress, veto, tests } = session;
    const { resolver, metrics, health } = this.deps;
    session.early = new EarlyTests(
      { socket, settings, address: session.client.address, clientText, connectedAt, log, stress, veto, tests },
      { clock: this.timers, resolver, metrics, ...(health ? { health } : {}) },
      {
        decided: (decision) => this.apply(session, decision),
        concluded: (decisions, dnsblRank) => this.conclude(session, decisions, dnsblRank),
        hangup: (afterMs) => this.hangup(session, afterMs),
      },
    );
    session.early.start();
  }

  /** The greet wait is over: its last results, then the engine (veto) or the handover (psc_conclude). */
  private conclude(session: Session, decisions: readonly ScreenDecision[], dnsblRank: number | undefined): void {
    if (session.finished) return;
    session.dnsblRank = dnsblRank;
    for (const decision of decisions) {
      this.apply(session, decision);
      if (session.finished) return;
    }
    if (session.veto) {
      // ALLOWLIST VETO is a failure too: no PASS line, nothing cached, never handed over.
      this.startEngine(session);
      return;
    }
    const passes = passesToCache(session.tests);
    if (Object.keys(passes).length > 0) this.store(session, passes, []);
    const outcome = screenOutcome(session.tests, session.record !== undefined);
    if (outcome === 'pass-new' || outcome === 'pass-old') {
      const line = outcome === 'pass-new' ? 'PASS NEW' : 'PASS OLD';
      session.log.info({ event: line, dnsblRank: session.dnsblRank }, `${line} ${session.clientText}`);
    }
    this.handover(session, outcome);
  }

  /**
   * Applies one test's decision: counts it (mxscreen_screen_verdicts_total), records the
   * test's state, and under drop ends the session with the 521 (PSC_DROP_SESSION_STATE).
   */
  private apply(session: Session, decision: ScreenDecision): void {
    const { metrics } = this.deps;
    if (decision.outcome === 'pass') {
      metrics.screenVerdicts.inc({ test: decision.test, result: 'pass', action: 'none' });
      recordPass(session.tests, decision, session.settings.deepTests);
      return;
    }
    metrics.screenVerdicts.inc({ test: decision.test, result: 'fail', action: decision.action });
    switch (decision.action) {
      case 'drop':
        this.drop(session, decision.reply);
        return;
      case 'enforce':
        session.tests[decision.test] = { status: 'fail', decision };
        return;
      case 'ignore':
        // The access list is un-failed (postscreen.c): the client goes on as if not listed.
        // Another test's ignored failure is logged, then treated as passed and not cached.
        session.tests[decision.test] = decision.test === 'access' ? { status: 'pass', until: undefined } : { status: 'fail', decision };
        return;
      default: {
        const never: never = decision.action;
        throw new Error(`unknown action ${String(never)}`);
      }
    }
  }

  /** Merges passes into the client's cache record and removes failed tests (never called for a vetoed client). */
  private store(session: Session, passes: Partial<Record<CachedTest, number>>, failed: readonly CachedTest[]): void {
    const current: { -readonly [T in CachedTest]?: number } = { ...this.deps.cache.get(session.client.address), ...passes };
    for (const test of failed) delete current[test];
    this.deps.cache.set(session.client.address, current);
    this.deps.metrics.cacheEntries.set(this.deps.cache.size);
  }

  /** Stops timers and watches and removes every listener the screener added. */
  private stopTests(session: Session): void {
    session.finished = true;
    session.early?.stop();
    for (const cleanup of session.cleanups.splice(0)) cleanup();
  }

  /** stopTests, and the connection leaves the screen stage's gauge. */
  private finish(session: Session): void {
    this.stopTests(session);
    this.deps.metrics.activeConnections.dec({ stage: 'screen' });
  }

  /**
   * A vetoed client goes on in postscreen's own engine (psc_smtpd_tests with NOFORWARD):
   * every deep test on, the limits for the whole session, RCPT refused, nothing cached; the
   * connection stays in the screen stage until it closes.
   */
  private startEngine(session: Session): void {
    if (session.finished) return;
    this.stopTests(session);
    const { settings, socket } = session;
    this.deps.metrics.connections.inc({ verdict: 'noforward' });
    const startedAt = this.timers.now();
    const pregreet = session.tests.pregreet;
    const noGreeting = pregreet?.status === 'fail' && pregreet.decision.action === 'enforce';
    const monitor = new DeepTestSession(
      socket,
      {
        ...this.deepTestSettings(session, new Set(DEEP_TESTS)),
        wholeSession: true,
        greeting: !noGreeting,
      },
      { clock: this.timers, log: session.log, metrics: this.deps.metrics, clientText: session.clientText, record: () => undefined },
    );
    new BuiltinSmtpdSession(
      socket,
      {
        profile: settings.engine,
        greeting: !noGreeting,
        lineLengthLimit: settings.lineLengthLimit,
        // The last enforce failure wins (PSC_ENFORCE_SESSION_STATE): a deep test, else an early test.
        rcptReply: () => monitor.failure()?.reply ?? enforcedFailure(session.tests)?.reply ?? NOFORWARD_RCPT_REPLY,
      },
      {
        log: session.log,
        metrics: this.deps.metrics,
        clientText: session.clientText,
        closedByTests: () => monitor.closing,
        onEnd: (how) => {
          session.slot.release();
          this.deps.metrics.activeConnections.dec({ stage: 'screen' });
          if (how === 'hangup') this.logHangup(session, this.timers.now() - startedAt, 'tests after SMTP handshake');
        },
      },
    );
  }

  /** The deep tests due in this session (enabled, not valid in the cache), as a monitor. */
  private deepTests(session: Session, outcome: ScreenOutcome): DeepTestSession | undefined {
    const { settings } = session;
    if (settings.deepTests.size === 0 || outcome === 'allowlisted' || outcome === 'enforce') return undefined;
    const now = this.timers.now();
    const record = this.deps.cache.get(session.client.address);
    // A deep test passed in this session only by the DNSWL rule (postscreen_dnsbl_allowlist_threshold).
    const passed = (test: DeepTest) => session.tests[test]?.status === 'pass';
    const due = new Set(DEEP_TESTS.filter((test) => settings.deepTests.has(test) && !testValid(record, test, now) && !passed(test)));
    if (due.size === 0) return undefined;
    return new DeepTestSession(session.socket, this.deepTestSettings(session, due), {
      clock: this.timers,
      log: session.log,
      metrics: this.deps.metrics,
      clientText: session.clientText,
      record: (passes, failed) => this.store(session, passes, failed),
    });
  }

  /** The deep tests' settings for `tests` in this session (stress mode as at connect). */
  private deepTestSettings(session: Session, tests: ReadonlySet<DeepTest>): DeepTestSettings {
    const { settings } = session;
    const ttls = [settings.greetTtlMs, settings.dnsblMinTtlMs, ...[...settings.deepTests].map((test) => settings.deepTtlMs[test])];
    return {
      tests,
      actions: settings.deepActions,
      ttlMs: settings.deepTtlMs,
      ignoreTtlMs: Math.min(...ttls),
      forbiddenCommands: settings.forbiddenCommands,
      commandCountLimit: settings.commandCountLimit,
      commandTimeLimitMs: session.stress ? Math.min(STRESS_COMMAND_TIME_LIMIT_MS, settings.commandTimeLimitMs) : settings.commandTimeLimitMs,
      lineLengthLimit: settings.lineLengthLimit,
      hostname: settings.myhostname,
    };
  }

  private handover(session: Session, outcome: ScreenOutcome): void {
    if (session.finished) return;
    this.finish(session);
    const { socket } = session;
    const refusal = session.slot.handover();
    if (refusal) {
      session.slot.release();
      this.refuse(socket, session.log, session.clientText, refusal);
      return;
    }
    socket.once('close', () => session.slot.release());
    socket.pause();
    this.deps.metrics.connections.inc({ verdict: outcome });
    const deepTests = this.deepTests(session, outcome);
    const enforce = enforcedFailure(session.tests);
    const verdict: ScreenVerdict = {
      sessionId: session.id,
      client: session.client,
      local: session.local,
      outcome,
      ...(enforce ? { enforce: { test: enforce.test, reply: enforce.reply } } : {}),
      ...(session.dnsblRank !== undefined ? { dnsblRank: session.dnsblRank } : {}),
      connectedAt: session.connectedAt,
      ...(deepTests ? { deepTests } : {}),
    };
    try {
      this.deps.handoff(socket, verdict);
    } catch (error) {
      session.log.error({ event: 'DISCONNECT', err: error }, `handover failed; DISCONNECT ${session.clientText}`);
      socket.destroy();
      return;
    }
    if (socket.listenerCount('error') === 0) {
      // XXX: a handoff that forgets its 'error' listener would crash the process on ECONNRESET.
      socket.on('error', () => undefined);
    }
  }

  /** drop: the reply, then close (PSC_DROP_SESSION_STATE). */
  private drop(session: Session, reply: SmtpReply): void {
    if (session.finished) return;
    this.finish(session);
    session.slot.release();
    const { socket } = session;
    socket.on('error', () => undefined); // the client may be gone already
    this.deps.metrics.connections.inc({ verdict: 'drop' });
    this.deps.metrics.smtpReplies.inc({ code: String(reply.code) });
    socket.end(`${formatReply(reply)}\r\n`, () => socket.destroy());
    session.log.info({ event: 'DISCONNECT', reply: formatReply(reply) }, `DISCONNECT ${session.clientText}`);
  }

  /** The client went away during the screen (psc_hangup_event). */
  private hangup(session: Session, afterMs: number): void {
    if (session.finished) return;
    this.finish(session);
    session.slot.release();
    session.socket.on('error', () => undefined);
    session.socket.destroy();
    this.logHangup(session, afterMs, 'tests before SMTP handshake');
  }

  /** `HANGUP after s from [ip]:port in PHASE`, then DISCONNECT (psc_hangup_event, psc_conclude). */
  private logHangup(session: Session, afterMs: number, phase: 'tests before SMTP handshake' | 'tests after SMTP handshake'): void {
    this.deps.metrics.connections.inc({ verdict: 'hangup' });
    session.log.info({ event: 'HANGUP', after: Number(formatSeconds(afterMs)) }, `HANGUP after ${formatSeconds(afterMs)} from ${session.clientText} in ${phase}`);
    session.log.info({ event: 'DISCONNECT' }, `DISCONNECT ${session.clientText}`);
  }
}

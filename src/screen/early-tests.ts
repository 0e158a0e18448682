/*
 * early-tests — the greet wait: the pregreet test ∥ the DNSBL query, as postscreen_early.c.
 *
 * Decides (postscreen(8) "Tests before the 220 SMTP server greeting", postscreen_early.c):
 * what runs while the client waits for its greeting: the teaser and the pregreet watch when
 * pregreet is due (else only a watch for the client's hangup, its bytes left unread for the
 * policy stage), the DNSBL query when dnsbl is due. When the wait ends: after
 * postscreen_greet_wait (at most STRESS_GREET_WAIT_MS for a connection admitted in stress
 * mode); as soon as every due test has its result (pregreet failed, the query settled); or
 * when the query settles with a DNSWL rank at or below postscreen_dnsbl_allowlist_threshold
 * (< 0) in a session where no test failed and the address is not vetoed. Each result as a
 * ScreenDecision: a pregreet failure at once (logged `PREGREET`); at the end a pregreet pass
 * (postscreen_greet_ttl) and the DNSBL result from the score so far (a site that has not
 * answered counts as not listed): under the allowlist threshold every test passes, below
 * postscreen_dnsbl_threshold a pass, else a failure logged `DNSBL rank`; a DNSBL pass lasts
 * the answer's TTL within postscreen_dnsbl_min_ttl … postscreen_dnsbl_max_ttl.
 * Leaves to others: applying the decisions, the session's test states, the cache and the
 * handover (screener.ts); the teaser and pregreet watch (pregreet.ts); the query and the
 * rank (dnsbl/dnsbl-query.ts).
 */
import type { Socket } from 'node:net';
import type { Clock, Timer } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { startDnsblQuery, type DnsblHealthView, type DnsblQuery, type DnsblScore } from '../dnsbl/dnsbl-query.js';
import { dnsblDisplayName } from '../dnsbl/dnsbl-reply-map.js';
import { STRESS_GREET_WAIT_MS } from './connection-limits.js';
import { formatPregreet, formatSeconds, watchPregreet, type PregreetEvent, type PregreetWatch } from './pregreet.js';
import { SCREEN_REPLIES, anyFailure, dnsblFailure, failure, type ScreenDecision, type TestStates } from './screen-decision.js';
import type { ScreenSettings } from './screen-settings.js';
import { dnsblLifetimeMs } from './verdict-cache.js';

/** The session the early tests run in. */
export interface EarlyTestsSession {
  readonly socket: Socket;
  readonly settings: ScreenSettings;
  /** The client's address, as the DNSBL query and the reply name it. */
  readonly address: string;
  /** `[ip]:port` of the client, for log lines. */
  readonly clientText: string;
  /** When the connection was accepted, ms since the epoch. */
  readonly connectedAt: number;
  readonly log: Logger;
  /** The connection was admitted in stress mode: the shorter greet wait. */
  readonly stress: boolean;
  /** postscreen_allowlist_interfaces vetoes the local address: no DNSWL pass. */
  readonly veto: boolean;
  /** The session's test states (the screener records them): pregreet and dnsbl run when `todo`. */
  readonly tests: Readonly<TestStates>;
}

export interface EarlyTestsDeps {
  /** The screener's timer queue. */
  readonly clock: Clock;
  readonly resolver: DnsResolver;
  readonly metrics: Metrics;
  /** DNSBL site health (dnsbl-health.ts); absent: every site counts. */
  readonly health?: DnsblHealthView;
}

/** What the early tests report; none is called after stop(). */
export interface EarlyTestsEvents {
  /** A result while the wait goes on (a pregreet failure); applying it may end the session. */
  decided(decision: ScreenDecision): void;
  /** The wait is over: the other results, in test order, and the DNSBL rank when a query ran. */
  concluded(decisions: readonly ScreenDecision[], dnsblRank: number | undefined): void;
  /** The client went away, `afterMs` after it connected. */
  hangup(afterMs: number): void;
}

/** The early tests of one session (psc_early_tests); start() once, stop() ends them. */
export class EarlyTests {
  readonly #session: EarlyTestsSession;
  readonly #deps: EarlyTestsDeps;
  readonly #events: EarlyTestsEvents;
  #watch: PregreetWatch | undefined;
  #stopClose: (() => void) | undefined;
  #query: DnsblQuery | undefined;
  #answered = false;
  #timer: Timer | undefined;
  #stopped = false;

  constructor(session: EarlyTestsSession, deps: EarlyTestsDeps, events: EarlyTestsEvents) {
    this.#session = session;
    this.#deps = deps;
    this.#events = events;
  }

  /** Sends the teaser and starts the due tests and the greet wait. */
  start(): void {
    const { socket, settings, tests, connectedAt } = this.#session;
    const { clock } = this.#deps;
    if (tests.pregreet?.status === 'todo') {
      this.#watch = watchPregreet(socket, { banner: settings.greetBanner, connectedAt, clock }, (event) => this.#onPregreet(event));
    } else {
      // Not reading: bytes wait in the socket for the policy stage. Watch only for the end.
      const onClose = () => this.#events.hangup(clock.now() - connectedAt);
      socket.on('close', onClose);
      this.#stopClose = () => socket.off('close', onClose);
    }
    if (tests.dnsbl?.status === 'todo') this.#startQuery();
    if (this.#stopped) return; // the teaser write may already have failed
    const greetWaitMs = this.#session.stress ? Math.min(STRESS_GREET_WAIT_MS, settings.greetWaitMs) : settings.greetWaitMs;
    this.#timer = clock.setTimer(greetWaitMs, () => this.#conclude(false));
  }

  /** Stops the timer, the watch and the query's effect; removes every listener added. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#watch?.stop();
    this.#stopClose?.();
  }

  #startQuery(): void {
    const { settings, address, log } = this.#session;
    const { resolver, clock, metrics, health } = this.#deps;
    const query = startDnsblQuery(settings.dnsblSites, address, settings.dnsblTimeoutMs, {
      resolver,
      clock,
      metrics,
      log,
      displayName: (domain) => dnsblDisplayName(settings.dnsblReplyMap, domain),
      ...(health ? { health } : {}),
    });
    this.#query = query;
    void query.settled.then((score) => {
      if (this.#stopped) return;
      this.#answered = true;
      if (this.#allowlists(score)) this.#conclude(true);
      else if (this.#done()) this.#conclude(false);
    });
  }

  /** postscreen_dnsbl_allowlist_threshold (psc_early_dnsbl_event): ends the wait, every test passed. */
  #allowlists(score: DnsblScore): boolean {
    const { settings, tests, veto } = this.#session;
    return settings.dnsblAllowlistThreshold < 0 && score.rank <= settings.dnsblAllowlistThreshold && !anyFailure(tests) && !veto;
  }

  /** True when no due test can still change: pregreet failed or not due, DNSBL answered or not due. */
  #done(): boolean {
    const { tests } = this.#session;
    return tests.pregreet?.status !== 'todo' && (tests.dnsbl === undefined || this.#answered);
  }

  #onPregreet(event: PregreetEvent): void {
    if (this.#stopped) return;
    switch (event.kind) {
      case 'hangup':
        this.#events.hangup(event.afterMs);
        return;
      case 'talk': {
        const { settings, log, clientText } = this.#session;
        log.info(
          { event: 'PREGREET', bytes: event.bytes, after: Number(formatSeconds(event.afterMs)), text: event.text, action: settings.greetAction },
          formatPregreet(event, clientText),
        );
        this.#events.decided(failure('pregreet', settings.greetAction, SCREEN_REPLIES.pregreet));
        if (!this.#stopped && this.#done()) this.#conclude(false);
        return;
      }
      default: {
        const never: never = event;
        throw new Error(`unknown pregreet event ${JSON.stringify(never)}`);
      }
    }
  }

  /** End of the greet wait (psc_early_event EVENT_TIME), or every due test has its result. */
  #conclude(allowlisted: boolean): void {
    if (this.#stopped) return;
    this.stop();
    const { settings, tests } = this.#session;
    const now = this.#deps.clock.now();
    const decisions: ScreenDecision[] = [];
    if (tests.pregreet?.status === 'todo') decisions.push({ test: 'pregreet', outcome: 'pass', until: now + settings.greetTtlMs });
    let rank: number | undefined;
    if (this.#query) {
      const score = this.#query.score();
      rank = score.rank;
      decisions.push(this.#dnsblDecision(score, allowlisted, now));
    }
    this.#events.concluded(decisions, rank);
  }

  /** The DNSBL test's result from `score` (partial when some site has not answered yet). */
  #dnsblDecision(score: DnsblScore, allowlisted: boolean, now: number): ScreenDecision {
    const { settings, log, clientText, address } = this.#session;
    this.#deps.metrics.dnsblRank.observe(score.rank);
    const until = now + dnsblLifetimeMs(score.ttlSeconds, settings.dnsblMinTtlMs, settings.dnsblMaxTtlMs);
    // postscreen_dnsbl_allowlist_threshold: every test is flagged passed with the DNSBL TTL.
    if (allowlisted) return { test: 'dnsbl', outcome: 'pass', until, everyTest: true };
    if (score.rank < settings.dnsblThreshold) return { test: 'dnsbl', outcome: 'pass', until };
    const site = dnsblDisplayName(settings.dnsblReplyMap, score.listedBy ?? settings.dnsblSites[0]?.domain ?? 'unknown');
    log.info(
      {
        event: 'DNSBL rank',
        rank: score.rank,
        site,
        sites: score.sites.map((s) => ({ domain: dnsblDisplayName(settings.dnsblReplyMap, s.domain), result: s.result, weight: s.weight })),
        action: settings.dnsblAction,
      },
      `DNSBL rank ${score.rank} for ${clientText}`,
    );
    return dnsblFailure(settings.dnsblAction, address, site);
  }
}

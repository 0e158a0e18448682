/*
 * dnsbl-health — is each DNSBL/DNSWL site answering as a list should? (RFC 5782 §5)
 *
 * Decides: a periodic self-test per site: `2.0.0.127.<zone>` must be listed with a
 * real listing code and `1.0.0.127.<zone>` must not be listed. A site that fails it
 * (Spamhaus answering 127.255.255.254 to a public resolver, a DNSWL answering
 * 127.0.0.255, a zone that does not answer) is unhealthy: its answers stop counting
 * (dnsbl.ts skips it), the change is logged once (event `DNSBL health`) and the gauge
 * mxscreen_dnsbl_site_healthy{site} is 0. It is healthy again after a passing test. A
 * site is healthy until a test says otherwise. An error code in one client's answer only
 * asks for an early self-test (at most one per site per EARLY_TEST_SPACING_MS): one odd
 * answer never switches a site off by itself.
 * Leaves to others: the client queries and the rank (dnsbl.ts), the schedule's clock.
 * Bugs: the interval is fixed (SELF_TEST_INTERVAL_MS), not a main.cf parameter.
 */
import type { Clock, Timer } from '../clock.js';
import { DnsError, type DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { DnsblHealthView } from '../dnsbl/dnsbl-query.js';
import { readDnsblAnswer, readDnsblFailure } from '../dnsbl/dnsbl-answer.js';
import type { DnsblSite } from '../dnsbl/dnsbl-site.js';

/** Time between two periodic self-tests of every site, ms. */
export const SELF_TEST_INTERVAL_MS = 300_000;
/** Shortest time between two self-tests of one site asked by client answers, ms. */
export const EARLY_TEST_SPACING_MS = 60_000;

/** The outcome of one self-test: healthy, or why not. */
export type SelfTestResult = { readonly healthy: true } | { readonly healthy: false; readonly reason: string };

interface SiteState {
  readonly allowlist: boolean;
  healthy: boolean;
  lastTestAt: number | undefined;
  running: Promise<SelfTestResult> | undefined;
}

export interface DnsblHealthDeps {
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Time limit of one self-test query, ms (postscreen_dnsbl_timeout). */
  readonly timeoutMs: number;
  /** The name logs and the gauge show for a domain (postscreen_dnsbl_reply_map). */
  readonly displayName?: (domain: string) => string;
}

/** Runs `lookup` with a deadline on `clock`; a late answer is a DnsError timeout. */
function withDeadline<T>(clock: Clock, ms: number, query: string, lookup: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(ms, () => reject(new DnsError('timeout', query)));
    lookup.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        reject(error);
      },
    );
  });
}

/**
 * The RFC 5782 §5 self-test of `zone`. `allowlist`: the zone is a DNSWL (127.0.0.255 is
 * an error code there). Never rejects.
 */
export async function selfTestSite(zone: string, allowlist: boolean, deps: Pick<DnsblHealthDeps, 'resolver' | 'clock' | 'timeoutMs'>): Promise<SelfTestResult> {
  const ask = (name: string) => withDeadline(deps.clock, deps.timeoutMs, name, deps.resolver.resolve4(name));
  try {
    const listed = await ask(`2.0.0.127.${zone}`);
    if (listed.length === 0) return { healthy: false, reason: '127.0.0.2 is not listed' };
    const { codes } = readDnsblAnswer(listed, allowlist);
    if (codes.length > 0) return { healthy: false, reason: `127.0.0.2 answered error code ${codes.map((answer) => answer.address).join(' ')}` };
  } catch (error) {
    const failure = readDnsblFailure(error);
    return { healthy: false, reason: failure.result === 'not_listed' ? '127.0.0.2 is not listed' : `127.0.0.2 lookup failed: ${failure.kind}` };
  }
  try {
    const listed = await ask(`1.0.0.127.${zone}`);
    if (listed.length > 0) return { healthy: false, reason: `127.0.0.1 is listed (${listed.map((a) => a.address).join(' ')})` };
  } catch (error) {
    const failure = readDnsblFailure(error);
    if (failure.result !== 'not_listed') return { healthy: false, reason: `127.0.0.1 lookup failed: ${failure.kind}` };
  }
  return { healthy: true };
}

/** The health of every configured site; one instance per process. */
export class DnsblHealth implements DnsblHealthView {
  readonly #deps: DnsblHealthDeps;
  #sites = new Map<string, SiteState>();
  #timer: Timer | undefined;
  #stopped = true;

  constructor(deps: DnsblHealthDeps) {
    this.#deps = deps;
  }

  #shown(domain: string): string {
    return this.#deps.displayName?.(domain) ?? domain;
  }

  /** The sites to watch (start and reload). A site kept across a reload keeps its health. */
  setSites(sites: readonly DnsblSite[]): void {
    const next = new Map<string, SiteState>();
    for (const site of sites) {
      if (next.has(site.domain)) continue;
      const allowlist = sites.some((s) => s.domain === site.domain && s.weight < 0);
      const known = this.#sites.get(site.domain);
      next.set(site.domain, known && known.allowlist === allowlist ? known : { allowlist, healthy: true, lastTestAt: undefined, running: undefined });
    }
    for (const domain of this.#sites.keys()) {
      if (!next.has(domain)) this.#deps.metrics.dnsblSiteHealthy.remove({ site: this.#shown(domain) });
    }
    this.#sites = next;
    for (const [domain, state] of next) this.#deps.metrics.dnsblSiteHealthy.set({ site: this.#shown(domain) }, state.healthy ? 1 : 0);
  }

  /** Tests every site now, then every SELF_TEST_INTERVAL_MS on the clock. */
  start(): void {
    this.#stopped = false;
    const round = () => {
      if (this.#stopped) return;
      void this.checkAll();
      this.#timer = this.#deps.clock.setTimer(SELF_TEST_INTERVAL_MS, round);
    };
    round();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  healthy(domain: string): boolean {
    return this.#sites.get(domain)?.healthy ?? true;
  }

  suspect(domain: string): void {
    const state = this.#sites.get(domain);
    if (!state || state.running) return;
    const now = this.#deps.clock.now();
    if (state.lastTestAt !== undefined && now - state.lastTestAt < EARLY_TEST_SPACING_MS) return;
    void this.check(domain);
  }

  /** Self-tests every site at once. Resolves when all are done. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.#sites.keys()].map((domain) => this.check(domain)));
  }

  /** Self-tests `domain` (one test at a time per site), applies and returns the result. */
  check(domain: string): Promise<SelfTestResult> {
    const state = this.#sites.get(domain);
    if (!state) return Promise.resolve({ healthy: true });
    state.running ??= (async () => {
      state.lastTestAt = this.#deps.clock.now();
      const result = await selfTestSite(domain, state.allowlist, this.#deps);
      state.running = undefined;
      this.#apply(domain, state, result);
      return result;
    })();
    return state.running;
  }

  #apply(domain: string, state: SiteState, result: SelfTestResult): void {
    if (this.#sites.get(domain) !== state) return; // removed by a reload meanwhile
    const site = this.#shown(domain);
    this.#deps.metrics.dnsblSiteHealthy.set({ site }, result.healthy ? 1 : 0);
    if (result.healthy === state.healthy) return;
    state.healthy = result.healthy;
    if (result.healthy) {
      this.#deps.log.info({ event: 'DNSBL health', site, healthy: true }, `DNSBL site ${site} passes its self-test again; its answers count`);
    } else {
      this.#deps.log.warn({ event: 'DNSBL health', site, healthy: false, reason: result.reason }, `DNSBL site ${site} fails its self-test: ${result.reason}; its answers do not count`);
    }
  }
}

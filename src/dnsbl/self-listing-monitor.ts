/*
 * self-listing-monitor — checks our own addresses on the DNSBL sites at start and every
 * mxscreen_self_listing_interval, and tells when that changes.
 *
 * Decides: one round at a time (self-listing.ts), the next one an interval after the last
 * ended; a reload that changes the addresses or sites runs a round at once, one that
 * changes only the interval re-arms the timer. What a round shows: the gauge
 * mxscreen_self_listed{site,address} (1 listed, 0 not; a pair that could not be checked
 * keeps its last known value, so a DNS failure never clears a listing alert; no series
 * before the first round that could tell), mxscreen_self_listing_check_success{site}, and
 * log lines once per change: `SELF LISTED` (warn, with the TXT reason; also the first time
 * a pair is found listed), `SELF DELISTED` (info), `SELF LISTING CHECK` (warn when a site
 * stops being checkable, including on the first round; info when it can tell again).
 * Leaves to others: the queries (self-listing.ts), main.cf (self-listing-settings.ts),
 * starting and stopping with the process (main.ts).
 */
import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { checkSelfListing, type SelfListingQuery, type SelfListingRound } from './self-listing.js';
import type { SelfListingSettings } from './self-listing-settings.js';

export interface SelfListingMonitorDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Runs one round; default checkSelfListing with the dnsbl package. */
  readonly check?: (query: SelfListingQuery) => Promise<SelfListingRound>;
}

type Known = 'listed' | 'not-listed';

function pairKey(address: string, shown: string): string {
  return `${address} ${shown}`;
}

/** The monitor; one per process. Off (no timer, no series) while there is no address or no site. */
export class SelfListingMonitor {
  readonly #deps: SelfListingMonitorDeps;
  #settings: SelfListingSettings;
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  /** Last known answer per pair (address, shown site). */
  readonly #known = new Map<string, Known>();
  /** Whether each shown site could tell in its last round. */
  readonly #checkable = new Map<string, boolean>();

  constructor(settings: SelfListingSettings, deps: SelfListingMonitorDeps) {
    this.#settings = settings;
    this.#deps = deps;
  }

  #on(): boolean {
    return !this.#stopped && this.#settings.addresses.length > 0 && this.#settings.sites.length > 0;
  }

  /** Runs the first round now, then one every interval. */
  start(): void {
    this.#stopped = false;
    void this.runRound();
  }

  /** No more rounds (one running finishes; its answers are still shown). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** Reload: forgets pairs and sites no longer configured (their series go), then a round at once when addresses or sites changed. */
  setSettings(next: SelfListingSettings): void {
    const previous = this.#settings;
    this.#settings = next;
    const pairs = new Set(next.addresses.flatMap((address) => next.sites.map((site) => pairKey(address, site.shown))));
    for (const address of previous.addresses) {
      for (const site of previous.sites) {
        const key = pairKey(address, site.shown);
        if (pairs.has(key) || !this.#known.delete(key)) continue;
        this.#deps.metrics.selfListed.remove({ site: site.shown, address });
      }
    }
    const shown = new Set(next.sites.map((site) => site.shown));
    for (const site of this.#checkable.keys()) {
      if (next.addresses.length > 0 && shown.has(site)) continue;
      this.#checkable.delete(site);
      this.#deps.metrics.selfListingCheckSuccess.remove({ site });
    }
    const siteList = (settings: SelfListingSettings) => settings.sites.map((site) => `${site.domain}=${site.shown}`).join(' ');
    const changed = previous.addresses.join(' ') !== next.addresses.join(' ') || siteList(previous) !== siteList(next);
    if (changed) void this.runRound();
    else if (previous.intervalMs !== next.intervalMs && this.#running === undefined) this.#arm();
  }

  /** Resolves when no round is running (the one running now, and any it queued, are done). */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /** Runs a round now (one at a time: a call during a round runs another after it). Resolves when the rounds are done. */
  runRound(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#timer?.cancel();
    this.#timer = undefined;
    if (!this.#on()) return Promise.resolve();
    this.#running = (async () => {
      do {
        this.#again = false;
        const { addresses, sites, servers, timeoutMs } = this.#settings;
        const check = this.#deps.check ?? ((query: SelfListingQuery) => checkSelfListing(query));
        this.#apply(await check({ addresses, sites, servers, timeoutMs }));
      } while (this.#again && this.#on());
      this.#running = undefined;
      this.#arm();
    })();
    return this.#running;
  }

  #arm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (!this.#on()) return;
    this.#timer = this.#deps.clock.setTimer(this.#settings.intervalMs, () => {
      this.#timer = undefined;
      void this.runRound();
    });
  }

  #apply(round: SelfListingRound): void {
    const { log, metrics } = this.#deps;
    const configured = new Set(this.#settings.sites.map((site) => site.shown));
    for (const { site: { shown: site }, checked, why } of round.sites) {
      if (!configured.has(site)) continue; // removed by a reload meanwhile
      metrics.selfListingCheckSuccess.set({ site }, checked ? 1 : 0);
      const before = this.#checkable.get(site);
      this.#checkable.set(site, checked);
      if (before === checked || (before === undefined && checked)) continue;
      if (checked) log.info({ event: 'SELF LISTING CHECK', site, success: true }, `self-listing: DNSBL site ${site} can be checked again`);
      else log.warn({ event: 'SELF LISTING CHECK', site, success: false, reason: why }, `self-listing: could not check DNSBL site ${site}: ${why ?? 'unknown'}`);
    }
    const addresses = new Set(this.#settings.addresses);
    for (const { address, site: { shown: site }, listing } of round.pairs) {
      if (!configured.has(site) || !addresses.has(address)) continue;
      const key = pairKey(address, site);
      const before = this.#known.get(key);
      switch (listing.kind) {
        case 'could-not-check':
          break; // the gauge keeps the last known value
        case 'listed':
          metrics.selfListed.set({ site, address }, 1);
          this.#known.set(key, 'listed');
          if (before !== 'listed') {
            const reason = listing.reason === undefined ? '' : `: ${listing.reason}`;
            log.warn({ event: 'SELF LISTED', address, site, reason: listing.reason }, `our address ${address} is listed by ${site}${reason}`);
          }
          break;
        case 'not-listed':
          metrics.selfListed.set({ site, address }, 0);
          this.#known.set(key, 'not-listed');
          if (before === 'listed') log.info({ event: 'SELF DELISTED', address, site }, `our address ${address} is no longer listed by ${site}`);
          break;
        default:
          listing satisfies never;
      }
    }
  }
}

/*
 * dnsbl — the DNSBL/DNSWL test: query every site for a client and add up the rank.
 *
 * Decides (postscreen(8), postconf(5) postscreen_dnsbl_sites): each distinct domain is
 * asked once, all in parallel; each entry whose filter matches one of the domain's A
 * records adds its weight once; rank = the sum. Answers in 127.255.255.0/24 and
 * 127.0.0.1 are never listings (Spamhaus error codes; metric result `invalid`); a DNS
 * failure or timeout counts as not listed (metric `error`). The reply names the matching
 * site with the largest weight. Cache TTL as Postfix: rank > 0 → the smallest TTL among
 * positive-weight domains' answers, else among negative-weight ones; else undefined.
 * Leaves to others: threshold and action (screener.ts), TTL clamping and caching
 * (verdict-cache.ts), entry syntax (dnsbl-site.ts).
 * Bugs: node:dns hides NXDOMAIN TTLs (SOA minimum), so a clean client's DNSBL pass lasts
 * postscreen_dnsbl_min_ttl unless a DNSWL answered.
 */
import type { Clock } from '../clock.js';
import { DnsError, type AddressAnswer, type DnsResolver } from '../dns/resolver.js';
import { reverseName } from '../dns/reverse-name.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { filterMatches, type DnsblSite } from './dnsbl-site.js';

/** What one domain said about the client. `pending`: no answer yet (partial score). */
export type DnsblSiteResult = 'listed' | 'not_listed' | 'error' | 'invalid' | 'pending';

export interface DnsblDomainScore {
  readonly domain: string;
  readonly result: DnsblSiteResult;
  /** Valid (listing) A records, empty unless `listed`. */
  readonly addresses: readonly string[];
  /** Smallest TTL of the valid A records, seconds; undefined when there were none. */
  readonly ttlSeconds: number | undefined;
  /** Sum of the weights of this domain's entries whose filter matched. */
  readonly weight: number;
}

export interface DnsblScore {
  /** Sum of the weights of matching entries (postscreen "DNSBL rank"). */
  readonly rank: number;
  /** TTL that decides how long the result may be cached, seconds (see file head). */
  readonly ttlSeconds: number | undefined;
  /** The matching site with the largest weight (what the 5xx reply names). */
  readonly listedBy: string | undefined;
  /** One element per distinct domain, in configuration order. */
  readonly sites: readonly DnsblDomainScore[];
}

export interface DnsblDeps {
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** When set, DNS failures other than "not listed" are logged (event `DNSBL error`). */
  readonly log?: Logger;
}

/** A DNSBL lookup in progress. */
export interface DnsblQuery {
  /** Resolves when every domain answered, failed or timed out. Never rejects. */
  readonly settled: Promise<DnsblScore>;
  /** The score from the answers that arrived so far (postscreen's partial score). */
  score(): DnsblScore;
}

/** True for answers that are DNSBL error codes, never listings: 127.255.255.0/24, 127.0.0.1. */
export function isInvalidDnsblAnswer(address: string): boolean {
  return address === '127.0.0.1' || address.startsWith('127.255.255.');
}

interface DomainState {
  result: DnsblSiteResult;
  answers: AddressAnswer[];
}

/** Groups entries by domain, first appearance order. */
function domainsOf(sites: readonly DnsblSite[]): Map<string, DnsblSite[]> {
  const domains = new Map<string, DnsblSite[]>();
  for (const site of sites) {
    const entries = domains.get(site.domain);
    if (entries) entries.push(site);
    else domains.set(site.domain, [site]);
  }
  return domains;
}

/** Computes the score from per-domain answers (pure; see the file head for the rules). */
export function scoreDnsbl(sites: readonly DnsblSite[], states: ReadonlyMap<string, { result: DnsblSiteResult; answers: readonly AddressAnswer[] }>): DnsblScore {
  let rank = 0;
  let listedBy: { domain: string; weight: number } | undefined;
  let failTtl: number | undefined;
  let passTtl: number | undefined;
  const minimum = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
  const scores: DnsblDomainScore[] = [];
  for (const [domain, entries] of domainsOf(sites)) {
    const state = states.get(domain) ?? { result: 'pending' as const, answers: [] };
    const addresses = state.result === 'listed' ? state.answers.map((a) => a.address) : [];
    const ttlSeconds = state.result === 'listed' ? state.answers.reduce<number | undefined>((ttl, a) => minimum(ttl, a.ttl), undefined) : undefined;
    let weight = 0;
    if (addresses.length > 0) {
      for (const entry of entries) {
        if (entry.filter === undefined || addresses.some((address) => filterMatches(entry.filter!, address))) {
          weight += entry.weight;
          if (listedBy === undefined || entry.weight > listedBy.weight) listedBy = { domain, weight: entry.weight };
        }
        if (entry.weight > 0) failTtl = minimum(failTtl, ttlSeconds);
        else passTtl = minimum(passTtl, ttlSeconds);
      }
    }
    rank += weight;
    scores.push({ domain, result: state.result, addresses, ttlSeconds, weight });
  }
  return { rank, ttlSeconds: rank > 0 ? failTtl : passTtl, listedBy: listedBy?.domain, sites: scores };
}

/**
 * Starts the lookups of `address` (IPv4, IPv6, or IPv4-mapped IPv6, queried as IPv4)
 * at every domain of `sites`, one query per distinct domain, each limited to `timeoutMs`
 * (the injected clock; a late answer counts as `error`). Counts metrics dnsblQueries
 * {site,result} and dnsblLatency{site} when each query ends.
 */
export function startDnsblQuery(sites: readonly DnsblSite[], address: string, timeoutMs: number, deps: DnsblDeps): DnsblQuery {
  const states = new Map<string, DomainState>();
  const lookups: Promise<void>[] = [];
  for (const domain of domainsOf(sites).keys()) {
    const state: DomainState = { result: 'pending', answers: [] };
    states.set(domain, state);
    const started = deps.clock.now();
    const name = reverseName(address, domain);
    const finish = (result: DnsblSiteResult, answers: AddressAnswer[]) => {
      if (state.result !== 'pending') return;
      state.result = result;
      state.answers = answers;
      deps.metrics.dnsblQueries.inc({ site: domain, result });
      deps.metrics.dnsblLatency.observe({ site: domain }, Math.max(0, deps.clock.now() - started) / 1000);
    };
    lookups.push(
      new Promise<void>((resolve) => {
        const timer = deps.clock.setTimer(timeoutMs, () => {
          finish('error', []);
          deps.log?.warn({ event: 'DNSBL error', site: domain, query: name, kind: 'timeout' }, `DNSBL lookup error for ${name}: timeout`);
          resolve();
        });
        deps.resolver.resolve4(name).then(
          (answers) => {
            timer.cancel();
            const valid = answers.filter((a) => !isInvalidDnsblAnswer(a.address));
            finish(valid.length > 0 ? 'listed' : answers.length > 0 ? 'invalid' : 'not_listed', valid);
            resolve();
          },
          (error: unknown) => {
            timer.cancel();
            const kind = error instanceof DnsError ? error.kind : 'other';
            if (kind === 'nxdomain' || kind === 'nodata') {
              finish('not_listed', []);
            } else {
              finish('error', []);
              deps.log?.warn({ event: 'DNSBL error', site: domain, query: name, kind }, `DNSBL lookup error for ${name}: ${kind}`);
            }
            resolve();
          },
        );
      }),
    );
  }
  const score = () => scoreDnsbl(sites, states);
  return { settled: Promise.all(lookups).then(score), score };
}

/** Queries every site and resolves with the full score. Never rejects. */
export function queryDnsbl(sites: readonly DnsblSite[], address: string, timeoutMs: number, deps: DnsblDeps): Promise<DnsblScore> {
  return startDnsblQuery(sites, address, timeoutMs, deps).settled;
}

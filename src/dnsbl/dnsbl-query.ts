/*
 * dnsbl-query — the DNSBL/DNSWL test: query every site for a client and add up the rank.
 *
 * Decides (postscreen(8), postconf(5) postscreen_dnsbl_sites): each distinct domain is
 * asked once, all in one burst; each entry whose filter matches one of the domain's A
 * records adds its weight once; rank = the sum. What an answer means is dnsbl-answer.ts's
 * rule (a DNSWL is a domain with a negative weight); an answer of error codes only is
 * `refused_code`, for this query only (it asks dnsbl-health.ts for an early self-test). A
 * DNS failure (`error`) or timeout counts as not listed; an unhealthy site is not asked
 * (`skipped`). The reply names the matching site with the largest weight. Cache TTL as
 * Postfix: rank > 0 → the smallest TTL of positive-weight answers, else of negative-weight
 * ones.
 * Leaves to others: threshold, action, shown names (screen/early-tests.ts), TTL clamping.
 * Bugs: node:dns hides NXDOMAIN TTLs, so a clean client's pass lasts the min TTL.
 */
import type { Clock } from '../clock.js';
import type { AddressAnswer, DnsResolver } from '../dns/resolver.js';
import { reverseName } from '../dns/reverse-name.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { filterMatches, type DnsblSite } from './dnsbl-site.js';
import { readDnsblAnswer, readDnsblFailure } from './dnsbl-answer.js';

/**
 * What one domain said about the client: the metric results (listed, not_listed, error,
 * timeout, refused_code), plus `skipped` (unhealthy site, not asked) and `pending` (no
 * answer yet: a partial score).
 */
export type DnsblSiteResult = 'listed' | 'not_listed' | 'error' | 'timeout' | 'refused_code' | 'skipped' | 'pending';

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
  /** Site health (dnsbl-health.ts): unhealthy sites are skipped; error codes are reported. */
  readonly health?: DnsblHealthView;
  /** The name logs and metrics show for a domain (postscreen_dnsbl_reply_map); default: the domain. */
  readonly displayName?: (domain: string) => string;
}

/** What the query needs from the site health monitor. */
export interface DnsblHealthView {
  /** False when the site failed its last self-test: its answers do not count. */
  healthy(domain: string): boolean;
  /** An error code came back for a client query: the monitor may run an early self-test. */
  suspect(domain: string): void;
}

/** A DNSBL lookup in progress. */
export interface DnsblQuery {
  /** Resolves when every domain answered, failed or timed out. Never rejects. */
  readonly settled: Promise<DnsblScore>;
  /** The score from the answers that arrived so far (postscreen's partial score). */
  score(): DnsblScore;
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
 * at every healthy domain of `sites`, one query per distinct domain, all sent at once,
 * each limited to `timeoutMs` (the injected clock; a late answer counts as `timeout`).
 * Counts metrics dnsblAnswers{site,result} and dnsblLatency{site} when each query ends.
 */
export function startDnsblQuery(sites: readonly DnsblSite[], address: string, timeoutMs: number, deps: DnsblDeps): DnsblQuery {
  const states = new Map<string, DomainState>();
  const lookups: Promise<void>[] = [];
  const shown = deps.displayName ?? ((domain: string) => domain);
  for (const [domain, entries] of domainsOf(sites)) {
    const state: DomainState = { result: 'pending', answers: [] };
    states.set(domain, state);
    if (deps.health && !deps.health.healthy(domain)) {
      state.result = 'skipped';
      continue;
    }
    const allowlist = entries.some((entry) => entry.weight < 0);
    const started = deps.clock.now();
    const name = reverseName(address, domain);
    const finish = (result: DnsblSiteResult, answers: AddressAnswer[]) => {
      if (state.result !== 'pending') return;
      state.result = result;
      state.answers = answers;
      deps.metrics.dnsblAnswers.inc({ site: shown(domain), result });
      deps.metrics.dnsblLatency.observe({ site: shown(domain) }, Math.max(0, deps.clock.now() - started) / 1000);
    };
    lookups.push(
      new Promise<void>((resolve) => {
        const timer = deps.clock.setTimer(timeoutMs, () => {
          finish('timeout', []);
          deps.log?.warn({ event: 'DNSBL error', site: shown(domain), kind: 'timeout' }, `DNSBL lookup error for ${shown(domain)}: timeout`);
          resolve();
        });
        deps.resolver.resolve4(name).then(
          (answers) => {
            timer.cancel();
            const { listing: valid, codes } = readDnsblAnswer(answers, allowlist);
            if (codes.length > 0) {
              // An error code is never a listing; it is an error for this query only.
              deps.log?.warn(
                { event: 'DNSBL error', site: shown(domain), kind: 'refused_code', codes: codes.map((a) => a.address) },
                `DNSBL lookup error for ${shown(domain)}: error code ${codes.map((a) => a.address).join(' ')}`,
              );
              deps.health?.suspect(domain);
            }
            finish(valid.length > 0 ? 'listed' : codes.length > 0 ? 'refused_code' : 'not_listed', [...valid]);
            resolve();
          },
          (error: unknown) => {
            timer.cancel();
            const failure = readDnsblFailure(error);
            finish(failure.result, []);
            if (failure.result !== 'not_listed') deps.log?.warn({ event: 'DNSBL error', site: shown(domain), kind: failure.kind }, `DNSBL lookup error for ${shown(domain)}: ${failure.kind}`);
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

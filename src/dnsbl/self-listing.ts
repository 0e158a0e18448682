/*
 * self-listing — one round of "are our own addresses listed?": every address × site, with
 * the npm dnsbl package, read as listed / not listed / could not check.
 *
 * Decides: each site gets one dnsbl `batch` of our addresses plus its RFC 5782 §5 test
 * points (127.0.0.2 listed, 127.0.0.1 not; for IPv6 addresses ::ffff:7f00:2 / ::ffff:7f00:1).
 * dnsbl reads every DNS failure and its own timeout as "not listed", so a site whose test
 * points fail (no answer, SERVFAIL, 127.255.255.254 to everything from a refused resolver)
 * or whose batch ran into the time limit is "could not check" for that address family. A
 * listing's reason is its TXT record, asked afterwards with `lookup`.
 * Leaves to others: the schedule and what a change means (self-listing-monitor.ts), the
 * rbl-check table (rbl-check.ts), main.cf (self-listing-settings.ts).
 * Bugs: dnsbl gives booleans, not A records: an error code answered for our address alone
 * reads as a listing. A query c-ares gives up on before the time limit (~27 s by default,
 * hence the 20 s cap) reads as not listed. dnsbl leaves an uncleared timer of the time
 * limit behind each query that finds nothing, which can hold a stopping process that long.
 */
import { isIPv6 } from 'node:net';
import { getServers } from 'node:dns';
import * as dnsbl from 'dnsbl';

/** Longest time limit handed to dnsbl, ms: below c-ares' own give-up (~27 s with 4 tries), so dnsbl's timer fires first and shows in the elapsed time. */
export const SELF_LISTING_TIMEOUT_CAP_MS = 20_000;

/** RFC 5782 §5 test points of each address family: `listed` must be listed, `clean` must not. */
export const TEST_POINTS = {
  4: { listed: '127.0.0.2', clean: '127.0.0.1' },
  6: { listed: '::ffff:7f00:2', clean: '::ffff:7f00:1' },
} as const;

export type AddressFamily = keyof typeof TEST_POINTS;

/** One DNSBL site to check: its zone and the name logs, metrics and the table show (postscreen_dnsbl_reply_map). */
export interface SelfListingSite {
  /** DNS zone, lower-case, no trailing dot (may hold a DQS key). */
  readonly domain: string;
  /** Shown instead of the domain. */
  readonly shown: string;
}

/** What one site says about one of our addresses. */
export type Listing =
  | { readonly kind: 'listed'; readonly reason: string | undefined }
  | { readonly kind: 'not-listed' }
  | { readonly kind: 'could-not-check'; readonly why: string };

/** The answer of one pair, in the order addresses × sites. */
export interface PairResult {
  readonly address: string;
  readonly site: SelfListingSite;
  readonly listing: Listing;
}

/** Whether the site could tell this round (for every address family checked), and why not. */
export interface SiteResult {
  readonly site: SelfListingSite;
  readonly checked: boolean;
  /** Why it could not tell; undefined when checked. */
  readonly why: string | undefined;
}

export interface SelfListingRound {
  readonly sites: readonly SiteResult[];
  /** addresses × sites, address-major. */
  readonly pairs: readonly PairResult[];
}

export interface SelfListingQuery {
  /** Our addresses (IPv4 or IPv6, already validated). */
  readonly addresses: readonly string[];
  readonly sites: readonly SelfListingSite[];
  /** mxscreen_dns_servers, `ip[:port]`; empty = the system resolver's servers (never dnsbl's public default). */
  readonly servers: readonly string[];
  /** Time limit of the queries of one site, ms (capped at SELF_LISTING_TIMEOUT_CAP_MS). */
  readonly timeoutMs: number;
  /** Ask each listing's TXT reason (default true). */
  readonly reasons?: boolean;
}

/** The dnsbl functions a round calls; tests may wrap them. */
export interface DnsblPackage {
  readonly batch: typeof dnsbl.batch;
  readonly lookup: typeof dnsbl.lookup;
}

/** The servers handed to dnsbl: the configured ones, else the system resolver's (node:dns getServers()), so dnsbl's OpenDNS default is never used. */
export function dnsblServers(configured: readonly string[]): string[] {
  return configured.length > 0 ? [...configured] : getServers();
}

function familyOf(address: string): AddressFamily {
  return isIPv6(address) ? 6 : 4;
}

/** The answers dnsbl gave one site: address → listed. */
export type SiteAnswers = ReadonlyMap<string, boolean>;

/**
 * Decides what `site`'s answers mean (pure). `timedOut`: the batch ran into its time limit
 * of `timeoutMs`, so dnsbl's timer may have cancelled what was still asked (read as "not
 * listed") and nothing of that site can be trusted.
 * Returns the site result and one Listing per address, in order.
 */
export function readSiteAnswers(
  site: SelfListingSite,
  addresses: readonly string[],
  answers: SiteAnswers,
  timedOut: boolean,
  timeoutMs: number,
): { site: SiteResult; listings: Listing[] } {
  const families = [...new Set(addresses.map(familyOf))];
  const failure = new Map<AddressFamily, string>();
  for (const family of families) {
    const points = TEST_POINTS[family];
    if (timedOut) failure.set(family, `no answer within ${timeoutMs} ms`);
    else if (answers.get(points.listed) !== true) failure.set(family, `test point ${points.listed} is not listed`);
    else if (answers.get(points.clean) !== false) failure.set(family, `test point ${points.clean} is listed`);
  }
  const listings = addresses.map((address): Listing => {
    const why = failure.get(familyOf(address));
    if (why !== undefined) return { kind: 'could-not-check', why };
    return answers.get(address) === true ? { kind: 'listed', reason: undefined } : { kind: 'not-listed' };
  });
  const whys = [...new Set(failure.values())];
  return { site: { site, checked: whys.length === 0, why: whys.length === 0 ? undefined : whys.join('; ') }, listings };
}

/** One site's batch (its own dnsbl resolver, so a slow site cancels only its own queries). */
async function checkSite(site: SelfListingSite, query: SelfListingQuery, servers: readonly string[], timeoutMs: number, packaged: DnsblPackage) {
  const families = [...new Set(query.addresses.map(familyOf))];
  const points = families.flatMap((family) => [TEST_POINTS[family].listed, TEST_POINTS[family].clean]);
  const names = [...new Set([...query.addresses, ...points])];
  // Our own timer of the same length, armed before dnsbl arms its own: timers of one length
  // fire in the order they were armed, so when dnsbl's cancels the queries this one has fired.
  // (Elapsed time read from performance.now() is not enough: a timer may fire early by what
  // the event-loop turn had already run when it was armed.)
  let timedOut = false;
  const limit = setTimeout(() => {
    timedOut = true;
  }, timeoutMs);
  try {
    // concurrency = every name: all start together, so the package's stray timers (index.js clears
    // its timer only on success, and the timer cancels the whole resolver) fire with their own.
    const items = await packaged.batch(names, site.domain, { servers, timeout: timeoutMs, concurrency: names.length, includeTxt: false });
    const answers = new Map(items.map((item) => [item.address, item.listed] as const));
    return readSiteAnswers(site, query.addresses, answers, timedOut, timeoutMs);
  } catch (error) {
    const why = `lookup failed: ${error instanceof Error ? error.message : String(error)}`;
    return { site: { site, checked: false, why }, listings: query.addresses.map((): Listing => ({ kind: 'could-not-check', why })) };
  } finally {
    clearTimeout(limit);
  }
}

/** The TXT reason of a listing, or undefined when the site gives none (or the lookup fails). */
async function listingReason(address: string, site: SelfListingSite, servers: readonly string[], timeoutMs: number, packaged: DnsblPackage): Promise<string | undefined> {
  try {
    const answer = await packaged.lookup(address, site.domain, { servers, timeout: timeoutMs, includeTxt: true });
    const text = answer.txt.map((record) => record.join('')).join('; ').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

/**
 * Runs one round: every site at once. Never rejects (a failure is "could not check").
 * `packaged` defaults to the dnsbl package itself.
 */
export async function checkSelfListing(query: SelfListingQuery, packaged: DnsblPackage = dnsbl): Promise<SelfListingRound> {
  const servers = dnsblServers(query.servers);
  const timeoutMs = Math.max(1, Math.min(query.timeoutMs, SELF_LISTING_TIMEOUT_CAP_MS));
  const perSite = await Promise.all(query.sites.map((site) => checkSite(site, query, servers, timeoutMs, packaged)));
  const pairs: PairResult[] = [];
  for (const [index, address] of query.addresses.entries()) {
    for (const [siteIndex, site] of query.sites.entries()) pairs.push({ address, site, listing: perSite[siteIndex]!.listings[index]! });
  }
  // includeTxt cannot decide: dnsbl's Promise.all reads a listing without TXT as not listed. So TXT only for the reason.
  const withReasons = await Promise.all(
    pairs.map(async (pair): Promise<PairResult> =>
      pair.listing.kind === 'listed' && (query.reasons ?? true)
        ? { ...pair, listing: { kind: 'listed', reason: await listingReason(pair.address, pair.site, servers, timeoutMs, packaged) } }
        : pair,
    ),
  );
  return { sites: perSite.map((result) => result.site), pairs: withReasons };
}

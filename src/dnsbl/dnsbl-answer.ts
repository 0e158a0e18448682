/*
 * dnsbl-answer — what a DNSBL/DNSWL answer means: listed, not listed, or an error.
 *
 * Decides (RFC 5782 §2.3 and §5, postscreen(8), postconf(5) reject_rbl_client): of the A
 * records for `reversed-client.domain`, 127.255.255.0/24 and 127.0.0.1 are error codes
 * (Spamhaus "query refused", RFC 5782's reserved test value) from any list, and
 * 127.0.0.255 is one from a DNSWL (dnswl.org's "limit exceeded"); an error code is never
 * a listing. A `domain=filter` counts only the records that match it. NXDOMAIN and NODATA
 * are "not listed"; every other DNS failure is an error of this query. The one rule for
 * the screen stage (postscreen_dnsbl_sites, dnsbl-query.ts, the self-test) and the policy
 * stage (reject_rbl_client, permit_dnswl_client).
 * Leaves to others: the entry syntax (dnsbl-site.ts), weights and the rank
 * (dnsbl-query.ts), what a listing does (each stage).
 */
import { DnsError, type AddressAnswer } from '../dns/resolver.js';
import { filterMatches, type DnsblFilter } from './dnsbl-site.js';

/**
 * True for answers that are error codes, never listings: 127.255.255.0/24 and 127.0.0.1,
 * and 127.0.0.255 from a DNSWL (`allowlist`: a site with a negative weight, or
 * permit_dnswl_client).
 */
export function isDnsblErrorCode(address: string, allowlist: boolean): boolean {
  return address === '127.0.0.1' || address.startsWith('127.255.255.') || (allowlist && address === '127.0.0.255');
}

/** The A records of one answer, sorted: the listing ones and the error codes. */
export interface DnsblAnswer {
  /** Records that list the client (error codes removed; `filter` applied when given). */
  readonly listing: readonly AddressAnswer[];
  /** Error codes in the answer: the answer is an error for this query. */
  readonly codes: readonly AddressAnswer[];
}

/**
 * Sorts `answers` by the rule above. `allowlist`: the site is a DNSWL; `filter`: only
 * matching records list (undefined: any record that is not an error code).
 */
export function readDnsblAnswer(answers: readonly AddressAnswer[], allowlist: boolean, filter?: DnsblFilter): DnsblAnswer {
  const codes = answers.filter((answer) => isDnsblErrorCode(answer.address, allowlist));
  const listing = answers.filter((answer) => !isDnsblErrorCode(answer.address, allowlist) && (filter === undefined || filterMatches(filter, answer.address)));
  return { listing, codes };
}

/** A failed lookup: `not_listed` for NXDOMAIN/NODATA, else `timeout` or `error` (with the DnsError kind). */
export function readDnsblFailure(error: unknown): { readonly result: 'not_listed' | 'timeout' | 'error'; readonly kind: string } {
  const kind = error instanceof DnsError ? error.kind : 'other';
  if (kind === 'nxdomain' || kind === 'nodata') return { result: 'not_listed', kind };
  return { result: kind === 'timeout' ? 'timeout' : 'error', kind };
}

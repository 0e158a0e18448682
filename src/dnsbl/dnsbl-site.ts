/*
 * dnsbl-site — one `postscreen_dnsbl_sites` entry: `domain[=filter][*weight]`.
 *
 * Decides: the entry syntax of postconf(5) postscreen_dnsbl_sites: a DNSBL/DNSWL domain,
 * an optional reply filter `d.d.d.d` where each `d` is a number 0..255 or a `[…]` list
 * of numbers and `n..m` ranges separated by `;` (`127.0.0.[2..11]`,
 * `127.0.[2..15].[2;4;10..11]`), and an optional integer weight (default 1; negative
 * for allowlists such as list.dnswl.org*-2). A bad entry is a value, not an exception,
 * so the configuration layer can report it with file:line.
 * Leaves to others: querying (dnsbl.ts) and adding up the rank.
 * Bugs: the reply filter is IPv4 only, as in Postfix; domains are lower-cased.
 */

/** Inclusive range of one octet value. */
export interface OctetRange {
  readonly low: number;
  readonly high: number;
}

/** A reply filter: for each of the 4 octets, the ranges it may fall in. */
export interface DnsblFilter {
  /** The filter as written, for logs. */
  readonly text: string;
  readonly octets: readonly [readonly OctetRange[], readonly OctetRange[], readonly OctetRange[], readonly OctetRange[]];
}

export interface DnsblSite {
  /** The entry as written, for logs. */
  readonly text: string;
  /** DNS zone, lower-case, without a trailing dot. */
  readonly domain: string;
  /** Only replies matching it count; undefined = any reply counts. */
  readonly filter: DnsblFilter | undefined;
  /** Added to the rank when the site lists the client; negative for a DNSWL. */
  readonly weight: number;
}

function parseOctet(text: string): OctetRange[] | string {
  const number = (word: string): number | undefined => (/^\d{1,3}$/.test(word) && Number(word) <= 255 ? Number(word) : undefined);
  if (!text.startsWith('[')) {
    const value = number(text);
    return value === undefined ? `bad octet "${text}"` : [{ low: value, high: value }];
  }
  if (!text.endsWith(']') || text.length < 3) return `bad octet list "${text}"`;
  const ranges: OctetRange[] = [];
  for (const item of text.slice(1, -1).split(';')) {
    const bounds = item.split('..');
    const low = number(bounds[0] ?? '');
    const high = bounds.length === 2 ? number(bounds[1] ?? '') : bounds.length === 1 ? low : undefined;
    if (low === undefined || high === undefined) return `bad octet value or range "${item}" in "${text}"`;
    if (low > high) return `bad octet range "${item}" in "${text}": ${low} > ${high}`;
    ranges.push({ low, high });
  }
  return ranges;
}

/** Parses a reply filter such as `127.0.0.[2..11]` (postscreen(8), Postfix ip_match). */
export function parseDnsblFilter(text: string): DnsblFilter | { error: string } {
  const parts = text.split('.');
  // A dot inside [..] ranges splits too: join the pieces back inside brackets.
  const octets: string[] = [];
  for (const part of parts) {
    const last = octets.length - 1;
    if (last >= 0 && octets[last]!.startsWith('[') && !octets[last]!.endsWith(']')) octets[last] += '.' + part;
    else octets.push(part);
  }
  if (octets.length !== 4) return { error: `bad DNSBL filter "${text}": expected 4 octets` };
  const parsed: OctetRange[][] = [];
  for (const octet of octets) {
    const ranges = parseOctet(octet);
    if (typeof ranges === 'string') return { error: `bad DNSBL filter "${text}": ${ranges}` };
    parsed.push(ranges);
  }
  return { text, octets: [parsed[0]!, parsed[1]!, parsed[2]!, parsed[3]!] };
}

/** True when IPv4 `address` (dotted quad) matches `filter`; false for anything else. */
export function filterMatches(filter: DnsblFilter, address: string): boolean {
  const values = address.split('.');
  if (values.length !== 4) return false;
  return filter.octets.every((ranges, index) => {
    const word = values[index]!;
    if (!/^\d{1,3}$/.test(word)) return false;
    const value = Number(word);
    return ranges.some((range) => value >= range.low && value <= range.high);
  });
}

/** Host name check as Postfix valid_hostname(): labels of letters, digits, `-`, `_`. */
function domainProblem(domain: string): string | undefined {
  if (domain === '') return 'empty DNSBL domain';
  if (domain.length > 255) return `DNSBL domain "${domain}" is longer than 255 characters`;
  for (const label of domain.split('.')) {
    if (!/^[a-z0-9_-]{1,63}$/.test(label)) return `bad DNSBL domain name "${domain}"`;
    if (label.startsWith('-') || label.endsWith('-')) return `bad DNSBL domain name "${domain}": label starts or ends with "-"`;
  }
  if (/^[\d.]+$/.test(domain)) return `bad DNSBL domain name "${domain}": numeric`;
  return undefined;
}

/**
 * Parses one postscreen_dnsbl_sites entry `domain[=filter][*weight]` (postconf(5)).
 * Returns the site, or `{ error }` with a message naming the entry.
 */
export function parseDnsblSite(text: string): DnsblSite | { error: string } {
  const entry = text.trim();
  let rest = entry;
  let weight = 1;
  const star = rest.indexOf('*');
  if (star >= 0) {
    const weightText = rest.slice(star + 1);
    if (!/^[+-]?\d{1,9}$/.test(weightText)) return { error: `bad DNSBL weight factor "${weightText}" in "${entry}"` };
    weight = Number(weightText);
    rest = rest.slice(0, star);
  }
  let filter: DnsblFilter | undefined;
  const equals = rest.indexOf('=');
  if (equals >= 0) {
    const parsed = parseDnsblFilter(rest.slice(equals + 1));
    if ('error' in parsed) return { error: `${parsed.error} in "${entry}"` };
    filter = parsed;
    rest = rest.slice(0, equals);
  }
  const domain = rest.toLowerCase().replace(/\.$/, '');
  const problem = domainProblem(domain);
  if (problem) return { error: `${problem} in "${entry}"` };
  return { text: entry, domain, filter, weight };
}

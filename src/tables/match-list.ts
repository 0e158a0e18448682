/*
 * match-list — Postfix "match lists" (match_list(3)): does a domain or a client address
 * appear in relay_domains, mynetworks and the like?
 *
 * Decides: patterns are tried in the order written, the first that matches decides, a
 * `!pattern` that matches means "no". Domains (postconf(5) relay_domains,
 * parent_domain_matches_subdomains): a literal `example.com` matches itself, `.example.com`
 * matches its subdomains, and with parent matching `example.com` matches them too; a
 * `type:table` matches when it has a right-hand side for the domain, or for a parent
 * (`example.com` with parent matching, `.example.com` without). Addresses (mynetworks):
 * `a.b.c.d/len`, `[ipv6]/len`, bare addresses, or a table looked up with the address.
 * Leaves to others: reading the list from main.cf (config.ts: patterns keep table specs in
 * their place, `/file/name` patterns are already expanded) and what a match allows.
 * Bugs: host name patterns in an address list never match (Postfix: the client's name).
 */
import type { MatchList } from '../config/value.js';
import type { LookupTable } from './lookup-table.js';
import { networkContains, parseIpAddress, parseIpNetwork, unmapIpv4, type IpNetwork } from './ip-network.js';

/**
 * True when `domain` (case-insensitive, trailing dot ignored) is in `list`.
 * `parentMatchesSubdomains` is true when the parameter is listed in
 * parent_domain_matches_subdomains (postconf(5)). Never throws.
 */
export function matchDomain(list: MatchList, domain: string, parentMatchesSubdomains: boolean): boolean {
  const name = domain.trim().toLowerCase().replace(/\.$/, '');
  if (name === '') return false;
  return firstDecision(list, (pattern, table) =>
    table !== undefined ? tableHasDomain(table, name, parentMatchesSubdomains) : literalMatchesDomain(pattern.toLowerCase(), name, parentMatchesSubdomains),
  );
}

/**
 * True when the client `address` (IPv4, IPv6, `[ipv6]`, or IPv4-mapped `::ffff:a.b.c.d`)
 * is in `list` (mynetworks style: networks, bare addresses, tables looked up with the
 * address in its plain form). A text that is not an IP address matches nothing. Never throws.
 */
export function matchNetwork(list: MatchList, address: string): boolean {
  const parsed = parseIpAddress(address);
  if (parsed === undefined) return false;
  const key = unmapIpv4(address.trim().replace(/^\[(.*)\]$/, '$1'));
  for (const entry of compiled(list)) {
    const matches =
      entry.table !== undefined ? entry.table.lookup(key) !== undefined : entry.network !== undefined && networkContains(entry.network, parsed);
    if (matches) return !entry.negate;
  }
  return false;
}

/** One pattern of a list, read once: its negation, its table, or its network. */
interface CompiledPattern {
  readonly pattern: string;
  readonly negate: boolean;
  readonly table: LookupTable | undefined;
  /** The network of an address pattern; undefined for names and tables. */
  readonly network: IpNetwork | undefined;
}

/**
 * A MatchList is immutable (a reload builds a new one), so its patterns are parsed once
 * and kept beside it: matchNetwork runs for every connection, and parsing networks on
 * each call showed up as allocation (GC) in the PASS OLD latency tail.
 */
const compiledLists = new WeakMap<MatchList, readonly CompiledPattern[]>();

function compiled(list: MatchList): readonly CompiledPattern[] {
  let entries = compiledLists.get(list);
  if (entries === undefined) {
    entries = list.patterns.map((written) => {
      const negate = written.startsWith('!');
      const pattern = negate ? written.slice(1) : written;
      const table = list.tables.find((candidate) => candidate.spec === pattern);
      const parsed = table === undefined ? parseIpNetwork(pattern) : undefined;
      return { pattern, negate, table, network: parsed !== undefined && 'network' in parsed ? parsed.network : undefined };
    });
    compiledLists.set(list, entries);
  }
  return entries;
}

function firstDecision(list: MatchList, matches: (pattern: string, table: LookupTable | undefined) => boolean): boolean {
  for (const entry of compiled(list)) {
    if (matches(entry.pattern, entry.table)) return !entry.negate;
  }
  return false;
}

function literalMatchesDomain(pattern: string, name: string, parent: boolean): boolean {
  if (pattern === name) return true;
  if (pattern.startsWith('.')) return name.endsWith(pattern);
  return parent && name.endsWith(`.${pattern}`);
}

function tableHasDomain(table: LookupTable, name: string, parent: boolean): boolean {
  if (table.lookup(name) !== undefined) return true;
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
    const key = parent ? name.slice(dot + 1) : name.slice(dot);
    if (key !== '' && key !== '.' && table.lookup(key) !== undefined) return true;
  }
  return false;
}

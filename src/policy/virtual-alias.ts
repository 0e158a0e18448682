/*
 * virtual-alias — virtual_alias_maps (virtual(5)): the addresses an envelope recipient
 * really goes to.
 *
 * Decides: lookup keys in virtual(5) order: `user@domain`, then `user` only when the
 * domain is local here (an address literal of the address the client connected to, or
 * no domain: seed 004's `postmaster` and `abuse` for postmaster@[firewall address]), then
 * `@domain`; the result is a list of addresses (commas and/or white space), each expanded
 * again (a self-reference stops there, as Postfix does), at most 10 levels deep and 1000
 * addresses in all (virtual_alias_recursion_limit / virtual_alias_expansion_limit).
 * Leaves to others: whether the recipient may be accepted (restrictions), where the
 * rewritten recipients go (the queue file).
 * Bugs: no recipient_delimiter extensions, no `@domain @otherdomain` rewriting of the
 * user part.
 */
import type { LookupTable } from '../tables/lookup-table.js';
import { splitList } from '../config/parameter-kind.js';
import { parseRecipient } from './recipient-address.js';
import { isLocalDestination } from './relay-control.js';

const RECURSION_LIMIT = 10;
const EXPANSION_LIMIT = 1000;

/** The right-hand side for `address`, or undefined. `localAddress`: where the client connected. */
export function lookupVirtualAlias(maps: readonly LookupTable[], address: string, localAddress: string): string | undefined {
  if (maps.length === 0) return undefined;
  const recipient = parseRecipient(address);
  const keys = [recipient.key];
  if (isLocalDestination(recipient.domain, localAddress)) keys.push(recipient.local);
  if (recipient.domain !== '') keys.push(`@${recipient.domain}`);
  for (const key of keys) {
    for (const table of maps) {
      const value = table.lookup(key);
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

/**
 * The final recipients of `address`: itself when no alias applies, else the expansion.
 * Never throws; limits as in the file head.
 */
export function expandVirtualAlias(maps: readonly LookupTable[], address: string, localAddress: string): string[] {
  const out: string[] = [];
  const visit = (current: string, depth: number): void => {
    if (out.length >= EXPANSION_LIMIT) return;
    const value = depth < RECURSION_LIMIT ? lookupVirtualAlias(maps, current, localAddress) : undefined;
    if (value === undefined) {
      if (!out.some((seen) => seen.toLowerCase() === current.toLowerCase())) out.push(current);
      return;
    }
    for (const next of splitList(value)) {
      if (next.toLowerCase() === current.toLowerCase()) {
        if (!out.includes(next)) out.push(next);
      } else {
        visit(next, depth + 1);
      }
    }
  };
  visit(address, 0);
  return out;
}

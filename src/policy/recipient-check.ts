/*
 * recipient-check — is this recipient of a relay domain a known user? (relay_recipient_maps)
 *
 * Decides, for a recipient whose domain is in relay_domains (postconf(5)
 * relay_recipient_maps; seed 003): when relay_recipient_maps is empty every recipient is
 * accepted; otherwise the recipient must be found in some table, first as the exact
 * address lower-cased (`joe@example.com`), then as the domain wildcard `@example.com`.
 * Any right-hand side counts as found ("the righthand side is not used"). Not found:
 * `550 5.1.1 <addr>: Recipient address rejected: User unknown in relay recipient table`.
 * reject_unlisted_recipient (the restriction, and smtpd_reject_unlisted_recipient before
 * the lists) asks this only for a recipient we relay to that is not local and not a
 * virtual alias (unlistedRelayRecipient).
 * Leaves to others: whether the domain is a relay domain (relay-control.ts), the table
 * format (tables/).
 * Bugs: no recipient_delimiter (`joe+tag@`) handling and no `user` (local part alone)
 * key: Postfix tries that key only for local domains, which we do not have.
 */
import type { SmtpReply } from '../errors.js';
import type { LookupTable } from '../tables/lookup-table.js';
import type { RecipientAddress } from './recipient-address.js';
import { isLocalDestination, unauthDestination, type RelayPolicy } from './relay-control.js';
import { lookupVirtualAlias } from './virtual-alias.js';

export type RecipientDecision =
  | { readonly kind: 'accept'; readonly matched: 'no-tables' | 'address' | 'domain-wildcard' }
  | { readonly kind: 'reject'; readonly reply: SmtpReply };

/** Postfix's reply for an unknown relay recipient (smtpd_check.c, reject_unlisted_recipient). */
export function unknownRelayRecipient(address: string): SmtpReply {
  return {
    code: 550,
    enhanced: '5.1.1',
    text: `<${address}>: Recipient address rejected: User unknown in relay recipient table`,
  };
}

/**
 * Looks the recipient up in `tables` (relay_recipient_maps, in order): the exact address
 * in every table first, then `@domain` in every table. Pure; never throws.
 */
export function checkRelayRecipient(tables: readonly LookupTable[], recipient: RecipientAddress): RecipientDecision {
  if (tables.length === 0) return { kind: 'accept', matched: 'no-tables' };
  if (tables.some((table) => table.lookup(recipient.key) !== undefined)) {
    return { kind: 'accept', matched: 'address' };
  }
  if (recipient.domain !== '' && tables.some((table) => table.lookup(`@${recipient.domain}`) !== undefined)) {
    return { kind: 'accept', matched: 'domain-wildcard' };
  }
  return { kind: 'reject', reply: unknownRelayRecipient(recipient.address) };
}

/** What reject_unlisted_recipient needs of the stage: relay policy and the two recipient tables. */
export interface UnlistedRecipientTables {
  readonly relay: RelayPolicy;
  readonly virtualAliasMaps: readonly LookupTable[];
  readonly relayRecipientMaps: readonly LookupTable[];
}

/**
 * reject_unlisted_recipient (postconf(5), smtpd_check.c) for `recipient` of a client that
 * connected to `localAddress`: the reject reply when we relay to it, it is not local
 * (virtual_alias_maps decides those), not a virtual alias, and not in relay_recipient_maps;
 * undefined when it is listed or not ours to judge. Pure; never throws.
 */
export function unlistedRelayRecipient(tables: UnlistedRecipientTables, recipient: RecipientAddress, localAddress: string): SmtpReply | undefined {
  if (unauthDestination(tables.relay, recipient, localAddress) !== 'authorized') return undefined;
  if (isLocalDestination(recipient.domain, localAddress)) return undefined;
  if (lookupVirtualAlias(tables.virtualAliasMaps, recipient.address, localAddress) !== undefined) return undefined;
  const check = checkRelayRecipient(tables.relayRecipientMaps, recipient);
  return check.kind === 'reject' ? check.reply : undefined;
}

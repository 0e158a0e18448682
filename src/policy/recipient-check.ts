/*
 * recipient-check — is this recipient of a relay domain a known user? (relay_recipient_maps)
 *
 * Decides, for a recipient whose domain is in relay_domains (postconf(5)
 * relay_recipient_maps; seed 003): when relay_recipient_maps is empty every recipient is
 * accepted; otherwise the recipient must be found in some table, first as the exact
 * address lower-cased (`joe@example.com`), then as the domain wildcard `@example.com`.
 * Any right-hand side counts as found ("the righthand side is not used"). Not found:
 * `550 5.1.1 <addr>: Recipient address rejected: User unknown in relay recipient table`.
 * Leaves to others: whether the domain is a relay domain (relay-control.ts), the table
 * format (tables/).
 * Bugs: no recipient_delimiter (`joe+tag@`) handling and no `user` (local part alone)
 * key: Postfix tries that key only for local domains, which we do not have.
 */
import type { SmtpReply } from '../errors.js';
import type { LookupTable } from '../tables/lookup-table.js';
import type { RecipientAddress } from './recipient-address.js';

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

/*
 * relay-control — may this client send mail to this recipient through us at all?
 *
 * Decides, for one RCPT (Postfix smtpd_relay_restrictions = permit_mynetworks,
 * reject_unauth_destination, postconf(5)): a recipient whose domain is in relay_domains
 * goes on to recipient validation (checked first, so that relay_recipient_maps applies to
 * trusted clients too, as Postfix's smtpd_reject_unlisted_recipient does); otherwise a
 * client in mynetworks is permitted to relay anywhere; everyone else gets
 * `554 5.7.1 <addr>: Relay access denied`. There is no other way to a permit, so an empty
 * relay_domains and an empty mynetworks refuse every recipient: never an open relay.
 * Leaves to others: the match-list semantics (tables/match-list.ts), recipient validation
 * (recipient-check.ts), applying the decision (smtpd.ts).
 * Bugs: a bare `postmaster` (no domain) is refused like a foreign domain: there is no
 * local delivery here, although RFC 5321 §4.5.1 wants postmaster accepted.
 */
import type { SmtpReply } from '../errors.js';
import type { MatchList } from '../config/value.js';
import { matchDomain, matchNetwork } from '../tables/match-list.js';
import type { RecipientAddress } from './recipient-address.js';

export interface RelayPolicy {
  /** mynetworks: clients allowed to relay to any domain. */
  readonly mynetworks: MatchList;
  /** relay_domains: domains we accept mail for from anyone. */
  readonly relayDomains: MatchList;
  /** True when `relay_domains` is listed in parent_domain_matches_subdomains. */
  readonly relayDomainsMatchSubdomains: boolean;
}

export type RelayDecision =
  /** The domain is one of relay_domains: validate the recipient next. */
  | { readonly kind: 'relay-domain'; readonly domain: string }
  /** A foreign domain, but the client is in mynetworks: permitted. */
  | { readonly kind: 'permit-mynetworks' }
  /** Neither: `554 5.7.1 <addr>: Relay access denied`. */
  | { readonly kind: 'reject'; readonly reply: SmtpReply };

/** Postfix's reply for reject_unauth_destination (smtpd_check.c, smtpd_relay_restrictions). */
export function relayAccessDenied(address: string): SmtpReply {
  return { code: 554, enhanced: '5.7.1', text: `<${address}>: Relay access denied` };
}

/**
 * The relay decision for one recipient from one client.
 * `clientAddress` is the client IP as text (IPv4, IPv6 or IPv4-mapped IPv6).
 * Pure; never throws (tables never throw, lookup-table.ts).
 */
export function decideRelay(policy: RelayPolicy, clientAddress: string, recipient: RecipientAddress): RelayDecision {
  if (recipient.domain !== '' && matchDomain(policy.relayDomains, recipient.domain, policy.relayDomainsMatchSubdomains)) {
    return { kind: 'relay-domain', domain: recipient.domain };
  }
  if (matchNetwork(policy.mynetworks, clientAddress)) {
    return { kind: 'permit-mynetworks' };
  }
  return { kind: 'reject', reply: relayAccessDenied(recipient.address) };
}

/*
 * relay-control — reject_unauth_destination: is this recipient one we may accept mail
 * for from anyone?
 *
 * Decides (postconf(5) reject_unauth_destination, allow_untrusted_routing = no): a
 * recipient is authorized when its domain is in relay_domains, or when it is local here:
 * an address literal of the address the client connected to (`postmaster@[192.0.2.1]`,
 * seed 004) or no domain at all (`postmaster`, RFC 5321 §4.5.1); and its local part holds
 * no sender-specified routing (`%`, `!`, `@`: the percent hack, bang paths and quoted
 * `"user@other"@example.com` never relay). Everything else is "Relay access denied".
 * Whether a trusted client may relay anyway is the restriction list's business
 * (permit_mynetworks before reject_unauth_destination).
 * Leaves to others: the match-list semantics (tables/match-list.ts), recipient validation
 * (recipient-check.ts), the list that applies it (restriction-list.ts).
 */
import type { SmtpReply } from '../errors.js';
import type { MatchList } from '../config/value.js';
import { matchDomain } from '../tables/match-list.js';
import { parseIpAddress, unmapIpv4 } from '../tables/ip-network.js';
import type { RecipientAddress } from './recipient-address.js';

export interface RelayPolicy {
  /** mynetworks: clients that permit_mynetworks lets through. */
  readonly mynetworks: MatchList;
  /** relay_domains: domains we accept mail for from anyone. */
  readonly relayDomains: MatchList;
  /** True when `relay_domains` is listed in parent_domain_matches_subdomains. */
  readonly relayDomainsMatchSubdomains: boolean;
}

/** Postfix's reply for reject_unauth_destination (smtpd_check.c, relay_domains_reject_code 554). */
export function relayAccessDenied(address: string): SmtpReply {
  return { code: 554, enhanced: '5.7.1', text: `<${address}>: Relay access denied` };
}

/** True when the local part carries sender-specified routing (`%`, `!`, `@`). */
export function hasSenderRouting(recipient: RecipientAddress): boolean {
  return /[%!@]/.test(recipient.local);
}

/**
 * True when `domain` is local here: empty (a bare `postmaster`) or an address literal
 * `[a.d.d.r]` / `[ipv6:…]` of `localAddress`, the address the client connected to.
 */
export function isLocalDestination(domain: string, localAddress: string): boolean {
  if (domain === '') return true;
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain);
  if (!literal) return false;
  const parsed = parseIpAddress(literal[1]!);
  const local = parseIpAddress(localAddress);
  if (!parsed || !local) return false;
  return unmapIpv4(literal[1]!).toLowerCase() === unmapIpv4(localAddress).toLowerCase();
}

/**
 * reject_unauth_destination's question for one recipient: `authorized` (relay domain
 * or local, no sender routing) or `denied`. Pure; never throws.
 */
export function unauthDestination(policy: RelayPolicy, recipient: RecipientAddress, localAddress: string): 'authorized' | 'denied' {
  if (hasSenderRouting(recipient)) return 'denied';
  if (isLocalDestination(recipient.domain, localAddress)) return 'authorized';
  return matchDomain(policy.relayDomains, recipient.domain, policy.relayDomainsMatchSubdomains) ? 'authorized' : 'denied';
}

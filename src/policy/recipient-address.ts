/*
 * recipient-address — the parts of an RCPT TO address that policy lookups use.
 *
 * Decides: how a forward-path as smtp-server hands it over (`local@domain`, the domain
 * already turned to Unicode from punycode by smtp-server) becomes lookup keys: the domain
 * in lower-case ASCII (IDNA, so `relay_domains = xn--…` matches) without a trailing dot,
 * and the whole address lower-cased (Postfix lower-cases table keys, access(5)); and the
 * address the queue envelope keeps (domain back in ASCII unless the client used SMTPUTF8).
 * Leaves to others: what the keys are looked up in (relay-control, recipient-check).
 * Bugs: the local part is lower-cased for lookups although RFC 5321 §2.4 lets a server
 * treat it as case-sensitive (Postfix does the same). An address literal domain
 * (`user@[192.0.2.1]`) keeps its brackets and never matches relay_domains.
 */
import { domainToASCII } from 'node:url';

export interface RecipientAddress {
  /** The address as the client wrote it (for replies and logs). */
  readonly address: string;
  /** Local part, lower-cased. */
  readonly local: string;
  /** Domain in lower-case ASCII without a trailing dot; empty for `postmaster` without domain. */
  readonly domain: string;
  /** `local@domain` lower-cased, the exact-address lookup key (relay_recipient_maps). */
  readonly key: string;
}

/**
 * Splits `local@domain` at the last `@` (a quoted local part may contain `@`, RFC 5321
 * §4.1.2). A domain that IDNA cannot convert is kept lower-cased as written.
 */
export function parseRecipient(address: string): RecipientAddress {
  const at = address.lastIndexOf('@');
  const local = (at < 0 ? address : address.slice(0, at)).toLowerCase();
  const rawDomain = at < 0 ? '' : address.slice(at + 1);
  let domain = rawDomain.toLowerCase();
  if (domain !== '' && !domain.startsWith('[')) {
    domain = (domainToASCII(domain) || domain).replace(/\.$/, '');
  }
  return { address, local, domain, key: domain === '' ? local : `${local}@${domain}` };
}

/**
 * The address with its domain in ASCII (IDNA) and the local part untouched, for the queue
 * envelope: smtp-server turns `xn--` domains into Unicode, which only an SMTPUTF8
 * transaction may carry on (RFC 6531). Address literals and domainless addresses are kept.
 */
export function asciiAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  const domain = address.slice(at + 1);
  if (domain.startsWith('[') || /^[\x00-\x7f]*$/.test(domain)) return address;
  const ascii = domainToASCII(domain);
  return ascii ? `${address.slice(0, at)}@${ascii}` : address;
}

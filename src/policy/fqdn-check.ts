/*
 * fqdn-check — the syntax restrictions on HELO names and envelope addresses:
 * reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, reject_non_fqdn_sender,
 * reject_non_fqdn_recipient (postconf(5)).
 *
 * Decides: a valid host name is labels of letters, digits, `-` and `_` (not starting or
 * ending with `-`), up to 255 bytes, or an address literal `[a.d.d.r]`; a fully-qualified
 * one also has a dot and does not end in a numeric label. Replies as smtpd_check.c:
 * `501 5.5.2 <helo>: Helo command rejected: Invalid name`, `504 5.5.2 <…>: … rejected:
 * need fully-qualified hostname|address`. An empty address (the null sender) and an
 * address without a domain (`postmaster`) are never non-FQDN.
 * Leaves to others: what follows a dunno (restriction-list.ts).
 */
import { isIP } from 'node:net';
import { DUNNO, rejectReply, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';

/** Postfix valid_hostname(): letters, digits, `-`, `_` labels; or an address literal. */
export function isValidHostname(name: string): boolean {
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(name);
  if (literal) return isIP(literal[1]!) !== 0;
  if (name === '' || name.length > 255) return false;
  const trimmed = name.replace(/\.$/, '');
  return trimmed.split('.').every((label) => /^[A-Za-z0-9_-]{1,63}$/.test(label) && !label.startsWith('-') && !label.endsWith('-'));
}

/** A valid host name with a dot whose last label is not numeric (or an address literal). */
export function isFqdn(name: string): boolean {
  if (!isValidHostname(name)) return false;
  if (name.startsWith('[')) return true;
  const trimmed = name.replace(/\.$/, '');
  return trimmed.includes('.') && !/^\d+$/.test(trimmed.slice(trimmed.lastIndexOf('.') + 1));
}

export function invalidHelo(call: RestrictionCall): RestrictionResult {
  const helo = call.request.helo;
  if (helo === '' || isValidHostname(helo)) return DUNNO;
  return { kind: 'reject', by: call.restriction.written, reply: rejectReply(501, '5.5.2', helo, 'Helo command', 'Invalid name') };
}

export function nonFqdnHelo(call: RestrictionCall): RestrictionResult {
  const helo = call.request.helo;
  if (helo === '' || isFqdn(helo)) return DUNNO;
  return { kind: 'reject', by: call.restriction.written, reply: rejectReply(504, '5.5.2', helo, 'Helo command', 'need fully-qualified hostname') };
}

function addressDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

export function nonFqdnSender(call: RestrictionCall): RestrictionResult {
  const sender = call.request.sender;
  if (sender === undefined || sender === '') return DUNNO;
  const domain = addressDomain(sender);
  if (domain === '' || isFqdn(domain)) return DUNNO;
  return { kind: 'reject', by: call.restriction.written, reply: rejectReply(504, '5.5.2', sender, 'Sender address', 'need fully-qualified address') };
}

export function nonFqdnRecipient(call: RestrictionCall): RestrictionResult {
  const recipient = call.request.recipient;
  if (recipient === undefined || recipient.domain === '' || isFqdn(recipient.domain)) return DUNNO;
  return {
    kind: 'reject',
    by: call.restriction.written,
    reply: rejectReply(504, '5.5.2', recipient.address, 'Recipient address', 'need fully-qualified address'),
  };
}

/*
 * unknown-domain — reject_unknown_sender_domain and reject_unknown_recipient_domain.
 *
 * Decides (postconf(5), RFC 7505): a domain with an MX record, or failing that an A or
 * AAAA record, is known. A null MX (`MX 0 .`) is refused for good: sender `550 5.7.27`,
 * recipient `556 5.1.10 … Domain d does not accept mail (nullMX)`. No MX and no address
 * (NXDOMAIN or no data): `450 4.1.8` (sender) / `450 4.1.2` (recipient) `Domain not found`
 * (unknown_address_reject_code 450). A DNS failure (timeout, SERVFAIL): `450 4.4.3 …
 * Domain not found`, so the client retries. Address literals and addresses without a
 * domain are never unknown. Local destinations (x@[our address]) are skipped.
 * Leaves to others: the resolver (dns/), caching of answers (the resolver's business).
 */
import { DnsError } from '../dns/resolver.js';
import { DUNNO, rejectReply, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';

export type DomainStatus = 'known' | 'null-mx' | 'unknown' | 'temporary';

function isTemporary(error: unknown): boolean {
  return error instanceof DnsError ? error.kind !== 'nxdomain' && error.kind !== 'nodata' : true;
}

/** Looks `domain` up: MX first, then A and AAAA. Never throws. Source: RFC 5321 §5.1, RFC 7505. */
export async function domainStatus(call: RestrictionCall, domain: string): Promise<DomainStatus> {
  const resolver = call.env.resolver;
  try {
    const mx = await resolver.resolveMx(domain);
    if (mx.length === 1 && mx[0]!.exchange.replace(/\.$/, '') === '') return 'null-mx';
    if (mx.length > 0) return 'known';
  } catch (error) {
    if (isTemporary(error)) return 'temporary';
  }
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(domain), resolver.resolve6(domain)]);
  if ((v4.status === 'fulfilled' && v4.value.length > 0) || (v6.status === 'fulfilled' && v6.value.length > 0)) return 'known';
  if ((v4.status === 'rejected' && isTemporary(v4.reason)) || (v6.status === 'rejected' && isTemporary(v6.reason))) return 'temporary';
  return 'unknown';
}

async function check(call: RestrictionCall, address: string, role: 'sender' | 'recipient'): Promise<RestrictionResult> {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1).toLowerCase().replace(/\.$/, '');
  if (domain === '' || domain.startsWith('[')) return DUNNO;
  const status = await domainStatus(call, domain);
  const subject = role === 'sender' ? 'Sender address' : 'Recipient address';
  const by = call.restriction.written;
  switch (status) {
    case 'known':
      return DUNNO;
    case 'null-mx':
      return role === 'sender'
        ? { kind: 'reject', by, reply: rejectReply(550, '5.7.27', address, subject, `Domain ${domain} does not accept mail (nullMX)`) }
        : { kind: 'reject', by, reply: rejectReply(556, '5.1.10', address, subject, `Domain ${domain} does not accept mail (nullMX)`) };
    case 'unknown':
      return { kind: 'reject', by, reply: rejectReply(450, role === 'sender' ? '4.1.8' : '4.1.2', address, subject, 'Domain not found') };
    case 'temporary':
      return { kind: 'reject', by, reply: rejectReply(450, '4.4.3', address, subject, 'Domain not found') };
    default: {
      const never: never = status;
      throw new Error(`unhandled domain status ${String(never)}`);
    }
  }
}

export function unknownSenderDomain(call: RestrictionCall): Promise<RestrictionResult> {
  const sender = call.request.sender;
  return sender === undefined || sender === '' ? Promise.resolve(DUNNO) : check(call, sender, 'sender');
}

export function unknownRecipientDomain(call: RestrictionCall): Promise<RestrictionResult> {
  const recipient = call.request.recipient;
  return recipient === undefined ? Promise.resolve(DUNNO) : check(call, recipient.address, 'recipient');
}

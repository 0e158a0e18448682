/*
 * rbl-client — reject_rbl_client domain[=filter] and permit_dnswl_client domain[=filter].
 *
 * Decides (postconf(5)): the client address is looked up as `reversed.domain` A records,
 * read by the one DNSBL answer rule (dnsbl/dnsbl-answer.ts: error codes are never
 * listings, 127.0.0.255 is one from a DNSWL, so for permit_dnswl_client; a filter in the
 * postscreen_dnsbl_sites syntax, `127.0.0.[2..11]`, counts only matching answers); a DNS
 * failure counts as not listed. The `domain[=filter]` was parsed when the list was
 * loaded (restriction-list.ts). A listed client gets
 * default_rbl_reply: `554 5.7.1 Service unavailable; Client host [a.d.d.r] blocked using
 * domain`, or the template rbl_reply_maps has for `domain=filter` or `domain` ($rbl_code,
 * $rbl_class, $rbl_what, $rbl_domain, $rbl_reason, ${name?text}, ${name:text}).
 * $rbl_reason (and $rbl_txt) is the TXT record of the listed name, asked only for a
 * reject; non-printable bytes become `?`. permit_dnswl_client permits a listed client.
 * Leaves to others: caching answers (the resolver the stage is given, shared with screen/).
 * Bugs: several TXT records are joined with ` / `; a failed TXT lookup leaves it empty.
 */
import { reverseName } from '../dns/reverse-name.js';
import type { AddressAnswer } from '../dns/resolver.js';
import { readDnsblAnswer } from '../dnsbl/dnsbl-answer.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import type { SmtpReply } from '../errors.js';
import { DUNNO, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';

const DEFAULT_RBL_REPLY = '$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}';

/**
 * The listing when the restriction's `domain[=filter]` lists the call's client (with the
 * name asked); `allowlist` for permit_dnswl_client. Throws only on a bug (no parsed site).
 */
async function listed(call: RestrictionCall, allowlist: boolean): Promise<{ domain: string; query: string; answers: string[] } | undefined> {
  const site = call.restriction.site;
  if (!site) throw new Error(`bug: ${call.restriction.written} without a parsed DNSBL site`);
  const address = unmapIpv4(call.request.client.address);
  const query = reverseName(address, site.domain);
  let answers: readonly AddressAnswer[];
  try {
    answers = await call.env.resolver.resolve4(query);
  } catch {
    return undefined;
  }
  const { listing } = readDnsblAnswer(answers, allowlist, site.filter);
  return listing.length > 0 ? { domain: site.domain, query, answers: listing.map((answer) => answer.address) } : undefined;
}

/** Longest $rbl_reason kept, characters: the reply must stay within one 512-byte line. */
const REASON_LIMIT = 256;

/**
 * The reason a DNSBL gives for listing `query`: its TXT records, each record's
 * character-strings joined, records joined with ` / `, non-printable characters as `?`,
 * cut at REASON_LIMIT. '' when there is none or the lookup fails. Never rejects.
 */
export async function rblReason(resolver: RestrictionCall['env']['resolver'], query: string): Promise<string> {
  try {
    const text = (await resolver.resolveTxt(query)).map((record) => record.join('')).join(' / ');
    return text.replace(/[^\x20-\x7e]/g, '?').slice(0, REASON_LIMIT);
  } catch {
    return '';
  }
}

/** Expands `$name`, `${name}`, `${name?text}`, `${name:text}` in an rbl reply template. */
export function expandRblTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\$\{(\w+)([?:])([^}]*)\}|\$\{(\w+)\}|\$(\w+)/g, (_whole, cname: string, op: string, text: string, bname: string, name: string) => {
    if (cname !== undefined) {
      const value = values[cname] ?? '';
      const inner = text.replace(/\$(\w+)/g, (_w, n: string) => values[n] ?? '');
      return (op === '?') === (value !== '') ? inner : '';
    }
    return values[bname ?? name] ?? '';
  });
}

/** Reads `CODE [x.y.z] text` into a reply; the enhanced code defaults to 5.7.1/4.7.1. */
export function replyFromTemplate(text: string): SmtpReply {
  const match = /^([245]\d\d)\s+(?:([245]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/s.exec(text.trim());
  if (!match) return { code: 554, enhanced: '5.7.1', text: text.trim() };
  const code = Number(match[1]);
  return { code, enhanced: match[2] ?? (code >= 500 ? '5.7.1' : '4.7.1'), text: match[3]! };
}

export async function rejectRblClient(call: RestrictionCall): Promise<RestrictionResult> {
  const hit = await listed(call, false);
  if (hit === undefined) return DUNNO;
  const written = call.restriction.argument ?? hit.domain;
  const template =
    call.env.rblReplyMaps.map((table) => table.lookup(written) ?? table.lookup(hit.domain)).find((value) => value !== undefined) ?? DEFAULT_RBL_REPLY;
  const request = call.request;
  const reason = await rblReason(call.env.resolver, hit.query);
  const text = expandRblTemplate(template, {
    rbl_code: '554',
    rbl_class: 'Client host',
    rbl_what: unmapIpv4(request.client.address),
    rbl_domain: hit.domain,
    rbl_reason: reason,
    rbl_txt: reason,
    client_address: unmapIpv4(request.client.address),
    helo_name: request.helo,
    sender: request.sender ?? '',
    recipient: request.recipient?.address ?? '',
  });
  return { kind: 'reject', by: `${call.restriction.written} ${written}`, reply: replyFromTemplate(text) };
}

export async function permitDnswlClient(call: RestrictionCall): Promise<RestrictionResult> {
  return (await listed(call, true)) === undefined ? DUNNO : { kind: 'permit', by: `${call.restriction.written} ${call.restriction.argument ?? ''}` };
}

/*
 * client-hostname — the client's DNS names and the restrictions on them:
 * reject_unknown_reverse_client_hostname and reject_unknown_client_hostname (FCrDNS).
 *
 * Decides (smtpd(8), postconf(5)): the reverse name is the first PTR name of the client
 * address; the (verified) client name is a PTR name whose A/AAAA records include the
 * client address, else `unknown`. Replies as smtpd_check.c, unknown_client_reject_code
 * 450: `450 4.7.1 Client host rejected: cannot find your reverse hostname, [a.d.d.r]` and
 * `… cannot find your hostname, [a.d.d.r]`; a temporary DNS failure gives the same 450.
 * Leaves to others: the per-session memo (smtpd.ts calls lookupClientNames once).
 * Bugs: at most 5 PTR names are tried, as a bound.
 */
import { DnsError, type DnsResolver } from '../dns/resolver.js';
import { parseIpAddress, unmapIpv4 } from '../tables/ip-network.js';
import { DUNNO, type ClientNames, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';

const MAX_PTR_NAMES = 5;

function failureStatus(error: unknown): 'not-found' | 'temporary' {
  return error instanceof DnsError && (error.kind === 'nxdomain' || error.kind === 'nodata') ? 'not-found' : 'temporary';
}

/** PTR, then forward-confirm (FCrDNS). Never throws. */
export async function lookupClientNames(resolver: DnsResolver, clientAddress: string): Promise<ClientNames> {
  const address = unmapIpv4(clientAddress);
  let ptrNames: string[];
  try {
    ptrNames = (await resolver.reverse(address)).map((name) => name.toLowerCase().replace(/\.$/, '')).filter((name) => name !== '');
  } catch (error) {
    const status = failureStatus(error);
    return { reverseName: 'unknown', reverseStatus: status, name: 'unknown', nameStatus: status };
  }
  if (ptrNames.length === 0) return { reverseName: 'unknown', reverseStatus: 'not-found', name: 'unknown', nameStatus: 'not-found' };
  const family = parseIpAddress(address)?.family ?? 4;
  let nameStatus: ClientNames['nameStatus'] = 'not-found';
  for (const name of ptrNames.slice(0, MAX_PTR_NAMES)) {
    try {
      const answers = family === 4 ? await resolver.resolve4(name) : await resolver.resolve6(name);
      if (answers.some((answer) => answer.address.toLowerCase() === address.toLowerCase())) {
        return { reverseName: ptrNames[0]!, reverseStatus: 'ok', name, nameStatus: 'ok' };
      }
    } catch (error) {
      if (failureStatus(error) === 'temporary') nameStatus = 'temporary';
    }
  }
  return { reverseName: ptrNames[0]!, reverseStatus: 'ok', name: 'unknown', nameStatus };
}

function clientReject(call: RestrictionCall, text: string): RestrictionResult {
  const address = unmapIpv4(call.request.client.address);
  return { kind: 'reject', by: call.restriction.written, reply: { code: 450, enhanced: '4.7.1', text: `Client host rejected: ${text}, [${address}]` } };
}

export async function unknownReverseClientHostname(call: RestrictionCall): Promise<RestrictionResult> {
  const names = await call.session.clientNames();
  return names.reverseStatus === 'ok' ? DUNNO : clientReject(call, 'cannot find your reverse hostname');
}

export async function unknownClientHostname(call: RestrictionCall): Promise<RestrictionResult> {
  const names = await call.session.clientNames();
  return names.nameStatus === 'ok' ? DUNNO : clientReject(call, 'cannot find your hostname');
}

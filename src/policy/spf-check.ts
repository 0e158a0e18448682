/*
 * spf-check — reject_spf_fail: SPF (RFC 7208) as a native restriction, with mailauth.
 *
 * Decides: the SPF check of MAIL FROM (or postmaster@HELO for the null sender) from the
 * client address, once per transaction; result `fail` → `550 5.7.23 <sender>: Sender
 * address rejected: SPF fail …` (RFC 7372 §3.2), `temperror` → `451 4.7.24 … SPF
 * temporary error`, anything else (pass, neutral, softfail, none, permerror) is dunno;
 * every checked message gets mailauth's `Received-SPF:` header prepended. mailauth's DNS
 * lookups go through a resolver function built here from the one injected DnsResolver
 * (TXT, A, AAAA, MX), never to mailauth's default (the system resolver).
 * Leaves to others: which servers answer (the DnsResolver), lookup limits (mailauth: 10
 * DNS mechanisms, 2 void lookups).
 * Bugs: the `ptr` mechanism's PTR lookups answer "no name" (deprecated, RFC 7208 §5.5).
 */
import { spf } from 'mailauth/lib/spf/index.js';
import { DnsError, type DnsResolver } from '../dns/resolver.js';
import { DUNNO, rejectReply, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';
import type { SpfOutcome, SpfResult, SpfVerifier } from './restriction-services.js';


const ERROR_CODES: Readonly<Record<string, string>> = {
  nxdomain: 'ENOTFOUND', nodata: 'ENODATA', timeout: 'ETIMEOUT', servfail: 'ESERVFAIL', refused: 'EREFUSED', other: 'EFAIL',
};

/** mailauth reads node:dns error codes; our DnsError kinds map back to them. */
function nodeDnsError(error: unknown): Error {
  const code = error instanceof DnsError ? ERROR_CODES[error.kind] : 'EFAIL';
  return Object.assign(new Error(error instanceof Error ? error.message : String(error)), { code });
}

/** The resolver function mailauth calls: `(name, rrtype) => records`, node:dns shapes. */
export function mailauthResolver(resolver: DnsResolver) {
  return async (name: string, type: string): Promise<unknown[]> => {
    try {
      switch (type) {
        case 'TXT':
          return await resolver.resolveTxt(name);
        case 'A':
          return (await resolver.resolve4(name)).map((answer) => answer.address);
        case 'AAAA':
          return (await resolver.resolve6(name)).map((answer) => answer.address);
        case 'MX':
          return (await resolver.resolveMx(name)).map((mx) => ({ exchange: mx.exchange, priority: mx.priority }));
        default:
          throw new DnsError('nodata', `${name}/${type}`);
      }
    } catch (error) {
      throw nodeDnsError(error);
    }
  };
}

/** An SpfVerifier over mailauth with our DNS. `myhostname` names this MTA in Received-SPF. */
export function createSpfVerifier(resolver: DnsResolver, myhostname: string): SpfVerifier {
  const lookup = mailauthResolver(resolver);
  return {
    async verify({ ip, sender, helo }) {
      const result = await spf({ ip, sender, helo, mta: myhostname, resolver: lookup as never });
      const status = result.status as { result?: string; comment?: string };
      const value = (status.result ?? 'none') as SpfResult;
      return { result: value, header: result.header.replace(/\r?\n\s*/g, ' ').replace(/^Received-SPF:\s*/i, 'Received-SPF: '), comment: status.comment ?? '' };
    },
  };
}

/** The reject_spf_fail restriction (see file head). */
export async function rejectSpfFail(call: RestrictionCall): Promise<RestrictionResult> {
  const { request, env, session } = call;
  if (env.spf === undefined || request.sender === undefined) return DUNNO;
  const outcome = await session.spf(() =>
    env.spf!.verify({ ip: request.client.address, sender: request.sender ?? '', helo: request.helo }),
  );
  const by = call.restriction.written;
  const sender = request.sender;
  switch (outcome.result) {
    case 'fail':
      return { kind: 'reject', by, reply: rejectReply(550, '5.7.23', sender, 'Sender address', `SPF fail${outcome.comment ? ` (${outcome.comment})` : ''}`) };
    case 'temperror':
      return { kind: 'reject', by, reply: rejectReply(451, '4.7.24', sender, 'Sender address', 'SPF temporary error') };
    case 'pass':
    case 'softfail':
    case 'neutral':
    case 'none':
    case 'permerror':
      return DUNNO;
    default: {
      const never: never = outcome.result;
      throw new Error(`unhandled SPF result ${String(never)}`);
    }
  }
}

/*
 * spf-txt-lookup — the TXT lookups SPF needs (reject_spf_fail, spf-cidr), over node:dns.
 *
 * Decides: TXT records are asked of the same servers as every other lookup
 * (mxscreen_dns_servers, empty = the system resolver), with a hard deadline; failures
 * are DnsError with the kinds of dns/resolver.ts (the DnsResolver interface has no TXT).
 * Leaves to others: what the records mean (spf-check.ts, spf-cidr.ts).
 */
import { promises as dns } from 'node:dns';
import { DnsError } from '../dns/resolver.js';
import { dnsFailureKind } from '../dns/node-resolver.js';
import type { TxtLookup } from './spf-check.js';

/** A TxtLookup asking `servers` (ip, ip:port, [ipv6]:port; empty: system), each lookup limited to `timeoutMs`. */
export function createTxtLookup(servers: readonly string[], timeoutMs: number): TxtLookup {
  const resolver = new dns.Resolver({ timeout: Math.max(1, Math.ceil(timeoutMs / 2)), tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return (name) =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new DnsError('timeout', `${name}/TXT`)), timeoutMs);
      resolver.resolveTxt(name).then(
        (records) => {
          clearTimeout(deadline);
          resolve(records);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          reject(new DnsError(dnsFailureKind((error as { code?: unknown }).code), `${name}/TXT`, { cause: error }));
        },
      );
    });
}

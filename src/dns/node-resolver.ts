/*
 * node-resolver — the DnsResolver over node:dns (c-ares), as mxscreen runs it.
 *
 * Decides (A, AAAA, MX, PTR, TXT): which servers are asked (`mxscreen_dns_servers`, `ip[:port]` or
 * `[ipv6]:port`; empty = the system resolver from /etc/resolv.conf), the time limit of
 * one lookup (`timeoutMs`, a hard deadline over all of c-ares' tries), and how c-ares
 * error codes map to DnsError kinds (ENOTFOUND→nxdomain, ENODATA→nodata,
 * ETIMEOUT→timeout, ESERVFAIL→servfail, EREFUSED→refused, anything else→other).
 * Leaves to others: what a failure means (DNSBL: not listed; delivery: defer).
 * Bugs: c-ares hides the SOA of a negative answer, so an NXDOMAIN has no TTL here.
 * A lookup abandoned at the deadline still runs inside c-ares until its own timeout.
 */
import { promises as dns } from 'node:dns';
import { DnsError, type AddressAnswer, type DnsFailureKind, type DnsResolver, type MxAnswer } from './resolver.js';

export interface NodeResolverOptions {
  /** DNS servers, `ip`, `ip:port` or `[ipv6]:port`; empty = the system resolver. */
  readonly servers: readonly string[];
  /** Time limit of one lookup in ms, all tries included. */
  readonly timeoutMs: number;
  /** c-ares tries per server (default 2); each try gets timeoutMs / tries. */
  readonly tries?: number;
}

/** c-ares error code → DnsError kind (node:dns error codes, see the dns module docs). */
export function dnsFailureKind(code: unknown): DnsFailureKind {
  switch (code) {
    case dns.NOTFOUND:
      return 'nxdomain';
    case dns.NODATA:
      return 'nodata';
    case dns.TIMEOUT:
      return 'timeout';
    case dns.SERVFAIL:
      return 'servfail';
    case dns.REFUSED:
      return 'refused';
    default:
      return 'other';
  }
}

/**
 * A DnsResolver that asks `options.servers` with node:dns `promises.Resolver`.
 * Every method rejects with DnsError (never another error); the deadline rejects with
 * kind `timeout`. Throws DnsError kind `other` at once when a server address is malformed.
 */
export function createNodeResolver(options: NodeResolverOptions): DnsResolver {
  const tries = Math.max(1, options.tries ?? 2);
  const resolver = new dns.Resolver({ timeout: Math.max(1, Math.ceil(options.timeoutMs / tries)), tries });
  if (options.servers.length > 0) {
    try {
      resolver.setServers([...options.servers]);
    } catch (error) {
      throw new DnsError('other', `servers ${options.servers.join(', ')}`, { cause: error });
    }
  }

  /** Runs one lookup under the hard deadline, mapping every failure to a DnsError. */
  function lookup<T>(query: string, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new DnsError('timeout', query)), options.timeoutMs);
      run().then(
        (value) => {
          clearTimeout(deadline);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          const code = (error as { code?: unknown } | undefined)?.code;
          reject(new DnsError(dnsFailureKind(code), query, { cause: error }));
        },
      );
    });
  }

  return {
    resolve4: (name) =>
      lookup(`${name}/A`, async (): Promise<AddressAnswer[]> => (await resolver.resolve4(name, { ttl: true })).map((a) => ({ address: a.address, ttl: a.ttl }))),
    resolve6: (name) =>
      lookup(`${name}/AAAA`, async (): Promise<AddressAnswer[]> => (await resolver.resolve6(name, { ttl: true })).map((a) => ({ address: a.address, ttl: a.ttl }))),
    resolveMx: (name) =>
      lookup(`${name}/MX`, async (): Promise<MxAnswer[]> => (await resolver.resolveMx(name)).map((mx) => ({ exchange: mx.exchange, priority: mx.priority }))),
    reverse: (address) => lookup(`${address}/PTR`, () => resolver.reverse(address)),
    resolveTxt: (name) => lookup(`${name}/TXT`, () => resolver.resolveTxt(name)),
  };
}

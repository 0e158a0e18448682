/*
 * resolver — the DNS lookups mxscreen makes, behind one injectable interface.
 *
 * Decides: the shape of DNS answers the stages see (every A record with its TTL, MX
 * records, PTR names, TXT records as their character-strings) and that failures are typed: `DnsError.kind` says whether a name
 * does not exist (`nxdomain`, `nodata`) or the lookup could not be done (`timeout`,
 * `servfail`, `refused`, `other`).
 * Leaves to others: the node:dns (c-ares) implementation (node-resolver.ts) and what a
 * failure means to each caller (DNSBL: not listed; delivery: defer).
 */
import { MxError } from '../errors.js';

export interface AddressAnswer {
  readonly address: string;
  /** seconds */
  readonly ttl: number;
}

export interface MxAnswer {
  readonly exchange: string;
  readonly priority: number;
}

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'timeout' | 'servfail' | 'refused' | 'other';

export class DnsError extends MxError {
  readonly kind: DnsFailureKind;
  readonly query: string;
  constructor(kind: DnsFailureKind, query: string, options?: { cause?: unknown }) {
    super('ERR_DNS', `DNS lookup of ${query}: ${kind}`, options);
    this.kind = kind;
    this.query = query;
  }
}

export interface DnsResolver {
  /** A records with TTLs. Rejects with DnsError. */
  resolve4(name: string): Promise<AddressAnswer[]>;
  /** AAAA records with TTLs. Rejects with DnsError. */
  resolve6(name: string): Promise<AddressAnswer[]>;
  /** MX records. Rejects with DnsError. */
  resolveMx(name: string): Promise<MxAnswer[]>;
  /** PTR names of an IP address. Rejects with DnsError. */
  reverse(address: string): Promise<string[]>;
  /**
   * TXT records of `name`, each as its character-strings (RFC 1035 §3.3.14: a record
   * longer than 255 bytes comes in several; join them for SPF, RFC 7208 §3.3).
   * Rejects with DnsError.
   */
  resolveTxt(name: string): Promise<string[][]>;
}

/*
 * reverse-name — the DNS name under which a zone lists an IP address.
 *
 * Decides: how a client address becomes a DNSBL/DNSWL (or PTR) query name: RFC 5782
 * §2.1 IPv4, octets reversed (`2.0.0.127.zone`); §2.4 IPv6, the 32 nibbles of the full
 * address reversed (`1.0.0.0.….8.b.d.0.1.0.0.2.zone`); an IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4 client) is queried as
 * the IPv4 client it stands for (postscreen(8) via Postfix myaddrinfo).
 * Leaves to others: address parsing (tables/ip-network.ts), sending the query (dnsbl.ts).
 */
import { MxError } from '../errors.js';
import { parseIpAddress } from '../tables/ip-network.js';

/**
 * The query name of `address` in `zone` (no trailing dot added). Throws MxError
 * ERR_DNS when `address` is not an IPv4 or IPv6 address.
 */
export function reverseName(address: string, zone: string): string {
  const parsed = parseIpAddress(address);
  if (parsed === undefined) throw new MxError('ERR_DNS', `not an IP address: ${address}`);
  const digits = parsed.family === 4 ? 4 : 32;
  const bits = parsed.family === 4 ? 8n : 4n;
  const labels: string[] = [];
  let value = parsed.value;
  for (let i = 0; i < digits; i++) {
    const part = value & ((1n << bits) - 1n);
    labels.push(parsed.family === 4 ? part.toString(10) : part.toString(16));
    value >>= bits;
  }
  return `${labels.join('.')}.${zone}`;
}

/*
 * ip-network — IP addresses and networks as mail software compares them.
 *
 * Decides: how an address or `network/prefix` text is read (IPv4 dotted quad, IPv6 with
 * or without [brackets], an IPv6 zone id ignored), that an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, what a dual-stack socket reports) is the IPv4 address, that a
 * network must have zero host bits (Postfix: "non-null host address bits"), and whether
 * a network contains an address. Used by cidr: tables, mynetworks and the screen stage.
 * Leaves to others: what a match means (cidr-table.ts, match-list.ts, screen/).
 * Bugs: no IPv4 short forms (`127.1`) and no netmask notation (`/255.255.255.0`), as in
 * Postfix's cidr_table(5).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

/** An address as a number: 32 bits for IPv4, 128 bits for IPv6. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A network: `base` has every host bit zero; `prefix` is 0..32 or 0..128. */
export interface IpNetwork {
  readonly family: IpFamily;
  readonly base: bigint;
  readonly prefix: number;
}

/** The result of reading a network: the network, or why the text is not one. */
export type NetworkParse = { readonly network: IpNetwork } | { readonly problem: string };

const MAPPED_PREFIX = 0xffffn << 32n; // ::ffff:0:0/96

/**
 * Reads an address: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, `fe80::1%eth0`.
 * An IPv4-mapped IPv6 address comes back as family 4. Returns undefined for anything else
 * (host names included). Never throws.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  let candidate = text.trim();
  if (candidate.startsWith('[') && candidate.endsWith(']')) candidate = candidate.slice(1, -1);
  const zone = candidate.indexOf('%');
  if (zone >= 0) candidate = candidate.slice(0, zone);
  if (isIPv4(candidate)) return { family: 4, value: ipv4Value(candidate) };
  if (!isIPv6(candidate)) return undefined;
  const value = ipv6Value(candidate);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/**
 * The address as logs and table keys should show it: `::ffff:192.0.2.1` becomes
 * `192.0.2.1`; anything else comes back unchanged. Node's dual-stack sockets report
 * IPv4 clients this way (postscreen(8) logs the plain IPv4 form).
 */
export function unmapIpv4(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address.trim());
  return match !== null && isIPv4(match[1] ?? '') ? (match[1] ?? address) : address;
}

/**
 * Reads `address/prefix` or a bare address (a host network, /32 or /128). IPv6 may be
 * written `2001:db8::/32`, `[2001:db8::]/32` or `[2001:db8::/32]` (mynetworks style).
 * A network of IPv4-mapped addresses with prefix ≥ 96 becomes the IPv4 network.
 * Returns `{ problem }` for a bad address, a bad prefix or non-zero host bits
 * (cidr_table(5), postconf(5) mynetworks). Never throws.
 */
export function parseIpNetwork(text: string): NetworkParse {
  let candidate = text.trim();
  let prefixText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?:\/(.*))?$/.exec(candidate);
  if (bracketed !== null) {
    candidate = bracketed[1] ?? '';
    prefixText = bracketed[2];
  }
  const slash = candidate.indexOf('/');
  if (slash >= 0) {
    if (prefixText !== undefined) return { problem: `bad network "${text}"` };
    prefixText = candidate.slice(slash + 1);
    candidate = candidate.slice(0, slash);
  }
  const address = parseIpAddress(candidate);
  if (address === undefined) return { problem: `bad network address "${text}"` };
  const mapped = address.family === 4 && isIPv6(candidate);
  const bits = mapped || address.family === 6 ? 128 : 32;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      return { problem: `bad network prefix "/${prefixText}" in "${text}" (0..${bits})` };
    }
    prefix = Number(prefixText);
  }
  let family: IpFamily = address.family;
  let value = address.value;
  if (mapped) {
    if (prefix < 96) {
      family = 6;
      value = MAPPED_PREFIX | address.value;
    } else {
      prefix -= 96;
    }
  }
  const width = family === 4 ? 32 : 128;
  const base = value & networkMask(width, prefix);
  if (base !== value) {
    return { problem: `non-null host address bits in "${text}", perhaps use "${formatNetwork({ family, base, prefix })}"` };
  }
  return { network: { family, base, prefix } };
}

/** True when `address` is inside `network` (same family, same leading `prefix` bits). */
export function networkContains(network: IpNetwork, address: IpAddress): boolean {
  if (network.family !== address.family) return false;
  const width = network.family === 4 ? 32 : 128;
  return (address.value & networkMask(width, network.prefix)) === network.base;
}

/** `192.0.2.0/24` or `2001:db8::/32` (IPv6 in full hex groups, no `::` compression). */
export function formatNetwork(network: IpNetwork): string {
  if (network.family === 4) {
    const octets = [24n, 16n, 8n, 0n].map((shift) => String((network.base >> shift) & 0xffn));
    return `${octets.join('.')}/${network.prefix}`;
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((network.base >> shift) & 0xffffn).toString(16));
  return `${groups.join(':')}/${network.prefix}`;
}

function networkMask(width: number, prefix: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return (all << BigInt(width - prefix)) & all;
}

function ipv4Value(text: string): bigint {
  return text.split('.').reduce((sum, octet) => (sum << 8n) | BigInt(Number(octet)), 0n);
}

/** `text` must already satisfy net.isIPv6 (no zone, no brackets). */
function ipv6Value(text: string): bigint {
  const halves = text.split('::');
  const groupsOf = (part: string | undefined): bigint[] => {
    if (part === undefined || part === '') return [];
    const groups: bigint[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = ipv4Value(piece);
        groups.push(v4 >> 16n, v4 & 0xffffn);
      } else {
        groups.push(BigInt(parseInt(piece, 16)));
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  const zeros = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<bigint>(zeros).fill(0n), ...tail];
  return groups.reduce((sum, group) => (sum << 16n) | group, 0n);
}

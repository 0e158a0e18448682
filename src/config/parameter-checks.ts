/*
 * parameter-checks — what a parameter's typed value must satisfy beyond its kind.
 *
 * Decides: smtpd_banner begins with a host name followed by `ESMTP` (RFC 5321 §4.2 and
 * §4.3.1 greeting; smtp-server writes it as `name ESMTP text`); literal mynetworks
 * patterns that look like addresses are valid networks with zero host bits (postconf(5)
 * mynetworks); mxscreen_listen and mxscreen_metrics_listen are `host:port` or
 * `[ipv6]:port`; mxscreen_dns_servers are `ip`, `ip:port` or `[ipv6]:port`;
 * mxscreen_self_listing_addresses are IPv4 or IPv6 addresses; the cleanup(8) safety
 * limits (header_size_limit, mime_*_limit, mxscreen_*_count_limit) are at least 1.
 * Leaves to others: kind syntax (parameter-kind.ts); what the values do (each stage).
 * Bugs: host names in listen addresses are not resolved here; no cross-parameter
 * ordering checks (minimal ≤ maximal backoff) since Postfix has none either.
 */
import { isIP } from 'node:net';
import type { ParameterName } from './catalogue.js';
import type { MatchList } from './value.js';
import { parseIpNetwork } from '../tables/ip-network.js';

/** The checks, each on one parameter: messages for problems found (empty when fine). */
export const PARAMETER_CHECKS: { readonly [N in ParameterName]?: (value: unknown) => string[] } = {
  smtpd_banner: (value) =>
    /^\S+ ESMTP(\s|$)/.test(String(value))
      ? []
      : [`"${String(value)}" must begin with the host name followed by ESMTP (e.g. "$myhostname ESMTP $mail_name")`],
  mynetworks: (value) => {
    const problems: string[] = [];
    for (const written of (value as MatchList).patterns) {
      const pattern = written.replace(/^!/, '');
      const looksLikeAddress = /^[\d.]+(\/.*)?$/.test(pattern) || pattern.startsWith('[') || isIP(pattern.split('/')[0] ?? '') === 6;
      if (!looksLikeAddress) continue;
      const parsed = parseIpNetwork(pattern);
      if ('problem' in parsed) problems.push(parsed.problem);
    }
    return problems;
  },
  mxscreen_listen: (value) => (value as readonly string[]).flatMap((address) => checkHostPort(address, true)),
  mxscreen_metrics_listen: (value) => (String(value) === '' ? [] : checkHostPort(String(value), true)),
  mxscreen_dns_servers: (value) => (value as readonly string[]).flatMap((server) => checkHostPort(server, false)),
  mxscreen_self_listing_addresses: (value) =>
    (value as readonly string[]).filter((address) => isIP(address) === 0).map((address) => `bad address "${address}" (expected an IPv4 or IPv6 address, without brackets or prefix)`),
  header_size_limit: atLeastOne,
  mxscreen_header_count_limit: atLeastOne,
  mime_nesting_limit: atLeastOne,
  mime_boundary_length_limit: atLeastOne,
  mxscreen_mime_part_count_limit: atLeastOne,
};

/** The safety limits (postconf(5): Postfix's have a minimum of 1). */
function atLeastOne(value: unknown): string[] {
  return Number(value) >= 1 ? [] : [`${String(value)} is too small (the minimum is 1)`];
}

/** `host:port`, `[ipv6]:port`; with `portRequired` false also a bare IPv4/IPv6 address. */
function checkHostPort(text: string, portRequired: boolean): string[] {
  if (!portRequired && isIP(text) !== 0) return [];
  const match = /^(?:\[([^\]]+)\]|([^\s:[\]]+)):(\d+)$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
    return [`bad address "${text}" (expected ${portRequired ? 'host:port or [ipv6]:port' : 'ip, ip:port or [ipv6]:port'})`];
  }
  if (!portRequired && isIP(host) === 0) return [`bad address "${text}" (a DNS server is an IP address)`];
  return [];
}

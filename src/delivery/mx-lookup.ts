/*
 * mx-lookup — the addresses an SMTP nexthop stands for (RFC 5321 §5.1, Postfix smtp(8)).
 *
 * Decides: for an MX nexthop, the MX hosts in preference order (equal preferences in
 * random order), the implicit MX (the name's own address) when there is no MX record,
 * a null MX (RFC 7505, `.`) as a bounce; for a [bracketed] nexthop, its A/AAAA records;
 * an IP address as itself. A name that does not exist bounces (5.4.4, Postfix: "Host or
 * domain name not found"); a lookup that could not be done defers (4.4.3).
 * At most `MX_ADDRESS_LIMIT` addresses are returned (postconf smtp_mx_address_limit). A
 * nexthop list (Postfix 3.5) stands for the targets of each destination in order; it fails
 * only when none has any, a temporary failure outweighing a permanent one.
 * Leaves to others: which nexthop (transport.ts), connecting to the targets (smtp-delivery.ts).
 * Bugs: IPv4 first; AAAA records are used only when a host has no A record.
 */
import { isIP } from 'node:net';
import { DnsError, type DnsResolver } from '../dns/resolver.js';
import type { Nexthop } from './transport.js';

/** postconf(5) smtp_mx_address_limit default. */
export const MX_ADDRESS_LIMIT = 5;

/** One address to try: the host name it came from (for `relay=host[ip]:port`) and its IP. */
export interface DeliveryTarget {
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
}

export type TargetLookup =
  | { readonly kind: 'targets'; readonly targets: readonly DeliveryTarget[] }
  /** No target: bounce (`permanent`) or defer, with the RFC 3463 status and Postfix-style text. */
  | { readonly kind: 'failure'; readonly permanent: boolean; readonly dsn: string; readonly text: string };

/**
 * The delivery targets of an SMTP nexthop `{ host, port, mxLookup }` through the
 * injected resolver. Never throws: DNS failures become a `failure` result.
 */
export async function lookupTargets(
  nexthop: { readonly host: string; readonly port: number; readonly mxLookup: boolean },
  resolver: DnsResolver,
): Promise<TargetLookup> {
  const { host, port } = nexthop;
  if (isIP(host)) return { kind: 'targets', targets: [{ hostname: host, address: host, port }] };
  if (!nexthop.mxLookup) return addressTargets([host], port, resolver, host);

  let exchanges: string[];
  try {
    const answers = await resolver.resolveMx(host);
    if (answers.length === 1 && (answers[0]!.exchange === '' || answers[0]!.exchange === '.')) {
      return { kind: 'failure', permanent: true, dsn: '5.1.10', text: `Domain ${host} does not accept mail (nullMX)` };
    }
    exchanges = groupByPreference(answers).map((answer) => answer.exchange.replace(/\.$/, '').toLowerCase());
  } catch (error) {
    if (error instanceof DnsError && error.kind === 'nodata') exchanges = [host]; // implicit MX, RFC 5321 §5.1
    else return dnsFailure(error, host, 'MX');
  }
  return addressTargets(exchanges, port, resolver, host);
}

/**
 * The targets of every destination of a nexthop list (transport.ts `also`), in list order,
 * up to MX_ADDRESS_LIMIT for each. Never throws: a `failure` only when no destination has a
 * target (temporary when any destination failed temporarily).
 */
export async function lookupNexthopTargets(nexthop: Extract<Nexthop, { kind: 'smtp' }>, resolver: DnsResolver): Promise<TargetLookup> {
  const targets: DeliveryTarget[] = [];
  let failure: Extract<TargetLookup, { kind: 'failure' }> | undefined;
  // Bounded by the length of the nexthop list.
  for (const destination of [nexthop, ...(nexthop.also ?? [])]) {
    const lookup = await lookupTargets(destination, resolver);
    if (lookup.kind === 'targets') targets.push(...lookup.targets);
    else if (!failure || (failure.permanent && !lookup.permanent)) failure = lookup;
  }
  if (targets.length) return { kind: 'targets', targets };
  return failure ?? { kind: 'failure', permanent: false, dsn: '4.4.3', text: 'no delivery target' };
}

function groupByPreference<T extends { readonly priority: number }>(answers: readonly T[]): T[] {
  // Random order within one preference spreads load as RFC 5321 §5.1 asks.
  return answers
    .map((answer) => ({ answer, tiebreak: Math.random() }))
    .sort((a, b) => a.answer.priority - b.answer.priority || a.tiebreak - b.tiebreak)
    .map((entry) => entry.answer);
}

async function addressTargets(hosts: readonly string[], port: number, resolver: DnsResolver, nexthop: string): Promise<TargetLookup> {
  const targets: DeliveryTarget[] = [];
  let lastFailure: TargetLookup | undefined;
  // Bounded by the number of MX hosts and MX_ADDRESS_LIMIT.
  for (const hostname of hosts) {
    if (targets.length >= MX_ADDRESS_LIMIT) break;
    if (isIP(hostname)) {
      targets.push({ hostname, address: hostname, port });
      continue;
    }
    try {
      let answers = await resolver.resolve4(hostname).catch(async (error: unknown) => {
        if (error instanceof DnsError && (error.kind === 'nodata' || error.kind === 'nxdomain')) return resolver.resolve6(hostname).catch(() => Promise.reject(error));
        throw error;
      });
      answers = answers.slice(0, MX_ADDRESS_LIMIT - targets.length);
      for (const answer of answers) targets.push({ hostname, address: answer.address, port });
    } catch (error) {
      const failure = dnsFailure(error, hostname, 'A');
      // A temporary failure of any host outweighs "not found" of another: defer, not bounce.
      if (!lastFailure || (lastFailure.kind === 'failure' && lastFailure.permanent)) lastFailure = failure;
    }
  }
  if (targets.length > 0) return { kind: 'targets', targets };
  return lastFailure ?? { kind: 'failure', permanent: false, dsn: '4.4.3', text: `no address for ${nexthop}` };
}

function dnsFailure(error: unknown, name: string, type: string): TargetLookup {
  if (error instanceof DnsError && (error.kind === 'nxdomain' || error.kind === 'nodata')) {
    return { kind: 'failure', permanent: true, dsn: '5.4.4', text: `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found` };
  }
  const kind = error instanceof DnsError ? error.kind : 'other';
  return { kind: 'failure', permanent: false, dsn: '4.4.3', text: `Host or domain name not found. Name service error for name=${name} type=${type}: ${kind}` };
}

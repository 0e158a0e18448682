/*
 * transport — which nexthop a recipient goes to (Postfix trivial-rewrite + transport(5)).
 *
 * Decides: the lookup order in transport_maps (full address, then the domain, then its
 * parent domains as `.domain` entries, or as `domain` entries when transport_maps is in
 * parent_domain_matches_subdomains, then `*`; keys lower-cased); the meaning of a
 * result `transport:nexthop` (smtp and relay deliver over SMTP, error bounces with the
 * text, retry defers with it; `[host]` means no MX lookup, `:port` a port or service
 * name, an empty nexthop the recipient's domain); the fallback `relayhost`, then the
 * recipient's domain via MX. An unknown transport (lmtp, local, a master.cf name we do
 * not have) defers: the mail stays queued until the table is fixed (Postfix: "mail
 * transport unavailable").
 * Leaves to others: MX and address lookup (mx-lookup.ts), the SMTP dialogue (smtp-delivery.ts).
 * A nexthop list `smtp:[a]:25, b` (Postfix 3.5+) is tried in order (`also`).
 * Bugs: no recipient_delimiter (user+ext@ keys).
 */
import type { DeliverySettings } from '../delivery-request.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { recipientDomain } from '../message/envelope.js';

/** Where a recipient's mail goes. */
export type Nexthop =
  | (SmtpDestination & {
      readonly kind: 'smtp';
      /** Transport name as the table wrote it (smtp or relay), for defer_transports. */
      readonly transport: string;
      /** Further destinations of a nexthop list, tried in order after this one. */
      readonly also?: readonly SmtpDestination[];
    })
  /** Bounce with this text (transport(5) `error:`), e.g. `5.1.1 mailbox unavailable`. */
  | { readonly kind: 'error'; readonly text: string }
  /** Defer with this text (transport(5) `retry:`, or a transport mxscreen lacks). */
  | { readonly kind: 'retry'; readonly text: string };

/** One SMTP destination: a host (or MX domain) and port. */
export interface SmtpDestination {
  /** Host name, IP address (no brackets), or the domain whose MX to look up. */
  readonly host: string;
  /** TCP port, default 25. */
  readonly port: number;
  /** False when the nexthop was `[bracketed]` or an IP address: connect to its A record. */
  readonly mxLookup: boolean;
}

/** transport_maps and relayhost (delivery-request.ts). */
export type TransportSettings = Pick<DeliverySettings, 'transportMaps' | 'relayhost' | 'transportMapsMatchSubdomains'>;

/** Port numbers of the service names a nexthop may use (services(5)). */
const SERVICES: Readonly<Record<string, number>> = { smtp: 25, submission: 587, submissions: 465, smtps: 465, lmtp: 24 };

/**
 * The nexthop of `recipient` (an RFC 5321 address without brackets), following
 * transport(5) and then relayhost, then the recipient's own domain (RFC 5321 §5.1).
 * Never throws: a bad table entry becomes a `retry` nexthop naming the problem.
 */
export function resolveNexthop(recipient: string, settings: TransportSettings): Nexthop {
  const domain = recipientDomain(recipient);
  const entry = lookupTransport(transportKeys(recipient, domain, settings.transportMapsMatchSubdomains ?? false), settings.transportMaps);
  if (entry !== undefined) return parseTransportEntry(entry, domain);
  if (settings.relayhost.trim()) return parseSmtpNexthopList('smtp', settings.relayhost.trim(), domain, `relayhost = ${settings.relayhost}`);
  return parseSmtpNexthopList('smtp', '', domain, 'recipient domain');
}

/**
 * The transport(5) keys for a recipient, in lookup order: `user@domain`, `domain`,
 * `.parent.domain` … `.tld` (with `parentStyle`: `parent.domain` … `tld`), `*`.
 */
export function transportKeys(recipient: string, domain: string, parentStyle = false): string[] {
  const keys = [recipient.toLowerCase()];
  if (domain) {
    keys.push(domain);
    // `.example.com` matches any subdomain of example.com (transport(5)), so a.b.example.com
    // tries `.b.example.com`, `.example.com`, `.com`, nearest first; in parent style
    // `b.example.com`, `example.com`, `com`.
    const labels = domain.split('.');
    for (let i = 1; i < labels.length; i += 1) keys.push(`${parentStyle ? '' : '.'}${labels.slice(i).join('.')}`);
  }
  keys.push('*');
  return keys;
}

function lookupTransport(keys: readonly string[], tables: readonly LookupTable[]): string | undefined {
  for (const key of keys) {
    for (const table of tables) {
      const value = table.lookup(key);
      if (value !== undefined) return value.trim();
    }
  }
  return undefined;
}

/**
 * Reads a transport(5) right-hand side `transport:nexthop` (`transport` alone, or
 * `:nexthop` with the default transport smtp). `domain` is the recipient's domain,
 * used when the nexthop is empty.
 */
export function parseTransportEntry(entry: string, domain: string): Nexthop {
  const colon = entry.indexOf(':');
  const transport = (colon < 0 ? entry : entry.slice(0, colon)).trim().toLowerCase() || 'smtp';
  const nexthop = colon < 0 ? '' : entry.slice(colon + 1).trim();
  switch (transport) {
    case 'smtp':
    case 'relay':
      return parseSmtpNexthopList(transport, nexthop, domain, entry);
    case 'error':
      return { kind: 'error', text: nexthop || 'mail for this destination is refused' };
    case 'retry':
      return { kind: 'retry', text: nexthop || 'delivery temporarily suspended' };
    default:
      return { kind: 'retry', text: `mail transport unavailable: ${transport} (transport_maps entry "${entry}")` };
  }
}

/**
 * Reads an SMTP nexthop list `a, b` (comma or white space separated, Postfix 3.5): the
 * first is the nexthop, the others are tried in order when it cannot be reached.
 */
export function parseSmtpNexthopList(transport: string, text: string, domain: string, origin: string): Nexthop {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const destinations: SmtpDestination[] = [];
  for (const part of parts.length ? parts : ['']) {
    const one = parseSmtpNexthop(part, domain, origin);
    if (one.kind !== 'smtp') return one;
    destinations.push({ host: one.host, port: one.port, mxLookup: one.mxLookup });
  }
  const [first, ...also] = destinations;
  return { kind: 'smtp', transport, ...first!, ...(also.length ? { also } : {}) };
}

/**
 * Reads an SMTP nexthop: `[host]:port`, `[host]`, `[ipv6:addr]:port`, `host:port`,
 * `host`, or empty (the recipient's domain with MX lookup). An IP address, bracketed
 * or not, never gets an MX lookup.
 */
export function parseSmtpNexthop(text: string, domain: string, origin: string): Nexthop {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::([A-Za-z0-9-]+))?$/.exec(text);
  if (!match) return { kind: 'retry', text: `bad nexthop "${text}" in ${origin}` };
  const bracketed = match[1] !== undefined;
  let host = (bracketed ? match[1]! : match[2]!).trim();
  if (/^ipv6:/i.test(host)) host = host.slice(5);
  const portText = match[3];
  let port = 25;
  if (portText !== undefined) {
    port = /^\d+$/.test(portText) ? Number(portText) : (SERVICES[portText.toLowerCase()] ?? NaN);
    if (!(port > 0 && port < 65536)) return { kind: 'retry', text: `bad port "${portText}" in ${origin}` };
  }
  if (!host) {
    if (bracketed) return { kind: 'retry', text: `empty [] nexthop in ${origin}` };
    const literal = /^\[(?:ipv6:)?(.*)\]$/i.exec(domain);
    if (literal) return { kind: 'smtp', transport: 'smtp', host: literal[1]!, port, mxLookup: false };
    if (!domain) return { kind: 'error', text: '5.1.3 recipient address has no domain' };
    return { kind: 'smtp', transport: 'smtp', host: domain, port, mxLookup: true };
  }
  return { kind: 'smtp', transport: 'smtp', host: host.toLowerCase(), port, mxLookup: !bracketed && !isIpAddress(host) };
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** The nexthop as Postfix writes it in logs and as the metric label: `[host]:port` or `host:port`. */
export function formatNexthop(nexthop: Nexthop): string {
  switch (nexthop.kind) {
    case 'smtp':
      return [nexthop, ...(nexthop.also ?? [])].map(formatDestination).join(',');
    case 'error':
      return 'error';
    case 'retry':
      return 'retry';
    default: {
      const never: never = nexthop;
      throw new Error(`unhandled nexthop ${JSON.stringify(never)}`);
    }
  }
}

function formatDestination(destination: SmtpDestination): string {
  return destination.mxLookup ? `${destination.host}:${destination.port}` : `[${destination.host}]:${destination.port}`;
}

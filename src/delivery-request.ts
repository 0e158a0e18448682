/*
 * delivery-request — the one seam between the queue manager and the delivery agent
 * (Postfix deliver_request(3): what qmgr(8) hands smtp(8), and the per-recipient status it
 * reports back).
 *
 * Decides: what an attempt is given (the message: sender, RFC 3461 ENVID/RET, size, a body
 * opener and whether a flush asked for it; the recipients to try; an abort signal), what it
 * returns (one result per recipient tried: outcome, relay, nexthop, why), the main.cf
 * settings a delivery agent reads (postconf(5) names), and the smtp_tls_security_level
 * values mxscreen implements. It sits outside queue/ and delivery/ so each imports it and
 * neither imports the other; queue-manager.ts only constructs the agent (README "Design",
 * Seams).
 * Leaves to others: nexthops, MX targets, connections and SMTP (delivery/), what the
 * results mean for the message (queue/delivery-outcome.ts), the envelope
 * (message/envelope.ts).
 */
import type { Readable } from 'node:stream';
import type { Envelope, QueueRecipient } from './message/envelope.js';
import type { LookupTable } from './tables/lookup-table.js';

/** Postfix smtp_tls_security_level values mxscreen implements (empty means none). */
export const TLS_LEVELS = ['none', 'may', 'encrypt'] as const;
export type TlsLevel = (typeof TLS_LEVELS)[number];

export type RecipientOutcome = 'sent' | 'deferred' | 'bounced';

/** What became of one recipient at one nexthop. */
export interface RecipientResult {
  readonly address: string;
  readonly status: RecipientOutcome;
  /** RFC 3463 status, e.g. `2.0.0`, `4.4.1`, `5.1.1`. */
  readonly dsn: string;
  /** Reply or error text as the log's `status=… (text)` shows it. */
  readonly text: string;
}

/** The main.cf settings the delivery agent reads (postconf(5) names). */
export interface DeliverySettings {
  /** transport_maps, searched in order; the first table with an answer wins. */
  readonly transportMaps: readonly LookupTable[];
  /** relayhost, `[host]:port`, `host:port` or `host`; empty for none. */
  readonly relayhost: string;
  /**
   * transport_maps is in parent_domain_matches_subdomains (postconf(5); Postfix default:
   * not there): an entry `example.com` also routes its subdomains, `.example.com` is not looked up.
   */
  readonly transportMapsMatchSubdomains?: boolean;
  /** EHLO name (myhostname, or the machine host name when empty). */
  readonly myhostname: string;
  /** minimal_backoff_time, ms: also how long a nexthop that gave no answer is left alone. */
  readonly minimalBackoffTime: number;
  /** Transports whose mail waits in deferred/ until flush or ETRN (defer_transports), lower case. */
  readonly deferTransports?: readonly string[];
  /** Connections per nexthop (default_destination_concurrency_limit); default 20. */
  readonly destinationConcurrencyLimit?: number;
  /** Idle connection reuse time, ms (smtp_connection_cache_time_limit); 0 = no reuse. */
  readonly connectionCacheTime?: number;
  /** smtp_tls_security_level; default may. */
  readonly tlsLevel?: TlsLevel;
  /** smtp_connect_timeout, ms. */
  readonly connectTimeout: number;
  /** Greeting and command reply limit, ms (Postfix smtp_helo_timeout, 300s). */
  readonly commandTimeout: number;
}

/** The message of one attempt. */
export interface OutboundMessage {
  /** Envelope sender; empty for the null sender `<>`. */
  readonly sender: string;
  /** RFC 3461 ENVID and RET, when the client gave them. */
  readonly dsn?: Envelope['dsn'];
  /** Body size in bytes (SIZE=, RFC 1870). */
  readonly size: number;
  /** A fresh stream of the body bytes (from the queue file) for each connection that gets to DATA. */
  readonly body: () => Readable;
  /**
   * A flush asked for this attempt (postqueue -f / -s, ETRN, release, requeue):
   * defer_transports and a dead nexthop do not hold it.
   */
  readonly flushed: boolean;
}

/** One recipient's result of an attempt. */
export interface RecipientDelivery {
  readonly outcome: RecipientResult;
  /** Postfix's relay=: `host[ip]:port` of the server that answered, `none` without one. */
  readonly relay: string;
  /** The nexthop as logs and metrics name it (transport.ts formatNexthop). */
  readonly nexthop: string;
  /**
   * Why, when it bounced (mxscreen_bounces_total's reason): `rejected` by a server's
   * reply, `transport` without one (error: transport, no such domain).
   */
  readonly reason: 'rejected' | 'transport';
  /** The server that took it did not announce DSN (a NOTIFY=SUCCESS notice is ours to send). */
  readonly relayedWithoutDsn: boolean;
}

/** What the queue manager asks of its delivery agent. */
export interface DeliveryAgent {
  /**
   * Tries `recipients` of `message` once. Resolves their results by position in
   * `recipients`; a position without a result was not tried (`signal` aborted first).
   * Aborting closes connections; recipients then come back deferred. Never rejects.
   */
  deliver(message: OutboundMessage, recipients: readonly QueueRecipient[], signal: AbortSignal): Promise<ReadonlyMap<number, RecipientDelivery>>;
  /** Takes new settings (reload); attempts under way finish with the old ones. */
  setSettings(settings: DeliverySettings): void;
  /** Forgets every nexthop thought dead (postqueue -f). */
  forgetDeadNexthops(): void;
  /** Closes the connections kept idle for reuse (stop). */
  closeIdle(): void;
}

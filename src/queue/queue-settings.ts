/*
 * queue-settings — the queue manager's settings, read from main.cf (postconf(5) names:
 * queue_directory, relayhost, transport_maps, *_backoff_time, queue_run_delay,
 * maximal_queue_lifetime, bounce_queue_lifetime, delay_warning_time, bounce_size_limit,
 * defer_transports, parent_domain_matches_subdomains (for transport_maps),
 * default_destination_concurrency_limit, smtp_connection_cache_time_limit, smtp_tls_security_level, queue_minfree, …).
 *
 * Decides: each setting's unit (ms, bytes) and derived value (the EHLO name falls back
 * to the machine's host name; the free-space floor is max(queue_minfree, 1.5 ×
 * message_size_limit)); an smtp_tls_security_level mxscreen does not implement is a
 * fatal config error with file:line.
 * Leaves to others: parsing and defaults (config/), applying them (queue-manager.ts and,
 * for the delivery settings, the delivery agent).
 * Bugs: concurrency, active limit, command timeout and stop grace are fixed, not main.cf.
 */
import { hostname } from 'node:os';
import type { Config } from '../config/value.js';
import { ConfigError } from '../errors.js';
import { TLS_LEVELS, type DeliverySettings, type TlsLevel } from '../delivery-request.js';

/** The queue manager's settings, with those it passes to the delivery agent (delivery-request.ts). */
export interface QueueSettings extends DeliverySettings {
  /** Absolute queue directory (queue_directory resolved against the config directory). */
  readonly directory: string;
  /** ms */
  readonly maximalBackoffTime: number;
  /** ms between queue runs. */
  readonly queueRunDelay: number;
  /** ms after arrival at which undelivered recipients bounce. */
  readonly maximalQueueLifetime: number;
  /** The same for mail from the null sender (bounces), ms; they are dropped, never bounced. */
  readonly bounceQueueLifetime?: number;
  /** ms after arrival at which the sender gets one delay notice; 0 = never. */
  readonly delayWarningTime?: number;
  /** Largest message returned whole in a bounce, bytes. */
  readonly bounceSizeLimit?: number;
  /** Free-space floor of the queue file system, bytes (max(queue_minfree, 1.5 × message_size_limit)). */
  readonly minimumFree?: number;
  /** Messages delivered at once. */
  readonly concurrency: number;
  /** Messages held in active/ at once (Postfix qmgr_message_active_limit). */
  readonly activeLimit: number;
  /** On stop(), how long in-flight deliveries may finish before they are abandoned, ms. */
  readonly stopGrace: number;
}

/**
 * Queue settings from main.cf (postconf(5) names). Relative queue_directory: the config
 * directory. Throws ConfigError (file:line) for an smtp_tls_security_level mxscreen does
 * not implement (dane, verify, secure…).
 */
export function queueSettingsFromConfig(config: Config): QueueSettings {
  const level = config.get('smtp_tls_security_level').trim().toLowerCase() || 'none';
  if (!(TLS_LEVELS as readonly string[]).includes(level)) {
    const where = /^(.*):(\d+)$/.exec(config.where('smtp_tls_security_level'));
    const message = `smtp_tls_security_level: "${level}" is not implemented; use none, may or encrypt`;
    throw new ConfigError([{ file: where?.[1] ?? config.file, line: where ? Number(where[2]) : 0, message }]);
  }
  const parents = config.get('parent_domain_matches_subdomains').map((name) => name.toLowerCase());
  return {
    directory: config.resolvePath(config.get('queue_directory')),
    transportMaps: config.get('transport_maps'),
    relayhost: config.get('relayhost'),
    transportMapsMatchSubdomains: parents.includes('transport_maps'),
    myhostname: config.get('myhostname') || hostname(),
    minimalBackoffTime: config.get('minimal_backoff_time'),
    maximalBackoffTime: config.get('maximal_backoff_time'),
    queueRunDelay: config.get('queue_run_delay'),
    maximalQueueLifetime: config.get('maximal_queue_lifetime'),
    bounceQueueLifetime: config.get('bounce_queue_lifetime'),
    delayWarningTime: config.get('delay_warning_time'),
    bounceSizeLimit: config.get('bounce_size_limit'),
    deferTransports: config.get('defer_transports').map((name) => name.toLowerCase()),
    destinationConcurrencyLimit: config.get('default_destination_concurrency_limit'),
    connectionCacheTime: config.get('smtp_connection_cache_time_limit'),
    tlsLevel: level as TlsLevel,
    minimumFree: Math.max(config.get('queue_minfree'), Math.floor(1.5 * config.get('message_size_limit'))),
    connectTimeout: config.get('smtp_connect_timeout'),
    commandTimeout: 300_000,
    concurrency: 100,
    activeLimit: 1000,
    stopGrace: 10_000,
  };
}

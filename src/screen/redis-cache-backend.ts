/*
 * redis-cache-backend — the shared verdict cache's store on Redis, through node-redis.
 *
 * Decides: one client per screen stage, connected in the background (start-up never waits
 * for Redis; until it is ready the stage screens with its near cache alone); commands are
 * refused at once while not ready (disableOfflineQueue: nothing queues up while Redis is
 * away) and beyond COMMAND_QUEUE_LIMIT; each command gives up after COMMAND_TIMEOUT_MS;
 * reconnects back off from 100 ms, doubling to 5 s, with ±20 % jitter, for ever. The state
 * (up/down) is logged once per change (`CACHE BACKEND UP`, `CACHE BACKEND DOWN` with the
 * reason) and exported as mxscreen_verdict_cache_backend_up; each connection error counts
 * in mxscreen_verdict_cache_backend_errors_total{reason="connection"}. Every 'error' event is
 * handled, so a Redis failure never crashes the process. Logs name the server as
 * redis://host:port/db: never the user or password, which are also scrubbed from error texts.
 * Leaves to others: what is stored (shared-verdict-cache.ts), the settings (cache-map.ts).
 * Bugs: a server that accepts and then never answers is only seen through read deadlines
 * and command timeouts (it stays "up" while its socket is open).
 */
import { createClient } from 'redis';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { redactedUrl, type RedisCacheSettings } from './cache-map.js';
import type { CacheBackend } from './shared-verdict-cache.js';

/** node-redis commandsQueueMaxLength: commands written or waiting for a reply. */
const COMMAND_QUEUE_LIMIT = 1_000;
/** A command's own limit, ms, so an unanswered one does not stay queued (reads have their tighter deadline above it). */
const COMMAND_TIMEOUT_MS = 2_000;
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/** The delay before reconnect attempt `retries` (0-based), ms: doubling from RECONNECT_FIRST_MS to RECONNECT_MAX_MS, ±20 %. */
export function reconnectDelayMs(retries: number, random: () => number = Math.random): number {
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** Math.min(retries, 16));
  return Math.round(base * (0.8 + 0.4 * random()));
}

type State = 'starting' | 'up' | 'down' | 'stopped';

export class RedisCacheBackend implements CacheBackend {
  readonly #client: ReturnType<typeof createClient>;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #server: string;
  readonly #secrets: readonly string[];
  #state: State = 'starting';

  constructor(settings: RedisCacheSettings, deps: { readonly log: Logger; readonly metrics: Metrics }) {
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#server = redactedUrl(settings.url);
    const parsed = new URL(settings.url);
    this.#secrets = [parsed.password, decodeURIComponent(parsed.password), parsed.username, decodeURIComponent(parsed.username)].filter((secret) => secret.length > 0);
    this.#metrics.exportVerdictCacheBackend();
    this.#metrics.verdictCacheBackendUp.set(0);
    this.#client = createClient({
      url: settings.url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: COMMAND_QUEUE_LIMIT,
      commandOptions: { timeout: Math.max(COMMAND_TIMEOUT_MS, settings.timeoutMs * 2) },
      disableClientInfo: true,
      maintNotifications: 'disabled',
      socket: {
        connectTimeout: settings.connectTimeoutMs,
        noDelay: true,
        reconnectStrategy: (retries) => reconnectDelayMs(retries),
      },
    });
    this.#client.on('error', (error: unknown) => {
      this.#metrics.verdictCacheBackendErrors.inc({ reason: 'connection' });
      this.#down(error);
    });
    this.#client.on('ready', () => this.#up());
    this.#client.on('end', () => this.#down('connection closed'));
    this.#client.on('reconnecting', () => this.#down('reconnecting'));
    // connect() settles only once the first attempt succeeds (or the client is stopped); errors come as events.
    this.#client.connect().catch(() => undefined);
  }

  get up(): boolean {
    return this.#state === 'up' && this.#client.isReady;
  }

  get(key: string): Promise<string | null> {
    return this.#client.get(key);
  }

  set(key: string, value: string, expireAtMs: number): Promise<unknown> {
    return this.#client.set(key, value, { expiration: { type: 'PXAT', value: Math.ceil(expireAtMs) } });
  }

  delete(key: string): Promise<unknown> {
    return this.#client.del(key);
  }

  /** Closes the connection and stops reconnecting; resolves at once (nothing is waited for). */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#metrics.verdictCacheBackendUp.set(0);
    try {
      this.#client.destroy();
    } catch {
      // already closed
    }
  }

  #up(): void {
    if (this.#state === 'up' || this.#state === 'stopped') return;
    this.#state = 'up';
    this.#metrics.verdictCacheBackendUp.set(1);
    this.#log.info({ event: 'CACHE BACKEND UP', server: this.#server }, `verdict cache store ${this.#server} is up`);
  }

  #down(cause: unknown): void {
    if (this.#state === 'down' || this.#state === 'stopped') return;
    this.#state = 'down';
    this.#metrics.verdictCacheBackendUp.set(0);
    const reason = this.#scrub(cause instanceof Error ? cause.message || cause.name : String(cause));
    this.#log.warn({ event: 'CACHE BACKEND DOWN', server: this.#server, reason }, `verdict cache store ${this.#server} is down (${reason}); screening with the local cache`);
  }

  /** `text` with the url's user and password replaced by `***`. */
  #scrub(text: string): string {
    let scrubbed = text;
    for (const secret of this.#secrets) scrubbed = scrubbed.split(secret).join('***');
    return scrubbed;
  }
}

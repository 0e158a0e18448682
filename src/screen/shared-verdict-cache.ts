/*
 * shared-verdict-cache — the verdict cache shared by mx1/mx2 (postscreen(8) "Sharing the
 * temporary allowlist"): a store both hosts reach (Redis), with the in-process
 * LruVerdictCache in front of it as the near cache.
 *
 * Decides: a lookup answers from the near cache when its record makes every needed test
 * valid (a near PASS is used as is: most hits stay local, no round trip); otherwise — no
 * near record, or one that lacks a needed test or has it expired (the other host may have
 * passed the client since) — it asks the store, unless the store is down or
 * MAX_PENDING commands are already unanswered, in which case the near record stands at
 * once. The store's answer is checked (cache-record-codec.ts), merged into the near record
 * (per test the later expiry) and kept there; an answer that misses the read deadline, an
 * error or a bad value is the near record alone (a cache miss: the tests run), and a late
 * answer still fills the near cache for the next connection. A write goes to the near
 * cache, then to the store without waiting (never delays a reply), the key expiring at the
 * record's latest expiry plus postscreen_cache_retention_time (SET … PXAT; DEL when none is left).
 * Leaves to others: the store's client, its reconnects and state (redis-cache-backend.ts),
 * when to read and write (screener.ts, deep-tests.ts).
 * Bugs: last writer wins: a write from a host whose read missed overwrites the other
 * host's record (the client is tested again at worst); a near PASS is trusted until its
 * tests expire, even after the record was deleted from the store.
 */
import type { Clock } from '../clock.js';
import type { Metrics } from '../ops/metrics.js';
import { cacheKey } from './cache-map.js';
import { decodeCacheRecord, encodeCacheRecord } from './cache-record-codec.js';
import { CACHED_TESTS, lastExpiry, testValid, type CacheRecord, type CachedTest, type LruVerdictCache, type VerdictCache } from './verdict-cache.js';

/** A key-value store both hosts reach; every method may reject, none must be awaited for long. */
export interface CacheBackend {
  /** True while connected and ready for commands. */
  readonly up: boolean;
  /** The value at `key`, or null when there is none. */
  get(key: string): Promise<string | null>;
  /** Stores `value` at `key`, expiring at `expireAtMs` (ms since the epoch). */
  set(key: string, value: string, expireAtMs: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  /** Closes the connection; pending commands fail. */
  stop(): Promise<void>;
}

/** Commands sent and not yet answered beyond which the store is not asked (a hung store must not pile them up). */
export const MAX_PENDING = 256;

export interface SharedVerdictCacheOptions {
  readonly near: LruVerdictCache;
  readonly backend: CacheBackend;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** key_format of the cache map (cache-map.ts). */
  readonly keyFormat: string;
  /** The read deadline, ms (the cache map's `timeout`). */
  readonly timeoutMs: number;
  /** postscreen_cache_retention_time, ms. */
  readonly retentionMs: number;
  /** The longest any test can stay valid, ms (the largest configured TTL): a stored expiry beyond now + this is forged. */
  readonly maxLifetimeMs: () => number;
}

export class SharedVerdictCache implements VerdictCache {
  readonly #options: SharedVerdictCacheOptions;
  #pending = 0;

  constructor(options: SharedVerdictCacheOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#options.near.size;
  }

  /** Commands sent to the store and not answered yet (for tests). */
  get pending(): number {
    return this.#pending;
  }

  get(ip: string): CacheRecord | undefined {
    return this.#options.near.get(ip);
  }

  lookup(ip: string, needed: readonly CachedTest[]): CacheRecord | undefined | Promise<CacheRecord | undefined> {
    const { near, backend, clock, metrics, timeoutMs } = this.#options;
    const local = near.get(ip);
    const now = clock.now();
    if (local !== undefined && needed.every((test) => testValid(local, test, now))) return local;
    if (!backend.up || this.#pending >= MAX_PENDING) return local;
    return new Promise((resolve) => {
      let answered = false;
      const answer = () => {
        if (answered) return;
        answered = true;
        timer.cancel();
        resolve(near.get(ip));
      };
      const timer = clock.setTimer(timeoutMs, () => {
        if (answered) return;
        metrics.verdictCacheBackendErrors.inc({ reason: 'timeout' });
        answer();
      });
      this.#track(backend.get(cacheKey(this.#options.keyFormat, ip))).then(
        (text) => {
          this.#absorb(ip, text);
          answer();
        },
        () => {
          metrics.verdictCacheBackendErrors.inc({ reason: 'read' });
          answer();
        },
      );
    });
  }

  set(ip: string, record: CacheRecord): void {
    const { near, backend, clock, metrics, retentionMs, keyFormat } = this.#options;
    near.set(ip, record);
    if (!backend.up || this.#pending >= MAX_PENDING) return;
    const key = cacheKey(keyFormat, ip);
    const expireAtMs = lastExpiry(record) + retentionMs;
    const write = expireAtMs > clock.now() ? backend.set(key, encodeCacheRecord(record), expireAtMs) : backend.delete(key);
    this.#track(write).catch(() => metrics.verdictCacheBackendErrors.inc({ reason: 'write' }));
  }

  /** Closes the store's connection (screen-stage stop). */
  stop(): Promise<void> {
    return this.#options.backend.stop();
  }

  /** Counts `command` as pending until it settles. */
  #track<T>(command: Promise<T>): Promise<T> {
    this.#pending++;
    return command.finally(() => {
      this.#pending--;
    });
  }

  /** Merges the store's value `text` for `ip` into the near record (per test the later expiry); a bad value is counted and ignored. */
  #absorb(ip: string, text: string | null): void {
    if (text === null) return;
    const { near, clock, metrics } = this.#options;
    const remote = decodeCacheRecord(text, clock.now(), this.#options.maxLifetimeMs());
    if (remote === undefined) {
      metrics.verdictCacheBackendErrors.inc({ reason: 'value' });
      return;
    }
    const local = near.get(ip);
    const merged: { [T in CachedTest]?: number } = {};
    for (const test of CACHED_TESTS) {
      const expiry = Math.max(local?.[test] ?? 0, remote[test] ?? 0);
      if (expiry > 0) merged[test] = expiry;
    }
    near.set(ip, merged);
  }
}

/*
 * verdict-cache — postscreen's temporary allowlist: which tests a client passed, until when.
 *
 * Decides: a record per client IP with one expiry per cached test (postscreen(8)
 * postscreen_cache_map): pregreet, dnsbl (answer TTL clamped to min/max TTL) and the
 * deep tests (pipelining, non_smtp_command, bare_newline, each its `_ttl`). Only passed
 * tests are stored. A record is kept postscreen_cache_retention_time after its last test
 * expired, so a returning client whose tests are re-run logs PASS OLD, not PASS NEW.
 * `VerdictCache` is an interface so that a store shared by several processes or by
 * mx1/mx2 (README "Design", More than one core) can implement it (shared-verdict-cache.ts:
 * its lookup may answer with a promise, bounded by a read deadline); `LruVerdictCache` is the
 * in-process one, bounded by entries (mxscreen_verdict_cache_size), on the injected Clock:
 * a record past its retention is removed when it is looked up, or by the cleanup
 * (postscreen_cache_cleanup_interval), which works in slices between event-loop turns so
 * it never blocks it.
 * Leaves to others: when to read and write (screener.ts, deep-tests.ts).
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';

/** The tests whose passes are cached, in postscreen's order (early tests, then the deep ones). */
export const CACHED_TESTS = ['pregreet', 'dnsbl', 'pipelining', 'non_smtp_command', 'bare_newline'] as const;
export type CachedTest = (typeof CACHED_TESTS)[number];

/** Expiry per passed test, ms since the epoch; a missing test was never passed. */
export type CacheRecord = Readonly<Partial<Record<CachedTest, number>>>;

export interface VerdictCache {
  /** The record of client `ip` (normalised: IPv4-mapped IPv6 as IPv4) held in this process, if any; never waits. */
  get(ip: string): CacheRecord | undefined;
  /**
   * The record of `ip` for the decision at connect: the in-process one when every test of
   * `needed` is valid in it; else a shared store may be asked (shared-verdict-cache.ts), and
   * the answer is then a promise that resolves within the store's read deadline and never rejects.
   */
  lookup(ip: string, needed: readonly CachedTest[]): CacheRecord | undefined | Promise<CacheRecord | undefined>;
  /** Stores `record` for `ip`, replacing the previous one. */
  set(ip: string, record: CacheRecord): void;
  /** Records held: expired ones within their retention time included, and ones past it until a lookup or cleanup removes them. */
  readonly size: number;
}

/** True when `record` says `test` is still valid at `now` (ms). */
export function testValid(record: CacheRecord | undefined, test: CachedTest, now: number): boolean {
  const expires = record?.[test];
  return expires !== undefined && expires > now;
}

/**
 * How long a DNSBL pass stays valid, ms: `ttlSeconds` clamped to minMs..maxMs, or minMs
 * when undefined (postscreen(8) psc_dnsbl_retrieve: "a value < 0 means no reply TTL").
 */
export function dnsblLifetimeMs(ttlSeconds: number | undefined, minMs: number, maxMs: number): number {
  const ttlMs = ttlSeconds === undefined ? minMs : ttlSeconds * 1000;
  return Math.min(Math.max(ttlMs, minMs), maxMs);
}

/** The latest expiry in `record`, ms (0 when it holds none). */
export function lastExpiry(record: CacheRecord): number {
  return Math.max(0, ...CACHED_TESTS.map((test) => record[test] ?? 0));
}

/** Records removed and kept by one cleanup run. */
export interface CacheCleanup {
  readonly removed: number;
  readonly kept: number;
}

/** Records looked at per slice of a cleanup; the rest waits for the next event-loop turn. */
const CLEANUP_SLICE = 2_000;

/** An in-process VerdictCache: least recently used records go first beyond `maxEntries`. */
export class LruVerdictCache implements VerdictCache {
  private readonly clock: Clock;
  private readonly retentionMs: number;
  private readonly records: LRUCache<string, CacheRecord>;

  /**
   * `maxEntries` ≥ 1 (mxscreen_verdict_cache_size); `retentionMs`
   * (postscreen_cache_retention_time, default 0): how long a record outlives its last expiry.
   */
  constructor(options: { maxEntries: number; clock: Clock; retentionMs?: number }) {
    this.clock = options.clock;
    this.retentionMs = Math.max(0, options.retentionMs ?? 0);
    // No lru-cache TTL: whether a record is past its retention is decided here alone (stale()),
    // so that cleanup() sees every record (lru-cache's keys() skips the entries it deems stale).
    this.records = new LRUCache<string, CacheRecord>({ max: Math.max(1, options.maxEntries) });
  }

  /** True when `record` is past its last expiry plus the retention time at `now`. */
  private stale(record: CacheRecord, now: number): boolean {
    return lastExpiry(record) + this.retentionMs <= now;
  }

  lookup(ip: string): CacheRecord | undefined {
    return this.get(ip);
  }

  get(ip: string): CacheRecord | undefined {
    const record = this.records.get(ip);
    if (record !== undefined && this.stale(record, this.clock.now())) {
      this.records.delete(ip);
      return undefined;
    }
    return record;
  }

  set(ip: string, record: CacheRecord): void {
    const now = this.clock.now();
    if (this.stale(record, now)) {
      this.records.delete(ip);
      return;
    }
    this.records.set(ip, record);
  }

  /** Number of records held (for tests and the mxscreen_screen_cache_entries gauge). */
  get size(): number {
    return this.records.size;
  }

  /**
   * Removes every record past its retention time (postscreen_cache_cleanup_interval),
   * CLEANUP_SLICE records per event-loop turn (setImmediate between slices), so a large
   * cache never blocks other connections. Resolves with the counts; never rejects.
   */
  async cleanup(): Promise<CacheCleanup> {
    const keys = [...this.records.keys()];
    let removed = 0;
    for (let start = 0; start < keys.length; start += CLEANUP_SLICE) {
      if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const now = this.clock.now();
      for (const key of keys.slice(start, start + CLEANUP_SLICE)) {
        const record = this.records.peek(key);
        if (record !== undefined && this.stale(record, now)) {
          this.records.delete(key);
          removed++;
        }
      }
    }
    return { removed, kept: this.records.size };
  }
}

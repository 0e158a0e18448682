/*
 * verdict-cache — postscreen's temporary allowlist: which tests a client passed, until when.
 *
 * Decides: a record per client IP with one expiry time stamp per cached test
 * (postscreen(8) "postscreen_cache_map"): pregreet = pass time + postscreen_greet_ttl;
 * dnsbl = pass time + the answer TTL clamped to postscreen_dnsbl_min_ttl ..
 * postscreen_dnsbl_max_ttl (min_ttl when no answer carried a TTL). Only passed tests are
 * stored; failures never are. `VerdictCache` is an interface so that a store shared by
 * several processes or by mx1/mx2 (DESIGN.md "More than one core") can implement it;
 * `LruVerdictCache` is the in-process one, bounded by entries
 * (mxscreen_verdict_cache_size), on the injected Clock.
 * Leaves to others: when to read and write (screener.ts).
 * Bugs: an entry is forgotten when its last test expires (Postfix keeps it for
 * postscreen_cache_retention_time, so a re-tested client logs PASS OLD, not PASS NEW).
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';

/** The tests whose passes are cached, in postscreen's order. */
export const CACHED_TESTS = ['pregreet', 'dnsbl'] as const;
export type CachedTest = (typeof CACHED_TESTS)[number];

/** Expiry per passed test, ms since the epoch; a missing test was never passed. */
export type CacheRecord = Readonly<Partial<Record<CachedTest, number>>>;

export interface VerdictCache {
  /** The record of client `ip` (normalised: IPv4-mapped IPv6 as IPv4), if any. */
  get(ip: string): CacheRecord | undefined;
  /** Stores `record` for `ip`, replacing the previous one. */
  set(ip: string, record: CacheRecord): void;
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
function lastExpiry(record: CacheRecord): number {
  return Math.max(0, ...CACHED_TESTS.map((test) => record[test] ?? 0));
}

/** An in-process VerdictCache: least recently used records go first beyond `maxEntries`. */
export class LruVerdictCache implements VerdictCache {
  private readonly clock: Clock;
  private readonly records: LRUCache<string, CacheRecord>;

  /** `maxEntries` ≥ 1 (mxscreen_verdict_cache_size). */
  constructor(options: { maxEntries: number; clock: Clock }) {
    this.clock = options.clock;
    this.records = new LRUCache<string, CacheRecord>({
      max: Math.max(1, options.maxEntries),
      // Entries vanish when their last test expires; lru-cache reads time from our clock.
      ttl: 1,
      ttlAutopurge: false,
      ttlResolution: 0, // read our clock on every check; no timers of its own
      perf: { now: () => options.clock.now() },
    });
  }

  get(ip: string): CacheRecord | undefined {
    const record = this.records.get(ip);
    if (record !== undefined && lastExpiry(record) <= this.clock.now()) {
      this.records.delete(ip);
      return undefined;
    }
    return record;
  }

  set(ip: string, record: CacheRecord): void {
    const now = this.clock.now();
    const last = lastExpiry(record);
    if (last <= now) {
      this.records.delete(ip);
      return;
    }
    this.records.set(ip, record, { ttl: last - now });
  }

  /** Number of records held (for tests and metrics). */
  get size(): number {
    return this.records.size;
  }
}

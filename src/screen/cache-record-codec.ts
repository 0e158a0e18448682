/*
 * cache-record-codec — a verdict cache record as the text stored in a shared store (Redis).
 *
 * Decides: postscreen's own shape (postscreen(8) cache value `pregreet;dnsbl;pipelining;
 * non_smtp_command;bare_newline` expiry times), with mxscreen's unit: five decimal fields
 * joined by `;`, in CACHED_TESTS order, each the test's expiry in ms since the epoch or 0
 * when the test was never passed. Decoding trusts nothing: anyone who can write to the
 * store can write the value, so anything but exactly that shape (more or fewer fields,
 * signs, spaces, exponents, more than 15 digits, over 100 bytes) is no record, and so is an
 * expiry later than `now + maxLifetimeMs` (no configured TTL allows it: a forged "valid for
 * ever"). No record is a cache miss: the tests run; never a crash, never a PASS.
 * Leaves to others: the key and the key's TTL (redis-cache-backend.ts).
 * Bugs: not Postfix's own value (seconds there), so a Postfix postscreen cannot share it.
 */
import { CACHED_TESTS, type CacheRecord, type CachedTest } from './verdict-cache.js';

/** Longest value accepted, bytes: five 15-digit fields and their separators fit with room. */
const MAX_VALUE_LENGTH = 100;
const FIELD = /^(0|[1-9]\d{0,14})$/;

/** The stored text of `record`. */
export function encodeCacheRecord(record: CacheRecord): string {
  return CACHED_TESTS.map((test) => String(Math.max(0, Math.trunc(record[test] ?? 0)))).join(';');
}

/**
 * The record stored as `text`, or undefined when `text` is not exactly encodeCacheRecord's
 * shape or names an expiry after `now + maxLifetimeMs` (ms). A record with no passed test is undefined too.
 */
export function decodeCacheRecord(text: unknown, now: number, maxLifetimeMs: number): CacheRecord | undefined {
  if (typeof text !== 'string' || text.length > MAX_VALUE_LENGTH) return undefined;
  const fields = text.split(';');
  if (fields.length !== CACHED_TESTS.length) return undefined;
  const record: { [T in CachedTest]?: number } = {};
  for (let index = 0; index < CACHED_TESTS.length; index++) {
    const field = fields[index]!;
    if (!FIELD.test(field)) return undefined;
    const expiry = Number(field);
    if (!Number.isSafeInteger(expiry) || expiry > now + maxLifetimeMs) return undefined;
    if (expiry > 0) record[CACHED_TESTS[index]!] = expiry;
  }
  return Object.keys(record).length > 0 ? record : undefined;
}

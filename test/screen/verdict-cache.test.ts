import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock, Timer } from '../../src/clock.js';
import { dnsblLifetimeMs, LruVerdictCache, testValid } from '../../src/screen/verdict-cache.js';

/** A clock the test moves by hand. Timers are not needed by the cache. */
class ManualClock implements Clock {
  constructor(private time: number) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
  setTimer(): Timer {
    throw new Error('the verdict cache must not set timers');
  }
}

const MIN = 60_000;
const MAX = 3_600_000;
const lifetimes = [
  { name: 'answer TTL inside the bounds', input: 300, want: 300_000 },
  { name: 'answer TTL below postscreen_dnsbl_min_ttl', input: 5, want: MIN },
  { name: 'answer TTL above postscreen_dnsbl_max_ttl', input: 86_400, want: MAX },
  { name: 'no answer TTL: min_ttl', input: undefined, want: MIN },
  { name: 'zero TTL: min_ttl', input: 0, want: MIN },
] as const;
for (const { name, input, want } of lifetimes) {
  test(`dnsblLifetimeMs: ${name}`, () => {
    assert.equal(dnsblLifetimeMs(input, MIN, MAX), want);
  });
}

test('a record is read back with its per-test expiries', () => {
  const clock = new ManualClock(1_000_000);
  const cache = new LruVerdictCache({ maxEntries: 10, clock });
  cache.set('192.0.2.1', { pregreet: 1_000_000 + 86_400_000, dnsbl: 1_000_000 + 60_000 });
  assert.deepEqual(cache.get('192.0.2.1'), { pregreet: 87_400_000, dnsbl: 1_060_000 });
  assert.equal(cache.get('192.0.2.2'), undefined);
});

test('a test is valid until its expiry, per test', () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 10, clock });
  cache.set('192.0.2.1', { pregreet: 10_000, dnsbl: 2_000 });
  clock.advance(1_999);
  assert.equal(testValid(cache.get('192.0.2.1'), 'dnsbl', clock.now()), true);
  clock.advance(1);
  assert.equal(testValid(cache.get('192.0.2.1'), 'dnsbl', clock.now()), false);
  assert.equal(testValid(cache.get('192.0.2.1'), 'pregreet', clock.now()), true);
});

test('a record disappears once its last test expired (injected clock)', () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 10, clock });
  cache.set('192.0.2.1', { pregreet: 10_000, dnsbl: 2_000 });
  clock.advance(9_999);
  assert.notEqual(cache.get('192.0.2.1'), undefined);
  clock.advance(1);
  assert.equal(cache.get('192.0.2.1'), undefined);
});

test('a test never passed is not valid', () => {
  assert.equal(testValid({ pregreet: 10 }, 'dnsbl', 0), false);
  assert.equal(testValid(undefined, 'pregreet', 0), false);
});

test('a record with every expiry in the past is not stored', () => {
  const clock = new ManualClock(5_000);
  const cache = new LruVerdictCache({ maxEntries: 10, clock });
  cache.set('192.0.2.1', { pregreet: 5_000 });
  assert.equal(cache.get('192.0.2.1'), undefined);
  assert.equal(cache.size, 0);
});

test('the cache is bounded by entries: the least recently used goes first', () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 2, clock });
  cache.set('192.0.2.1', { pregreet: 60_000 });
  cache.set('192.0.2.2', { pregreet: 60_000 });
  cache.get('192.0.2.1');
  cache.set('192.0.2.3', { pregreet: 60_000 });
  assert.equal(cache.size, 2);
  assert.notEqual(cache.get('192.0.2.1'), undefined);
  assert.equal(cache.get('192.0.2.2'), undefined);
  assert.notEqual(cache.get('192.0.2.3'), undefined);
});

test('postscreen_cache_retention_time: an expired record is kept (tests invalid) until retention ends', () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 10, clock, retentionMs: 7_000 });
  cache.set('192.0.2.1', { pregreet: 1_000 });
  clock.advance(5_000);
  const record = cache.get('192.0.2.1');
  assert.notEqual(record, undefined, 'kept: a re-tested client logs PASS OLD');
  assert.equal(testValid(record, 'pregreet', clock.now()), false);
  clock.advance(3_000);
  assert.equal(cache.get('192.0.2.1'), undefined);
});

test('deep tests are cached with their own expiry', () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 10, clock });
  cache.set('192.0.2.1', { pipelining: 30_000, bare_newline: 10_000 });
  clock.advance(20_000);
  assert.equal(testValid(cache.get('192.0.2.1'), 'pipelining', clock.now()), true);
  assert.equal(testValid(cache.get('192.0.2.1'), 'bare_newline', clock.now()), false);
});

test('cleanup removes records past retention in slices, keeping the others', async () => {
  const clock = new ManualClock(0);
  const cache = new LruVerdictCache({ maxEntries: 20_000, clock, retentionMs: 1_000 });
  for (let i = 0; i < 10_000; i++) cache.set(`10.0.${i >> 8}.${i & 255}`, { pregreet: i % 2 === 0 ? 1_000 : 100_000 });
  clock.advance(5_000);
  const result = await cache.cleanup();
  assert.deepEqual(result, { removed: 5_000, kept: 5_000 });
  assert.equal(cache.size, 5_000);
});

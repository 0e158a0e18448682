// The shared verdict cache (shared-verdict-cache.ts) on an injected clock and a scripted
// store: near PASS is local; a near miss or a near record lacking a needed test asks the
// store; the read deadline, an error or a hostile value is the near record (a miss), never
// an error; writes go to both and never wait; a down or hung store is not asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../queue/manual-clock.js';
import { Metrics } from '../../src/ops/metrics.js';
import { LruVerdictCache, type CacheRecord } from '../../src/screen/verdict-cache.js';
import { MAX_PENDING, SharedVerdictCache, type CacheBackend } from '../../src/screen/shared-verdict-cache.js';
import { encodeCacheRecord } from '../../src/screen/cache-record-codec.js';

const DAY = 86_400_000;
const IP = '192.0.2.7';
const KEY = `postscreen:${IP}`;

/** A store whose answers the test gives by hand. */
class ScriptedBackend implements CacheBackend {
  up = true;
  readonly reads: { key: string; answer: (value: string | null) => void; fail: (error: Error) => void }[] = [];
  readonly writes: { key: string; value?: string; expireAtMs?: number; deleted?: true }[] = [];
  failWrites = false;
  stopped = false;
  get(key: string): Promise<string | null> {
    return new Promise((resolve, reject) => this.reads.push({ key, answer: resolve, fail: reject }));
  }
  set(key: string, value: string, expireAtMs: number): Promise<unknown> {
    this.writes.push({ key, value, expireAtMs });
    return this.failWrites ? Promise.reject(new Error('READONLY')) : Promise.resolve('OK');
  }
  delete(key: string): Promise<unknown> {
    this.writes.push({ key, deleted: true });
    return Promise.resolve(1);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

function setup() {
  const clock = new ManualClock();
  const metrics = new Metrics({ processMetrics: false });
  const near = new LruVerdictCache({ maxEntries: 100, clock, retentionMs: 7 * DAY });
  const backend = new ScriptedBackend();
  const cache = new SharedVerdictCache({ near, backend, clock, metrics, keyFormat: 'postscreen:%s', timeoutMs: 50, retentionMs: 7 * DAY, maxLifetimeMs: () => 30 * DAY });
  const errors = async (reason: string) => (await metrics.verdictCacheBackendErrors.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0;
  return { clock, metrics, near, backend, cache, errors };
}

test('a near record with every needed test valid answers at once; the store is not asked', () => {
  const { clock, near, backend, cache } = setup();
  near.set(IP, { pregreet: clock.now() + DAY, dnsbl: clock.now() + DAY });
  const found = cache.lookup(IP, ['pregreet', 'dnsbl']);
  assert.ok(!(found instanceof Promise));
  assert.deepEqual(found, { pregreet: clock.now() + DAY, dnsbl: clock.now() + DAY });
  assert.equal(backend.reads.length, 0);
});

test('a near miss asks the store; its record is merged into the near cache, so the next lookup is local', async () => {
  const { clock, backend, cache } = setup();
  const remote = { pregreet: clock.now() + DAY, dnsbl: clock.now() + 3_600_000 };
  const found = cache.lookup(IP, ['pregreet', 'dnsbl']);
  assert.ok(found instanceof Promise);
  assert.equal(backend.reads[0]!.key, KEY);
  backend.reads[0]!.answer(encodeCacheRecord(remote));
  assert.deepEqual(await found, remote);
  const again = cache.lookup(IP, ['pregreet', 'dnsbl']);
  assert.ok(!(again instanceof Promise));
  assert.deepEqual(again, remote);
  assert.equal(backend.reads.length, 1);
});

test('a near record that lacks a needed test asks the store too (the other host may have passed it); per test the later expiry wins', async () => {
  const { clock, near, backend, cache } = setup();
  near.set(IP, { pregreet: clock.now() + 2 * DAY });
  const found = cache.lookup(IP, ['pregreet', 'dnsbl']);
  assert.ok(found instanceof Promise);
  backend.reads[0]!.answer(encodeCacheRecord({ pregreet: clock.now() + DAY, dnsbl: clock.now() + DAY }));
  assert.deepEqual(await found, { pregreet: clock.now() + 2 * DAY, dnsbl: clock.now() + DAY });
});

test('a read that misses its deadline is the near record (a miss) and counts reason=timeout; its late answer still fills the near cache', { timeout: 5000 }, async () => {
  const { clock, backend, cache, errors } = setup();
  const found = cache.lookup(IP, ['pregreet']);
  assert.ok(found instanceof Promise);
  clock.advance(49);
  let settled = false;
  void found.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false, 'still waiting before the deadline');
  clock.advance(1);
  assert.equal(await found, undefined);
  assert.equal(await errors('timeout'), 1);
  backend.reads[0]!.answer(encodeCacheRecord({ pregreet: clock.now() + DAY }));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(cache.get(IP), { pregreet: clock.now() + DAY });
});

test('a failed read is a miss (reason=read), never a rejection', async () => {
  const { backend, cache, errors } = setup();
  const found = cache.lookup(IP, ['pregreet']);
  backend.reads[0]!.fail(new Error('LOADING Redis is loading the dataset in memory'));
  assert.equal(await found, undefined);
  assert.equal(await errors('read'), 1);
});

test('a hostile value is a miss (reason=value) and leaves the near record as it was', async () => {
  const { clock, near, backend, cache, errors } = setup();
  near.set(IP, { pregreet: clock.now() + DAY });
  const found = cache.lookup(IP, ['pregreet', 'dnsbl']);
  backend.reads[0]!.answer(`${clock.now() + DAY};${clock.now() + 10_000 * DAY};0;0;0`);
  assert.deepEqual(await found, { pregreet: clock.now() + DAY });
  assert.equal(await errors('value'), 1);
});

test('a store that is down is not asked: the near record answers at once', () => {
  const { backend, cache } = setup();
  backend.up = false;
  assert.equal(cache.lookup(IP, ['pregreet']), undefined);
  assert.equal(backend.reads.length, 0);
});

test(`at most ${MAX_PENDING} commands wait for a hung store; beyond that the near record answers at once`, { timeout: 5000 }, async () => {
  const { clock, backend, cache } = setup();
  const waiting = Array.from({ length: MAX_PENDING }, (_, index) => cache.lookup(`192.0.2.${index % 250}`, ['pregreet']));
  assert.ok(waiting.every((found) => found instanceof Promise));
  assert.equal(cache.pending, MAX_PENDING);
  assert.equal(cache.lookup(IP, ['pregreet']), undefined);
  cache.set(IP, { pregreet: clock.now() + DAY });
  assert.equal(backend.writes.length, 0, 'no write queued behind them either');
  clock.advance(50);
  await Promise.all(waiting);
});

test('a write goes to the near cache and to the store, expiring at the latest expiry plus the retention time', async () => {
  const { clock, backend, cache } = setup();
  const record: CacheRecord = { pregreet: clock.now() + DAY, dnsbl: clock.now() + 3_600_000 };
  cache.set(IP, record);
  assert.deepEqual(cache.get(IP), record);
  assert.deepEqual(backend.writes, [{ key: KEY, value: encodeCacheRecord(record), expireAtMs: clock.now() + DAY + 7 * DAY }]);
});

test('a record past its retention is deleted from the store', () => {
  const { clock, backend, cache } = setup();
  cache.set(IP, { pregreet: clock.now() - 8 * DAY });
  assert.deepEqual(backend.writes, [{ key: KEY, deleted: true }]);
});

test('a failed write is counted (reason=write) and never thrown', async () => {
  const { clock, backend, cache, errors } = setup();
  backend.failWrites = true;
  cache.set(IP, { pregreet: clock.now() + DAY });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(await errors('write'), 1);
  assert.deepEqual(cache.get(IP), { pregreet: clock.now() + DAY });
});

test('stop closes the store', async () => {
  const { backend, cache } = setup();
  await cache.stop();
  assert.equal(backend.stopped, true);
});

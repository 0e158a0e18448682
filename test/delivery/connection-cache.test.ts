import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionCache, type CachedConnection } from '../../src/delivery/connection-cache.js';
import { ManualClock } from '../queue/manual-clock.js';

class FakeConnection implements CachedConnection {
  open = true;
  closed = 0;
  #onClose: (() => void) | undefined;
  close(): void {
    this.open = false;
    this.closed += 1;
  }
  setOnClose(listener: () => void): void {
    this.#onClose = listener;
  }
  /** The server hangs up. */
  hangUp(): void {
    this.open = false;
    this.#onClose?.();
  }
}

test('connection cache: a released connection is reused for the same nexthop', async () => {
  const cache = new ConnectionCache<FakeConnection>({ clock: new ManualClock(), idleTime: 2000 });
  const first = await cache.acquire('[mx]:25', 20);
  assert.equal(first!.reuse, undefined);
  const connection = new FakeConnection();
  first!.release(connection);
  const second = await cache.acquire('[mx]:25', 20);
  assert.equal(second!.reuse, connection);
  assert.equal(cache.connections('[mx]:25'), 1);
});

test('connection cache: another nexthop never gets the connection', async () => {
  const cache = new ConnectionCache<FakeConnection>({ clock: new ManualClock(), idleTime: 2000 });
  (await cache.acquire('[a]:25', 20))!.release(new FakeConnection());
  assert.equal((await cache.acquire('[b]:25', 20))!.reuse, undefined);
});

test('connection cache: default_destination_concurrency_limit bounds connections per nexthop', async () => {
  const cache = new ConnectionCache<FakeConnection>({ clock: new ManualClock(), idleTime: 2000 });
  const a = await cache.acquire('[mx]:25', 2);
  await cache.acquire('[mx]:25', 2);
  let third = false;
  const waiting = cache.acquire('[mx]:25', 2).then((lease) => {
    third = true;
    return lease;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(third, false, 'the third waits');
  assert.equal(cache.connections('[mx]:25'), 2);
  a!.release(); // no connection to keep: the slot frees
  assert.equal((await waiting)!.reuse, undefined);
  assert.equal(cache.connections('[mx]:25'), 2);
});

test('connection cache: an idle connection is closed after smtp_connection_cache_time_limit', async () => {
  const clock = new ManualClock();
  const cache = new ConnectionCache<FakeConnection>({ clock, idleTime: 2000 });
  const connection = new FakeConnection();
  (await cache.acquire('[mx]:25', 20))!.release(connection);
  clock.advance(1999);
  assert.equal(connection.closed, 0);
  clock.advance(1);
  assert.equal(connection.closed, 1);
  assert.equal(cache.connections('[mx]:25'), 0);
});

test('connection cache: a connection the server closes while idle is not reused', async () => {
  const cache = new ConnectionCache<FakeConnection>({ clock: new ManualClock(), idleTime: 2000 });
  const connection = new FakeConnection();
  (await cache.acquire('[mx]:25', 20))!.release(connection);
  connection.hangUp();
  assert.equal(cache.idle('[mx]:25'), 0);
  assert.equal((await cache.acquire('[mx]:25', 20))!.reuse, undefined);
});

test('connection cache: a waiting delivery gives up when aborted', async () => {
  const cache = new ConnectionCache<FakeConnection>({ clock: new ManualClock(), idleTime: 2000 });
  await cache.acquire('[mx]:25', 1);
  const abort = new AbortController();
  const waiting = cache.acquire('[mx]:25', 1, abort.signal);
  abort.abort();
  assert.equal(await waiting, undefined);
});

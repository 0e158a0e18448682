// postscreen_cache_cleanup_interval through a running mxscreen (main.ts schedules the
// cleanup) on an injected clock: a non-zero interval removes, at each interval, the
// verdict cache records past postscreen_cache_retention_time and keeps the others; 0
// disables the cleanup, so expired records stay. What the test sees is the record count,
// the gauge mxscreen_screen_cache_entries. Time moves only by ManualClock.advance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { startMxscreen } from '../../src/main.js';
import { LruVerdictCache } from '../../src/screen/verdict-cache.js';
import { withDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { connectClient } from '../fakes/scripted-client.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { ManualClock } from '../queue/manual-clock.js';
import { EVENT_BOUND_MS, until } from './manual-screen.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const GREET_WAIT_MS = 6 * SECOND;
const GREET_TTL_MS = MINUTE;
const RETENTION_MS = 10 * MINUTE;

/** mxscreen on `cleanupInterval`, one client screened (PASS NEW) at the start; `run` moves time. */
async function withScreenedClient(dns: FakeDns, directory: string, cleanupInterval: string, run: (world: { clock: ManualClock; entries: () => Promise<number | undefined>; passedAt: number }) => Promise<void>): Promise<void> {
  const configFile = join(directory, 'main.cf');
  writeFileSync(
    configFile,
    [
      'myhostname = mx1.example.net',
      'mxscreen_listen = 127.0.0.1:0',
      'mxscreen_workers = 1', // the manual clock reaches this process only
      'mxscreen_metrics_listen =',
      `mxscreen_dns_servers = ${dns.server}`,
      'mynetworks = 127.0.0.1/32',
      'queue_directory = queue',
      'queue_run_delay = 1h',
      'mxscreen_shutdown_timeout = 1s',
      'postscreen_greet_wait = 6s',
      'postscreen_greet_ttl = 1m',
      'postscreen_cache_retention_time = 10m',
      `postscreen_cache_cleanup_interval = ${cleanupInterval}`,
      '',
    ].join('\n'),
  );
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const mx = await startMxscreen({
    configFile,
    clock,
    resolver: createNodeResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 }),
    logDestination: { write: () => undefined },
    tableCheckIntervalMs: 24 * 3600 * SECOND,
    processMetrics: false,
  });
  const entries = async () => (await mx.metrics.cacheEntries.get()).values[0]?.value;
  try {
    const client = await connectClient({ port: mx.smtp[0]!.port, localAddress: '127.0.97.1' });
    try {
      assert.match(await client.readLine(EVENT_BOUND_MS), /^220-mx1\.example\.net ESMTP/);
      clock.advance(GREET_WAIT_MS);
      assert.match(await client.readLine(EVENT_BOUND_MS), /^220 mx1\.example\.net ESMTP/);
    } finally {
      await client.close();
    }
    assert.equal(await entries(), 1, 'PASS NEW is cached');
    await run({ clock, entries, passedAt: clock.now() });
  } finally {
    await mx.stop();
  }
}

/** Advances `clock` to `at`, then lets a cleanup that came due finish (it resolves in microtasks). */
async function advanceTo(clock: ManualClock, at: number): Promise<void> {
  clock.advance(at - clock.now());
  await new Promise((resolve) => setImmediate(resolve));
}

test('postscreen_cache_cleanup_interval = 5m: at each interval, a record is kept until postscreen_cache_retention_time after its last test expired, then removed', async () => {
  await withDnsServer((dns) =>
    withScreenedClient(dns, temporaryDirectory('mxscreen-cleanup-'), '5m', async ({ clock, entries, passedAt }) => {
      const start = passedAt - GREET_WAIT_MS; // the cleanup schedule starts with mxscreen
      const removable = passedAt + GREET_TTL_MS + RETENTION_MS; // 11 min 6 s after the start
      await advanceTo(clock, start + 5 * MINUTE);
      assert.equal(await entries(), 1, 'expired at 1 min 6 s, but within its retention time');
      await advanceTo(clock, start + 10 * MINUTE);
      assert.ok(start + 10 * MINUTE < removable);
      assert.equal(await entries(), 1, 'still within its retention time at the second cleanup');
      await advanceTo(clock, start + 15 * MINUTE - 1);
      assert.equal(await entries(), 1, 'past its retention time, but no cleanup between two intervals');
      clock.advance(1);
      await until(async () => (await entries()) === 0, 'the third cleanup to remove the record');
    }),
  );
});

test('postscreen_cache_cleanup_interval = 0 disables the cleanup: a record past its retention time stays', async () => {
  await withDnsServer((dns) =>
    withScreenedClient(dns, temporaryDirectory('mxscreen-cleanup-'), '0', async ({ clock, entries, passedAt }) => {
      for (let hour = 1; hour <= 13; hour++) await advanceTo(clock, passedAt + hour * 60 * MINUTE);
      assert.equal(await entries(), 1, 'no cleanup ran in 13 hours (the default interval is 12h)');
    }),
  );
});

test('cleanup() removes a record past its retention time on a clock that reads like the real one (not 0 at the start)', async () => {
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const cache = new LruVerdictCache({ maxEntries: 10, clock, retentionMs: RETENTION_MS });
  cache.set('192.0.2.1', { pregreet: clock.now() + GREET_TTL_MS });
  cache.set('192.0.2.2', { pregreet: clock.now() + 60 * MINUTE });
  clock.advance(GREET_TTL_MS + RETENTION_MS + SECOND);
  assert.deepEqual(await cache.cleanup(), { removed: 1, kept: 1 });
  assert.equal(cache.size, 1);
  assert.notEqual(cache.get('192.0.2.2'), undefined);
});

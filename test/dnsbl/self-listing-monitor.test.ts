// The self-listing monitor (src/dnsbl/self-listing-monitor.ts) on an injected clock, with
// the real dnsbl package against the in-process DNS server: a round at start and one per
// interval, the gauges, SELF LISTED / SELF DELISTED once per change, a site that cannot be
// checked keeping the last known value, and a reload. Time moves only by ManualClock.advance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Gauge } from 'prom-client';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { ManualClock } from '../queue/manual-clock.js';
import { captureLog, type LogCapture } from '../queue/log-capture.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SelfListingMonitor } from '../../src/dnsbl/self-listing-monitor.js';
import type { SelfListingSettings } from '../../src/dnsbl/self-listing-settings.js';

const INTERVAL_MS = 3_600_000;
const ZONE = 'bl.dnsbl.test';
const OURS = '192.0.2.25';

async function gauge<L extends string>(metric: Gauge<L>, labels: Readonly<Record<L, string>>): Promise<number | undefined> {
  const values = (await metric.get()).values;
  return values.find((v) => Object.entries(labels).every(([name, value]) => v.labels[name as L] === value))?.value;
}

interface World {
  readonly dns: FakeDns;
  readonly clock: ManualClock;
  readonly capture: LogCapture;
  readonly metrics: Metrics;
  readonly monitor: SelfListingMonitor;
  settings(addresses: readonly string[], domains: readonly string[]): SelfListingSettings;
  close(): Promise<void>;
}

async function startWorld(addresses: readonly string[] = [OURS], domains: readonly string[] = [ZONE]): Promise<World> {
  const dns = await startDnsServer();
  for (const zone of [ZONE, 'other.dnsbl.test']) dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  const clock = new ManualClock();
  const capture = captureLog();
  const metrics = new Metrics();
  const settings = (a: readonly string[], d: readonly string[]): SelfListingSettings => ({
    addresses: a,
    sites: d.map((domain) => ({ domain, shown: domain })),
    intervalMs: INTERVAL_MS,
    servers: [dns.server],
    timeoutMs: 400,
  });
  const monitor = new SelfListingMonitor(settings(addresses, domains), { clock, log: capture.log, metrics });
  return {
    dns, clock, capture, metrics, monitor, settings,
    async close() {
      monitor.stop();
      await dns.close();
    },
  };
}

/** Moves the clock one interval on and waits for the round it starts. */
async function nextRound(world: World): Promise<void> {
  assert.deepEqual(world.clock.pending(), [INTERVAL_MS], 'the next round waits one interval');
  world.clock.advance(INTERVAL_MS);
  await world.monitor.settled();
}

test('listed at start, still listed, delisted, still delisted: mxscreen_self_listed{site,address} follows, SELF LISTED and SELF DELISTED once each', async () => {
  const world = await startWorld();
  const { dns, capture, metrics, monitor } = world;
  try {
    const listing = dns.listDnsbl(ZONE, OURS, ['127.0.0.2']);
    dns.setTxt(listing, ['Listed: https://bl.dnsbl.test/lookup']);
    monitor.start();
    await monitor.settled();
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: OURS }), 1, 'mxscreen_self_listed{site,address} = 1');
    assert.equal(await gauge(metrics.selfListingCheckSuccess, { site: ZONE }), 1, 'mxscreen_self_listing_check_success{site} = 1');
    const [listed, ...moreListed] = capture.events('SELF LISTED');
    assert.equal(moreListed.length, 0);
    assert.equal(listed?.['level'], 'warn');
    assert.equal(listed?.['msg'], `our address ${OURS} is listed by ${ZONE}: Listed: https://bl.dnsbl.test/lookup`);
    assert.equal(listed?.['address'], OURS);

    await nextRound(world);
    assert.equal(capture.events('SELF LISTED').length, 1, 'still listed: no new event');
    assert.equal(dns.queryCount(listing, 'A'), 4, 'asked again after the interval (each round: the batch, then the lookup of the TXT reason)');

    dns.listDnsbl(ZONE, OURS, []); // delisted: the name answers no A record
    await nextRound(world);
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: OURS }), 0);
    const delisted = capture.events('SELF DELISTED');
    assert.equal(delisted.length, 1);
    assert.equal(delisted[0]?.['msg'], `our address ${OURS} is no longer listed by ${ZONE}`);

    await nextRound(world);
    assert.equal(capture.events('SELF DELISTED').length, 1, 'once per change');
    assert.equal(capture.events('SELF LISTED').length, 1);
    assert.equal(capture.events('SELF LISTING CHECK').length, 0, 'a site that can be checked logs nothing');
  } finally {
    await world.close();
  }
});

test('a clean address: gauge 0 from the first round, no event', async () => {
  const world = await startWorld();
  try {
    world.monitor.start();
    await world.monitor.settled();
    assert.equal(await gauge(world.metrics.selfListed, { site: ZONE, address: OURS }), 0);
    assert.deepEqual(world.capture.lines.filter((line) => String(line['event']).startsWith('SELF')), []);
  } finally {
    await world.close();
  }
});

test('a site that starts answering 127.255.255.254 to everything: could not check keeps the listing at 1 (no SELF DELISTED), check_success 0 and one SELF LISTING CHECK warning; fixed, it logs once more', async () => {
  const world = await startWorld();
  const { dns, capture, metrics, monitor } = world;
  try {
    dns.listDnsbl(ZONE, OURS, ['127.0.0.2']);
    monitor.start();
    await monitor.settled();
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: OURS }), 1);

    dns.setZoneA(ZONE, ['127.255.255.254']);
    await nextRound(world);
    await nextRound(world);
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: OURS }), 1, 'the last known value stays');
    assert.equal(await gauge(metrics.selfListingCheckSuccess, { site: ZONE }), 0);
    assert.equal(capture.events('SELF DELISTED').length, 0, 'could not check is never delisted');
    const checks = capture.events('SELF LISTING CHECK');
    assert.equal(checks.length, 1, 'one warning per change, not per round');
    assert.equal(checks[0]?.['success'], false);
    assert.equal(checks[0]?.['msg'], `self-listing: could not check DNSBL site ${ZONE}: test point 127.0.0.1 is listed`);

    dns.clearZone(ZONE); // the resolver is accepted again: the listing is still there
    await nextRound(world);
    assert.equal(await gauge(metrics.selfListingCheckSuccess, { site: ZONE }), 1);
    const again = capture.events('SELF LISTING CHECK');
    assert.deepEqual(again.map((line) => [line['success'], line['level']]), [[false, 'warn'], [true, 'info']]);
    assert.equal(capture.events('SELF LISTED').length, 1, 'known listed all along: no second SELF LISTED');
  } finally {
    await world.close();
  }
});

test('a site that times out from the first round: no mxscreen_self_listed series, check_success 0, a SELF LISTING CHECK warning; when it answers again, an info line', async () => {
  const world = await startWorld([OURS], ['silent.dnsbl.test']);
  const { dns, capture, metrics, monitor } = world;
  try {
    dns.setZoneNoAnswer('silent.dnsbl.test');
    monitor.start();
    await monitor.settled();
    assert.equal(await gauge(metrics.selfListed, { site: 'silent.dnsbl.test', address: OURS }), undefined, 'nothing known yet: no series');
    assert.equal(await gauge(metrics.selfListingCheckSuccess, { site: 'silent.dnsbl.test' }), 0);
    assert.deepEqual(capture.events('SELF LISTING CHECK').map((line) => line['success']), [false]);
    await nextRound(world);
    assert.equal(capture.events('SELF LISTING CHECK').length, 1, 'still silent: no second warning');

    dns.clearZone('silent.dnsbl.test');
    dns.listDnsbl('silent.dnsbl.test', '127.0.0.2', ['127.0.0.2']);
    await nextRound(world);
    assert.deepEqual(capture.events('SELF LISTING CHECK').map((line) => line['success']), [false, true]);
    assert.equal(await gauge(metrics.selfListed, { site: 'silent.dnsbl.test', address: OURS }), 0, 'known now: not listed');
  } finally {
    await world.close();
  }
});

test('a reload that drops an address removes its series and checks the new set at once; one that changes only the interval re-arms the timer', async () => {
  const world = await startWorld([OURS, '192.0.2.26'], [ZONE]);
  const { metrics, monitor, clock, dns } = world;
  try {
    monitor.start();
    await monitor.settled();
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: '192.0.2.26' }), 0);
    monitor.setSettings(world.settings([OURS], [ZONE, 'other.dnsbl.test']));
    await monitor.settled();
    assert.equal(await gauge(metrics.selfListed, { site: ZONE, address: '192.0.2.26' }), undefined, 'series of a dropped address removed');
    assert.equal(await gauge(metrics.selfListed, { site: 'other.dnsbl.test', address: OURS }), 0, 'a new site is checked at once');
    assert.equal(dns.queryCount('25.2.0.192.other.dnsbl.test', 'A'), 1);
    monitor.setSettings({ ...world.settings([OURS], [ZONE, 'other.dnsbl.test']), intervalMs: 60_000 });
    await monitor.settled();
    assert.deepEqual(clock.pending(), [60_000], 'only the interval changed: no round, the timer re-armed');
    assert.equal(dns.queryCount('25.2.0.192.other.dnsbl.test', 'A'), 1);
    monitor.setSettings({ ...world.settings([], [ZONE]) });
    await monitor.settled();
    assert.deepEqual(clock.pending(), [], 'no address: off');
    assert.equal((await metrics.selfListingCheckSuccess.get()).values.length, 0, 'off: no mxscreen_self_listing_check_success{site} series');
  } finally {
    await world.close();
  }
});

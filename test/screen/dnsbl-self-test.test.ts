// The DNSBL self-test (RFC 5782 §5, dnsbl-health.ts) through the screener, on an injected
// clock: the early self-test that an error code in a client's answer asks for, its
// spacing, and the periodic self-test with a site that fails, stops counting, and counts
// again once it passes. Time moves only by ManualClock.advance; waits are for events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EARLY_TEST_SPACING_MS, SELF_TEST_INTERVAL_MS } from '../../src/screen/dnsbl-health.js';
import { reverseName } from '../../src/dns/reverse-name.js';
import { queryDnsbl } from '../../src/dnsbl/dnsbl-query.js';
import { EVENT_BOUND_MS, GREET_WAIT_MS, manualSettings, sites, startManualScreen, until, type ManualScreen } from './manual-screen.js';


async function healthGauge(screen: ManualScreen, site: string): Promise<number | undefined> {
  return (await screen.metrics.dnsblSiteHealthy.get()).values.find((v) => v.labels.site === site)?.value;
}

/** How many times the screen asked the RFC 5782 test point 127.0.0.2 of `zone`. */
function selfTests(screen: ManualScreen, zone: string): number {
  return screen.asked.filter((name) => name === `2.0.0.127.${zone}`).length;
}

test('an error code in a client answer runs a self-test at once (no clock tick): the failing site is switched off and a listed client is no longer refused by it', async () => {
  const zone = 'early1.dnsbl.test';
  const screen = await startManualScreen(manualSettings({ dnsblSites: sites(zone), dnsblAction: 'drop' }), { health: true });
  screen.dns.listDnsbl(zone, '127.0.0.2', ['127.255.255.254']); // the zone refuses us: every answer is an error code
  screen.dns.listDnsbl(zone, '127.0.91.1', ['127.255.255.254']);
  screen.dns.listDnsbl(zone, '127.0.91.2', ['127.0.0.2']);
  try {
    assert.equal(screen.health?.healthy(zone), true, 'healthy until a test says otherwise');
    assert.equal(await healthGauge(screen, zone), 1);
    const odd = await screen.connectTeased('127.0.91.1');
    await until(async () => (await screen.counter(screen.metrics.dnsblAnswers, { site: zone, result: 'refused_code' })) === 1, 'the refused_code answer');
    // The answer was counted after it asked for the early test: the test point is already asked.
    assert.equal(selfTests(screen, zone), 1, 'the error code asked for a self-test at once');
    const change = await screen.logLine((line) => line.event === 'DNSBL health', 'the health change');
    assert.equal(change.healthy, false);
    assert.equal(change.msg, `DNSBL site ${zone} fails its self-test: 127.0.0.2 answered error code 127.255.255.254; its answers do not count`);
    assert.equal(screen.health?.healthy(zone), false);
    assert.equal(await healthGauge(screen, zone), 0);
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal((await screen.handoffOf(odd)).verdict.outcome, 'pass-new', 'an error code is never a listing');

    const listed = await screen.connectTeased('127.0.91.2');
    assert.ok(!screen.asked.includes(reverseName('127.0.91.2', zone)), 'an unhealthy site is not asked');
    screen.clock.advance(GREET_WAIT_MS);
    const { verdict } = await screen.handoffOf(listed);
    assert.equal(verdict.outcome, 'pass-new', 'its listing does not count while it is unhealthy');
    assert.equal(verdict.dnsblRank, 0);
  } finally {
    await screen.close();
  }
});

test(`early self-tests asked by error codes are at most one per site per EARLY_TEST_SPACING_MS (${EARLY_TEST_SPACING_MS} ms), on the injected clock`, async () => {
  const zone = 'spacing2.dnsbl.test';
  const settings = manualSettings({ dnsblSites: sites(zone) });
  const screen = await startManualScreen(settings, { health: true });
  screen.dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']); // passes its self-test: stays healthy
  screen.dns.listDnsbl(zone, '127.0.91.3', ['127.255.255.252']);
  const health = screen.health!;
  const oddAnswer = () => queryDnsbl(settings.dnsblSites, '127.0.91.3', EVENT_BOUND_MS, { resolver: screen.resolver, clock: screen.clock, metrics: screen.metrics, health });
  try {
    assert.equal((await oddAnswer()).sites[0]?.result, 'refused_code');
    assert.equal(selfTests(screen, zone), 1, 'the first error code asks for a test');
    assert.deepEqual(await health.check(zone), { healthy: true }, 'check() while it runs waits for the same test');
    assert.equal(selfTests(screen, zone), 1);
    screen.clock.advance(EARLY_TEST_SPACING_MS - 1);
    await oddAnswer();
    assert.equal(selfTests(screen, zone), 1, 'no second test within the spacing');
    screen.clock.advance(1);
    await oddAnswer();
    assert.equal(selfTests(screen, zone), 2, 'the next error code after the spacing asks again');
    assert.deepEqual(await health.check(zone), { healthy: true });
    assert.equal(health.healthy(zone), true, 'odd client answers alone never switch a site off');
  } finally {
    await screen.close();
  }
});

test(`the periodic self-test every ${SELF_TEST_INTERVAL_MS} ms: a site that starts failing stops counting (gauge 0), and counts again (gauge 1) once it passes`, async () => {
  const zone = 'period3.dnsbl.test';
  const screen = await startManualScreen(manualSettings({ dnsblSites: sites(zone), dnsblAction: 'drop' }), { health: true });
  screen.dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  for (const client of ['127.0.91.4', '127.0.91.5', '127.0.91.6']) screen.dns.listDnsbl(zone, client, ['127.0.0.2']);
  const health = screen.health!;
  const startedAt = screen.clock.now();
  /** A listed client through the whole screen: refused by the site (521) or handed over. */
  const screenListed = async (address: string, answers: number): Promise<string> => {
    const client = await screen.connectTeased(address);
    if (answers > 0) await until(async () => (await screen.dnsblAnswers()) === answers, `DNSBL answer #${answers}`);
    screen.clock.advance(GREET_WAIT_MS);
    const reply = await client.readLine(EVENT_BOUND_MS);
    if (reply.startsWith('521 ')) await client.waitForEnd(EVENT_BOUND_MS);
    return reply;
  };
  try {
    health.start();
    assert.equal(selfTests(screen, zone), 1, 'start() tests every site at once');
    assert.deepEqual(await health.check(zone), { healthy: true });
    assert.equal(await screenListed('127.0.91.4', 1), `521 5.7.1 Service unavailable; client [127.0.91.4] blocked using ${zone}`);

    // The site starts refusing us; nothing changes until the next periodic test.
    screen.dns.listDnsbl(zone, '127.0.0.2', ['127.255.255.254']);
    screen.clock.advance(startedAt + SELF_TEST_INTERVAL_MS - 1 - screen.clock.now());
    assert.equal(selfTests(screen, zone), 1, 'no test before the interval');
    assert.equal(health.healthy(zone), true);
    screen.clock.advance(1);
    assert.equal(selfTests(screen, zone), 2, 'the periodic test at the interval');
    const failed = await screen.logLine((line) => line.event === 'DNSBL health' && line.healthy === false, 'the failure');
    assert.equal(failed.level, 'warn');
    assert.equal(await healthGauge(screen, zone), 0);
    assert.equal(await screenListed('127.0.91.5', 0), '220 mx.manual.test ESMTP policy', 'its listing does not count');
    assert.equal(screen.handoffs.at(-1)?.verdict.dnsblRank, 0);

    // The site is repaired; the next periodic test finds it healthy again.
    screen.dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
    screen.clock.advance(startedAt + 2 * SELF_TEST_INTERVAL_MS - 1 - screen.clock.now());
    assert.equal(selfTests(screen, zone), 2);
    assert.equal(health.healthy(zone), false, 'unhealthy until a test passes');
    screen.clock.advance(1);
    assert.equal(selfTests(screen, zone), 3);
    const passed = await screen.logLine((line) => line.event === 'DNSBL health' && line.healthy === true, 'the recovery');
    assert.equal(passed.msg, `DNSBL site ${zone} passes its self-test again; its answers count`);
    assert.equal(await healthGauge(screen, zone), 1);
    assert.equal(await screenListed('127.0.91.6', 2), `521 5.7.1 Service unavailable; client [127.0.91.6] blocked using ${zone}`, 'its listing counts again');
    assert.equal(screen.events('DNSBL health').length, 2, 'one line per change');

    health.stop();
    screen.clock.advance(SELF_TEST_INTERVAL_MS);
    assert.equal(selfTests(screen, zone), 3, 'stop() ends the schedule');
  } finally {
    await screen.close();
  }
});

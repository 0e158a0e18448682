import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { DnsblHealth, EARLY_TEST_SPACING_MS, selfTestSite } from '../../src/screen/dnsbl-health.js';
import { queryDnsbl } from '../../src/dnsbl/dnsbl-query.js';
import { parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { ManualClock } from '../queue/manual-clock.js';

let dns: FakeDns;
before(async () => {
  dns = await startDnsServer();
});
after(async () => {
  await dns.close();
});

function site(text: string): DnsblSite {
  const parsed = parseDnsblSite(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
}

function monitor(clock = new ManualClock(Date.now())) {
  const lines: { event?: string; msg?: string; healthy?: boolean }[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const metrics = new Metrics();
  const resolver = createNodeResolver({ servers: [dns.server], timeoutMs: 300, tries: 1 });
  const health = new DnsblHealth({ resolver, clock: systemClock, log, metrics, timeoutMs: 300 });
  return { health, lines, metrics, resolver, clock };
}

async function gauge(metrics: Metrics, name: string): Promise<number | undefined> {
  return (await metrics.dnsblSiteHealthy.get()).values.find((v) => v.labels.site === name)?.value;
}

const selfTests = [
  { name: 'a zone listing 127.0.0.2 and not 127.0.0.1 is healthy', zone: 'ok1.dnsbl.test', listed: ['127.0.0.2', '127.0.0.10'], allowlist: false, want: { healthy: true } },
  { name: 'Spamhaus refusing a public resolver (127.255.255.254) is unhealthy', zone: 'pub2.dnsbl.test', listed: ['127.255.255.254'], allowlist: false, want: { healthy: false, reason: '127.0.0.2 answered error code 127.255.255.254' } },
  { name: 'a DNSWL answering 127.0.0.255 is unhealthy', zone: 'wl3.dnswl.test', listed: ['127.0.0.255'], allowlist: true, want: { healthy: false, reason: '127.0.0.2 answered error code 127.0.0.255' } },
  { name: 'a zone that does not list 127.0.0.2 is unhealthy', zone: 'empty4.dnsbl.test', listed: [], allowlist: false, want: { healthy: false, reason: '127.0.0.2 is not listed' } },
] as const;
for (const { name, zone, listed, allowlist, want } of selfTests) {
  test(`selfTestSite: ${name}`, async () => {
    if (listed.length > 0) dns.listDnsbl(zone, '127.0.0.2', listed);
    const { resolver } = monitor();
    assert.deepEqual(await selfTestSite(zone, allowlist, { resolver, clock: systemClock, timeoutMs: 300 }), want);
  });
}

test('selfTestSite: a zone that lists 127.0.0.1 is unhealthy', async () => {
  dns.listDnsbl('all5.dnsbl.test', '127.0.0.2', ['127.0.0.2']);
  dns.listDnsbl('all5.dnsbl.test', '127.0.0.1', ['127.0.0.2']);
  const { resolver } = monitor();
  const result = await selfTestSite('all5.dnsbl.test', false, { resolver, clock: systemClock, timeoutMs: 300 });
  assert.equal(result.healthy, false);
});

test('an unhealthy site stops counting, is logged once and exported; it comes back by itself', async () => {
  const zone = 'flip6.dnsbl.test';
  dns.listDnsbl(zone, '127.0.0.2', ['127.255.255.254']);
  dns.listDnsbl(zone, '127.0.6.1', ['127.0.0.2']);
  const { health, lines, metrics, resolver } = monitor();
  health.setSites([site(`${zone}*3`)]);
  assert.equal(await gauge(metrics, zone), 1, 'healthy until tested');
  await health.checkAll();
  await health.checkAll();
  assert.equal(health.healthy(zone), false);
  assert.equal(await gauge(metrics, zone), 0);
  assert.equal(lines.filter((line) => line.event === 'DNSBL health').length, 1, 'logged once per change');
  const skipped = await queryDnsbl([site(`${zone}*3`)], '127.0.6.1', 300, { resolver, clock: systemClock, metrics, health });
  assert.equal(skipped.rank, 0);
  dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  await health.checkAll();
  assert.equal(health.healthy(zone), true);
  assert.equal(await gauge(metrics, zone), 1);
  assert.equal(lines.filter((line) => line.event === 'DNSBL health').length, 2);
  const counted = await queryDnsbl([site(`${zone}*3`)], '127.0.6.1', 300, { resolver, clock: systemClock, metrics, health });
  assert.equal(counted.rank, 3);
});

test('one error code in a client answer does not switch a site off; listed clients stay refused', async () => {
  const zone = 'odd7.dnsbl.test';
  dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  dns.listDnsbl(zone, '127.0.7.1', ['127.255.255.252']);
  dns.listDnsbl(zone, '127.0.7.2', ['127.0.0.2']);
  const { health, metrics, resolver } = monitor();
  health.setSites([site(zone)]);
  const odd = await queryDnsbl([site(zone)], '127.0.7.1', 300, { resolver, clock: systemClock, metrics, health });
  assert.equal(odd.sites[0]?.result, 'refused_code');
  await health.check(zone); // the early self-test the odd answer asked for
  assert.equal(health.healthy(zone), true);
  const listed = await queryDnsbl([site(zone)], '127.0.7.2', 300, { resolver, clock: systemClock, metrics, health });
  assert.equal(listed.rank, 1);
});

test('early self-tests asked by client answers are spaced EARLY_TEST_SPACING_MS apart', async () => {
  const zone = 'spaced8.dnsbl.test';
  dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  const clock = new ManualClock();
  const { resolver, metrics } = monitor();
  // Counts the self-test's lookups as they are made (suspect() starts a test synchronously).
  let lookups = 0;
  const counting = { ...resolver, resolve4: (name: string) => ((lookups += 1), resolver.resolve4(name)) };
  const health = new DnsblHealth({ resolver: counting, clock, log: createLogger({ level: 'silent' }), metrics, timeoutMs: 300 });
  health.setSites([site(zone)]);
  await health.check(zone);
  const afterFirst = lookups;
  assert.ok(afterFirst > 0);
  clock.advance(EARLY_TEST_SPACING_MS - 1);
  health.suspect(zone);
  assert.equal(lookups, afterFirst, `no second test within ${EARLY_TEST_SPACING_MS} ms`);
  clock.advance(1);
  health.suspect(zone);
  assert.ok(lookups > afterFirst, `a second test once ${EARLY_TEST_SPACING_MS} ms have passed`);
  await health.check(zone); // the running one: let it finish
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import type { DnsResolver } from '../../src/dns/resolver.js';
import { Metrics } from '../../src/ops/metrics.js';
import { parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';
import { queryDnsbl, startDnsblQuery, type DnsblDeps } from '../../src/dnsbl/dnsbl-query.js';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { ManualClock } from '../queue/manual-clock.js';

let dns: FakeDns;
let resolver: DnsResolver;
before(async () => {
  dns = await startDnsServer();
  resolver = createNodeResolver({ servers: [dns.server], timeoutMs: 300, tries: 1 });
});
after(async () => {
  await dns.close();
});

function sites(...texts: string[]): DnsblSite[] {
  return texts.map((text) => {
    const site = parseDnsblSite(text);
    if ('error' in site) throw new Error(site.error);
    return site;
  });
}

function deps(metrics = new Metrics()): DnsblDeps {
  return { resolver, clock: systemClock, metrics };
}

/** Value of mxscreen_dnsbl_answers_total{site,result}. */
async function queries(metrics: Metrics, site: string, result: string): Promise<number> {
  const { values } = await metrics.dnsblAnswers.get();
  return values.find((v) => v.labels.site === site && v.labels.result === result)?.value ?? 0;
}

test('rank is the sum of the weights of the listing sites', async () => {
  dns.listDnsbl('a1.dnsbl.test', '127.0.1.1', ['127.0.0.2']);
  dns.listDnsbl('b1.dnsbl.test', '127.0.1.1', ['127.0.0.2']);
  const score = await queryDnsbl(sites('a1.dnsbl.test*2', 'b1.dnsbl.test', 'c1.dnsbl.test*5'), '127.0.1.1', 500, deps());
  assert.equal(score.rank, 3);
  assert.deepEqual(
    score.sites.map((s) => [s.domain, s.result, s.weight]),
    [
      ['a1.dnsbl.test', 'listed', 2],
      ['b1.dnsbl.test', 'listed', 1],
      ['c1.dnsbl.test', 'not_listed', 0],
    ],
  );
});

test('a negative weight (DNSWL) lowers the rank', async () => {
  dns.listDnsbl('a2.dnsbl.test', '127.0.1.2', ['127.0.0.2']);
  dns.listDnsbl('wl2.dnswl.test', '127.0.1.2', ['127.0.2.3']);
  const score = await queryDnsbl(sites('a2.dnsbl.test*2', 'wl2.dnswl.test*-3'), '127.0.1.2', 500, deps());
  assert.equal(score.rank, -1);
});

test('only entries whose filter matches count, each once however many records match', async () => {
  dns.listDnsbl('zen3.dnsbl.test', '127.0.1.3', ['127.0.0.2', '127.0.0.4', '127.0.0.10']);
  const score = await queryDnsbl(
    sites('zen3.dnsbl.test=127.0.0.[2..11]*3', 'zen3.dnsbl.test=127.0.0.[10;11]*2', 'zen3.dnsbl.test=127.0.0.3*7'),
    '127.0.1.3',
    500,
    deps(),
  );
  assert.equal(score.rank, 5);
});

test('the reply names the matching site with the largest weight', async () => {
  dns.listDnsbl('small4.dnsbl.test', '127.0.1.4', ['127.0.0.2']);
  dns.listDnsbl('big4.dnsbl.test', '127.0.1.4', ['127.0.0.2']);
  const score = await queryDnsbl(sites('small4.dnsbl.test', 'big4.dnsbl.test*3'), '127.0.1.4', 500, deps());
  assert.equal(score.listedBy, 'big4.dnsbl.test');
});

test('127.255.255.254 is never a listing (metric result refused_code)', async () => {
  dns.listDnsbl('zen5.dnsbl.test', '127.0.1.5', ['127.255.255.254']);
  const metrics = new Metrics();
  const score = await queryDnsbl(sites('zen5.dnsbl.test*3'), '127.0.1.5', 500, deps(metrics));
  assert.equal(score.rank, 0);
  assert.equal(score.sites[0]?.result, 'refused_code');
  assert.equal(await queries(metrics, 'zen5.dnsbl.test', 'refused_code'), 1);
});

test('127.0.0.1 is never a listing', async () => {
  dns.listDnsbl('zen6.dnsbl.test', '127.0.1.6', ['127.0.0.1']);
  const score = await queryDnsbl(sites('zen6.dnsbl.test'), '127.0.1.6', 500, deps());
  assert.equal(score.rank, 0);
  assert.equal(score.sites[0]?.result, 'refused_code');
});

test('an error answer next to a real one: the real one counts', async () => {
  dns.listDnsbl('zen7.dnsbl.test', '127.0.1.7', ['127.255.255.252', '127.0.0.2']);
  const score = await queryDnsbl(sites('zen7.dnsbl.test'), '127.0.1.7', 500, deps());
  assert.equal(score.rank, 1);
  assert.deepEqual(score.sites[0]?.addresses, ['127.0.0.2']);
});

test('a timeout counts as not listed (metric result timeout), at the time limit on the clock', async () => {
  dns.listDnsbl('fast8.dnsbl.test', '127.0.1.8', ['127.0.0.2']);
  const metrics = new Metrics();
  const clock = new ManualClock();
  // The slow site's lookup never ends by itself: only the query's 150 ms on the clock can end it.
  const patient: DnsResolver = { ...resolver, resolve4: (name) => (name.includes('slow8') ? new Promise(() => undefined) : resolver.resolve4(name)) };
  const query = startDnsblQuery(sites('slow8.dnsbl.test*5', 'fast8.dnsbl.test'), '127.0.1.8', 150, { resolver: patient, clock, metrics });
  let settled = false;
  void query.settled.then(() => (settled = true));
  // Bounded wait (2 s) for the fast site's answer; the slow one never answers.
  for (let i = 0; i < 200 && query.score().sites[1]?.result === 'pending'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(query.score().sites[1]?.result, 'listed');
  clock.advance(149);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, 'still waiting 1 ms before the limit');
  clock.advance(1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, true, 'done at the limit');
  const score = await query.settled;
  assert.equal(score.rank, 1);
  assert.equal(score.sites[0]?.result, 'timeout');
  assert.equal(await queries(metrics, 'slow8.dnsbl.test', 'timeout'), 1);
});

test('SERVFAIL counts as not listed', async () => {
  dns.setServfail('9.1.0.127.broken9.dnsbl.test');
  const score = await queryDnsbl(sites('broken9.dnsbl.test'), '127.0.1.9', 500, deps());
  assert.equal(score.rank, 0);
  assert.equal(score.sites[0]?.result, 'error');
});

test('one query per domain even when several entries share it', async () => {
  dns.listDnsbl('zen10.dnsbl.test', '127.0.1.10', ['127.0.0.2']);
  await queryDnsbl(sites('zen10.dnsbl.test=127.0.0.2', 'zen10.dnsbl.test=127.0.0.3', 'zen10.dnsbl.test*2'), '127.0.1.10', 500, deps());
  assert.equal(dns.queryCount('10.1.0.127.zen10.dnsbl.test', 'A'), 1);
});

test('an IPv6 client is queried in nibble form', async () => {
  const name = 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen11.dnsbl.test';
  assert.equal(dns.listDnsbl('zen11.dnsbl.test', '2001:db8:1:2:3:4:567:89ab', ['127.0.0.3']), name);
  const score = await queryDnsbl(sites('zen11.dnsbl.test'), '2001:db8:1:2:3:4:567:89ab', 500, deps());
  assert.equal(score.rank, 1);
  assert.equal(dns.queryCount(name, 'A'), 1);
});

test('an IPv4-mapped client is queried as IPv4', async () => {
  dns.listDnsbl('zen12.dnsbl.test', '127.0.1.12', ['127.0.0.2']);
  const score = await queryDnsbl(sites('zen12.dnsbl.test'), '::ffff:127.0.1.12', 500, deps());
  assert.equal(score.rank, 1);
  assert.equal(dns.queryCount('12.1.0.127.zen12.dnsbl.test', 'A'), 1);
});

test('TTL: a listed client gets the smallest TTL of the listing answers', async () => {
  dns.listDnsbl('a13.dnsbl.test', '127.0.1.13', ['127.0.0.2'], 900);
  dns.listDnsbl('b13.dnsbl.test', '127.0.1.13', ['127.0.0.2'], 300);
  const score = await queryDnsbl(sites('a13.dnsbl.test', 'b13.dnsbl.test'), '127.0.1.13', 500, deps());
  assert.equal(score.ttlSeconds, 300);
});

test('TTL: a clean client has none (the cache then uses postscreen_dnsbl_min_ttl)', async () => {
  const score = await queryDnsbl(sites('a14.dnsbl.test'), '127.0.1.14', 500, deps());
  assert.equal(score.ttlSeconds, undefined);
});

test('TTL: a client allowlisted by a DNSWL gets the DNSWL answer TTL', async () => {
  dns.listDnsbl('wl15.dnswl.test', '127.0.1.15', ['127.0.2.2'], 1200);
  const score = await queryDnsbl(sites('bl15.dnsbl.test', 'wl15.dnswl.test*-2'), '127.0.1.15', 500, deps());
  assert.equal(score.rank, -2);
  assert.equal(score.ttlSeconds, 1200);
});

test('score() before every site answered is partial: the silent site is pending', async () => {
  dns.setNoAnswer('16.1.0.127.slow16.dnsbl.test');
  dns.listDnsbl('fast16.dnsbl.test', '127.0.1.16', ['127.0.0.2']);
  const query = startDnsblQuery(sites('slow16.dnsbl.test*4', 'fast16.dnsbl.test'), '127.0.1.16', 150, deps());
  for (let i = 0; i < 400 && query.score().sites[1]?.result === 'pending'; i++) await new Promise((r) => setTimeout(r, 5));
  const partial = query.score();
  assert.equal(partial.rank, 1);
  assert.equal(partial.sites[0]?.result, 'pending');
  const final = await query.settled;
  assert.equal(final.sites[0]?.result, 'timeout');
});

test('metrics: latency is observed per site', async () => {
  const metrics = new Metrics();
  await queryDnsbl(sites('a17.dnsbl.test'), '127.0.1.17', 500, deps(metrics));
  const { values } = await metrics.dnsblLatency.get();
  const count = values.find((v) => v.metricName === 'mxscreen_dnsbl_query_seconds_count' && v.labels.site === 'a17.dnsbl.test');
  assert.equal(count?.value, 1);
  assert.equal(await queries(metrics, 'a17.dnsbl.test', 'not_listed'), 1);
});

test('127.0.0.255 from a DNSWL is an error (refused_code), never an allow', async () => {
  dns.listDnsbl('wl18.dnswl.test', '127.0.1.18', ['127.0.0.255']);
  const metrics = new Metrics();
  const score = await queryDnsbl(sites('wl18.dnswl.test*-5'), '127.0.1.18', 500, deps(metrics));
  assert.equal(score.rank, 0);
  assert.equal(score.sites[0]?.result, 'refused_code');
  assert.equal(await queries(metrics, 'wl18.dnswl.test', 'refused_code'), 1);
});

test('127.0.0.255 from a DNSBL (positive weight) is a listing', async () => {
  dns.listDnsbl('bl19.dnsbl.test', '127.0.1.19', ['127.0.0.255']);
  const score = await queryDnsbl(sites('bl19.dnsbl.test*2'), '127.0.1.19', 500, deps());
  assert.equal(score.rank, 2);
});

test('an error code asks the site health for an early self-test; an unhealthy site is not asked', async () => {
  dns.listDnsbl('zen20.dnsbl.test', '127.0.1.20', ['127.255.255.254']);
  const suspects: string[] = [];
  const health = { healthy: (domain: string) => domain !== 'sick20.dnsbl.test', suspect: (domain: string) => void suspects.push(domain) };
  const score = await queryDnsbl(sites('zen20.dnsbl.test', 'sick20.dnsbl.test*9'), '127.0.1.20', 500, { ...deps(), health });
  assert.deepEqual(suspects, ['zen20.dnsbl.test']);
  assert.equal(score.sites[1]?.result, 'skipped');
  assert.equal(dns.queryCount('20.1.0.127.sick20.dnsbl.test'), 0);
});

test('all sites are asked in one burst: every query is out before the first answer comes back', async () => {
  const names = ['b21a.dnsbl.test', 'b21b.dnsbl.test', 'b21c.dnsbl.test', 'b21d.dnsbl.test'];
  // A resolver that holds every answer until the test lets them go.
  const asked: string[] = [];
  const held: (() => void)[] = [];
  const holding: DnsResolver = {
    ...resolver,
    resolve4: (name) => {
      asked.push(name);
      return new Promise<void>((resolve) => held.push(resolve)).then(() => resolver.resolve4(name));
    },
  };
  const query = startDnsblQuery(sites(...names), '127.0.1.21', 1000, { ...deps(), resolver: holding });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(asked.sort(), names.map((name) => `21.1.0.127.${name}`).sort(), 'all four asked while none has answered');
  for (const release of held) release();
  assert.equal((await query.settled).sites.length, 4);
});

test('displayName hides a secret zone name in metrics', async () => {
  const metrics = new Metrics();
  await queryDnsbl(sites('key22.zen.dq.dnsbl.test'), '127.0.1.22', 500, { ...deps(metrics), displayName: () => 'zen.dnsbl.test' });
  assert.equal(await queries(metrics, 'zen.dnsbl.test', 'not_listed'), 1);
  assert.equal(await queries(metrics, 'key22.zen.dq.dnsbl.test', 'not_listed'), 0);
});

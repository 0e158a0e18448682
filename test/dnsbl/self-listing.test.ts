// One self-listing round (src/dnsbl/self-listing.ts) through the real dnsbl package against
// the in-process DNS server: listed (with its TXT reason), not listed, and every way a
// site can fail to tell, which must come out as "could not check", never "not listed".
// Also the main.cf side (self-listing-settings.ts): sites from postscreen_dnsbl_sites,
// bad addresses and sites with file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getServers } from 'node:dns';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDnsServer, withDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { checkSelfListing, dnsblServers, readSiteAnswers, type Listing, type SelfListingRound, type SelfListingSite } from '../../src/dnsbl/self-listing.js';
import { selfListingSettingsFromConfig } from '../../src/dnsbl/self-listing-settings.js';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

const TIMEOUT_MS = 400;
const site = (domain: string): SelfListingSite => ({ domain, shown: domain });

/** A zone that passes RFC 5782 §5: 127.0.0.2 listed (with TXT), 127.0.0.1 not. */
function healthyZone(dns: FakeDns, zone: string): void {
  dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  dns.setTxt(`2.0.0.127.${zone}`, ['test point']);
}

function listingOf(round: SelfListingRound, address: string, domain: string): Listing | undefined {
  return round.pairs.find((pair) => pair.address === address && pair.site.domain === domain)?.listing;
}

test('a listed address comes out listed with the TXT reason, a clean one not listed, and the site checked; the queries go to the configured server', async () => {
  await withDnsServer(async (dns) => {
    healthyZone(dns, 'bl.dnsbl.test');
    dns.listDnsbl('bl.dnsbl.test', '192.0.2.25', ['127.0.0.2']);
    dns.setTxt('25.2.0.192.bl.dnsbl.test', ['Listed: see https://bl.dnsbl.test/query/192.0.2.25']);
    const round = await checkSelfListing({ addresses: ['192.0.2.25', '192.0.2.26'], sites: [site('bl.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'bl.dnsbl.test'), { kind: 'listed', reason: 'Listed: see https://bl.dnsbl.test/query/192.0.2.25' });
    assert.deepEqual(listingOf(round, '192.0.2.26', 'bl.dnsbl.test'), { kind: 'not-listed' });
    assert.deepEqual(round.sites, [{ site: site('bl.dnsbl.test'), checked: true, why: undefined }]);
    assert.equal(dns.queryCount('26.2.0.192.bl.dnsbl.test', 'A'), 1, 'asked our server');
    assert.equal(dns.queryCount('1.0.0.127.bl.dnsbl.test', 'A'), 1, 'the test point 127.0.0.1 is asked');
  });
});

test('a listing without a TXT record is still listed (dnsbl with includeTxt would read it as not listed)', async () => {
  await withDnsServer(async (dns) => {
    healthyZone(dns, 'notxt.dnsbl.test');
    dns.listDnsbl('notxt.dnsbl.test', '192.0.2.25', ['127.0.0.4']);
    const round = await checkSelfListing({ addresses: ['192.0.2.25'], sites: [site('notxt.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'notxt.dnsbl.test'), { kind: 'listed', reason: undefined });
  });
});

test('a site answering 127.255.255.254 to everything (a refused resolver) is could not check, not listed, while another site still tells', async () => {
  await withDnsServer(async (dns) => {
    dns.setZoneA('refused.dnsbl.test', ['127.255.255.254']);
    healthyZone(dns, 'ok.dnsbl.test');
    const round = await checkSelfListing({ addresses: ['192.0.2.25'], sites: [site('refused.dnsbl.test'), site('ok.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'refused.dnsbl.test'), { kind: 'could-not-check', why: 'test point 127.0.0.1 is listed' });
    assert.equal(round.sites[0]?.checked, false);
    assert.deepEqual(listingOf(round, '192.0.2.25', 'ok.dnsbl.test'), { kind: 'not-listed' });
    assert.equal(round.sites[1]?.checked, true);
  });
});

test('a site that never answers is could not check, not "not listed", and does not spoil a site that answers', async () => {
  await withDnsServer(async (dns) => {
    dns.setZoneNoAnswer('silent.dnsbl.test');
    healthyZone(dns, 'ok.dnsbl.test');
    dns.listDnsbl('ok.dnsbl.test', '192.0.2.25', ['127.0.0.2']);
    const round = await checkSelfListing({ addresses: ['192.0.2.25'], sites: [site('silent.dnsbl.test'), site('ok.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    const silent = listingOf(round, '192.0.2.25', 'silent.dnsbl.test');
    assert.equal(silent?.kind, 'could-not-check');
    assert.equal(round.sites[0]?.checked, false);
    assert.deepEqual(listingOf(round, '192.0.2.25', 'ok.dnsbl.test'), { kind: 'listed', reason: undefined });
  });
});

test('a site whose test points answer but whose answer for our address never comes is could not check (the batch ran into the time limit)', async () => {
  await withDnsServer(async (dns) => {
    healthyZone(dns, 'lossy.dnsbl.test');
    dns.setNoAnswer('25.2.0.192.lossy.dnsbl.test');
    const round = await checkSelfListing({ addresses: ['192.0.2.25'], sites: [site('lossy.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'lossy.dnsbl.test'), { kind: 'could-not-check', why: `no answer within ${TIMEOUT_MS} ms` });
  });
});

test('an IPv6 address is checked against the IPv6 test points ::ffff:7f00:2 / ::ffff:7f00:1; a site without them could not check it but still checks IPv4', async () => {
  await withDnsServer(async (dns) => {
    const nibbles = (hex32: string) => [...hex32].reverse().join('.');
    for (const zone of ['v6.dnsbl.test', 'v4only.dnsbl.test']) healthyZone(dns, zone);
    dns.setA(`${nibbles('00000000000000000000ffff7f000002')}.v6.dnsbl.test`, ['127.0.0.2']);
    dns.setA(`${nibbles('20010db8000000000000000000000025')}.v6.dnsbl.test`, ['127.0.0.3']);
    const addresses = ['2001:db8::25', '192.0.2.25'];
    const round = await checkSelfListing({ addresses, sites: [site('v6.dnsbl.test'), site('v4only.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS });
    assert.deepEqual(listingOf(round, '2001:db8::25', 'v6.dnsbl.test'), { kind: 'listed', reason: undefined });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'v6.dnsbl.test'), { kind: 'not-listed' });
    assert.deepEqual(listingOf(round, '2001:db8::25', 'v4only.dnsbl.test'), { kind: 'could-not-check', why: 'test point ::ffff:7f00:2 is not listed' });
    assert.deepEqual(listingOf(round, '192.0.2.25', 'v4only.dnsbl.test'), { kind: 'not-listed' });
    assert.deepEqual(round.sites.map((s) => s.checked), [true, false], 'a site is checked only when it could tell for every address');
  });
});

test('readSiteAnswers: the test points decide, as a table', () => {
  const zone = site('t.dnsbl.test');
  const cases: { name: string; answers: [string, boolean][]; timedOut?: boolean; want: Listing['kind'] }[] = [
    { name: 'healthy, listed', answers: [['127.0.0.2', true], ['127.0.0.1', false], ['192.0.2.1', true]], want: 'listed' },
    { name: 'healthy, clean', answers: [['127.0.0.2', true], ['127.0.0.1', false], ['192.0.2.1', false]], want: 'not-listed' },
    { name: '127.0.0.2 not listed (DNS failure, timeout)', answers: [['127.0.0.2', false], ['127.0.0.1', false], ['192.0.2.1', false]], want: 'could-not-check' },
    { name: '127.0.0.1 listed (an error code to everything)', answers: [['127.0.0.2', true], ['127.0.0.1', true], ['192.0.2.1', true]], want: 'could-not-check' },
    { name: 'ran into the time limit', answers: [['127.0.0.2', true], ['127.0.0.1', false], ['192.0.2.1', false]], timedOut: true, want: 'could-not-check' },
    { name: 'a test point missing from the answers', answers: [['127.0.0.2', true], ['192.0.2.1', false]], want: 'could-not-check' },
  ];
  for (const { name, answers, timedOut, want } of cases) {
    const { listings } = readSiteAnswers(zone, ['192.0.2.1'], new Map(answers), timedOut ?? false, 1000);
    assert.equal(listings[0]?.kind, want, name);
  }
});

test('empty mxscreen_dns_servers hands dnsbl the system resolver servers, never its public default (OpenDNS)', () => {
  assert.deepEqual(dnsblServers([]), getServers());
  assert.ok(!dnsblServers([]).includes('208.67.222.222'));
  assert.deepEqual(dnsblServers(['127.0.0.1:5300']), ['127.0.0.1:5300']);
});

function configFile(lines: readonly string[]): string {
  const directory = temporaryDirectory('mxscreen-self-listing-');
  const file = join(directory, 'main.cf');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

test('mxscreen_self_listing_sites defaults to the postscreen_dnsbl_sites domains with a positive weight, without filter and weight, shown through postscreen_dnsbl_reply_map', () => {
  const file = configFile([
    'postscreen_dnsbl_sites = secretkey.zen.dq.dnsbl.test=127.0.0.[2..11]*3, bl.dnsbl.test, list.dnswl.test*-2, bl.dnsbl.test*2',
    'postscreen_dnsbl_reply_map = inline:{ secretkey.zen.dq.dnsbl.test=zen.dnsbl.test }',
    'mxscreen_self_listing_addresses = 192.0.2.25, ::ffff:192.0.2.26, 2001:DB8::25',
    'mxscreen_self_listing_interval = 2h',
  ]);
  const settings = selfListingSettingsFromConfig(loadConfig(file));
  assert.deepEqual(settings.sites, [
    { domain: 'secretkey.zen.dq.dnsbl.test', shown: 'zen.dnsbl.test' },
    { domain: 'bl.dnsbl.test', shown: 'bl.dnsbl.test' },
  ]);
  assert.deepEqual(settings.addresses, ['192.0.2.25', '192.0.2.26', '2001:db8::25']);
  assert.equal(settings.intervalMs, 2 * 3_600_000);
  const defaults = selfListingSettingsFromConfig(loadConfig(configFile(['myhostname = mx.example.net'])));
  assert.deepEqual(defaults.addresses, [], 'off by default');
  assert.equal(defaults.intervalMs, 3_600_000, 'default 1h');
});

test('a bad mxscreen_self_listing_addresses element, a bad explicit site and an interval of 0 are start-up errors with file:line', () => {
  const file = configFile(['myhostname = mx.example.net', 'mxscreen_self_listing_addresses = 192.0.2.25, 192.0.2.300, mx.example.net']);
  assert.throws(
    () => loadConfig(file),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.filter((p) => p.file === file && p.line === 2 && p.message.includes('mxscreen_self_listing_addresses')).length === 2,
  );
  const sites = configFile(['myhostname = mx.example.net', 'mxscreen_self_listing_interval = 0', 'mxscreen_self_listing_sites = bl.dnsbl.test*x']);
  assert.throws(
    () => selfListingSettingsFromConfig(loadConfig(sites)),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.some((p) => p.line === 2 && p.message.startsWith('mxscreen_self_listing_interval')) &&
      error.problems.some((p) => p.line === 3 && p.message.startsWith('mxscreen_self_listing_sites: bad DNSBL weight')),
  );
});

test('startDnsServer zone rules: setZoneA answers every name of the zone, setZoneNoAnswer none', async () => {
  const dns = await startDnsServer();
  try {
    dns.setZoneA('all.dnsbl.test', ['127.255.255.254']);
    const round = await checkSelfListing({ addresses: ['192.0.2.9'], sites: [site('all.dnsbl.test')], servers: [dns.server], timeoutMs: TIMEOUT_MS, reasons: false });
    assert.equal(dns.queryCount('9.2.0.192.all.dnsbl.test', 'A'), 1);
    assert.equal(round.sites[0]?.why, 'test point 127.0.0.1 is listed');
  } finally {
    await dns.close();
  }
});

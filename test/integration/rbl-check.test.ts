// `mxscreen rbl-check` as cron or a Nagios-style check runs it, spawned against the
// in-process DNS server on loopback (mxscreen_dns_servers = 127.0.0.1:PORT): the table and
// the exit status 0 / 1 / 2. And the monitor inside a running mxscreen (main.ts wiring).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { repositoryRoot } from '../fakes/repository-root.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { startChain, ZONE } from './harness.js';

const CLI = join(repositoryRoot(), 'dist/src/cli.js');
const LISTED = '192.0.2.25';
const CLEAN = '192.0.2.26';

/** Runs the CLI without blocking this process's event loop (the fake DNS server answers from it). */
function runCli(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A DNS server with three zones: bl (lists LISTED, with TXT), clean (lists nothing), refused (127.255.255.254 to everything), silent (never answers). */
async function dnsblWorld(): Promise<FakeDns> {
  const dns = await startDnsServer();
  for (const zone of ['bl.dnsbl.test', 'clean.dnsbl.test']) dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  dns.setTxt(dns.listDnsbl('bl.dnsbl.test', LISTED, ['127.0.0.2']), ['Listed by bl: https://bl.dnsbl.test/192.0.2.25']);
  dns.setZoneA('refused.dnsbl.test', ['127.255.255.254']);
  dns.setZoneNoAnswer('silent.dnsbl.test');
  return dns;
}

function mainCf(dns: FakeDns, lines: readonly string[]): string {
  const file = join(temporaryDirectory('mxscreen-rbl-check-'), 'main.cf');
  writeFileSync(file, [`mxscreen_dns_servers = 127.0.0.1:${dns.port}`, 'postscreen_dnsbl_timeout = 500ms', ...lines, ''].join('\n'));
  return file;
}

test('rbl-check exit 0 when no site lists an address; addresses and sites from main.cf (sites from postscreen_dnsbl_sites)', async () => {
  const dns = await dnsblWorld();
  try {
    const file = mainCf(dns, [`mxscreen_self_listing_addresses = ${CLEAN}`, 'postscreen_dnsbl_sites = bl.dnsbl.test*2, clean.dnsbl.test, list.dnswl.test*-1']);
    const result = await runCli(['rbl-check', '-c', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.split('\n').filter(Boolean).map((line) => line.split(/\s{2,}/)), [
      ['address', 'site', 'result'],
      [CLEAN, 'bl.dnsbl.test', 'not listed'],
      [CLEAN, 'clean.dnsbl.test', 'not listed'],
    ]);
  } finally {
    await dns.close();
  }
});

test('rbl-check exit 1 with the TXT reason when a site lists an address given on the command line', async () => {
  const dns = await dnsblWorld();
  try {
    const file = mainCf(dns, ['mxscreen_self_listing_sites = bl.dnsbl.test clean.dnsbl.test']);
    const result = await runCli(['rbl-check', '-c', file, LISTED, CLEAN]);
    assert.equal(result.status, 1, result.stderr);
    const rows = result.stdout.split('\n').filter(Boolean).map((line) => line.split(/\s{2,}/));
    assert.deepEqual(rows[1], [LISTED, 'bl.dnsbl.test', 'listed (Listed by bl: https://bl.dnsbl.test/192.0.2.25)']);
    assert.deepEqual(rows.slice(2), [[LISTED, 'clean.dnsbl.test', 'not listed'], [CLEAN, 'bl.dnsbl.test', 'not listed'], [CLEAN, 'clean.dnsbl.test', 'not listed']]);
  } finally {
    await dns.close();
  }
});

test('rbl-check exit 2 when a site answers 127.255.255.254 to everything or never answers: could not check, never not listed', async () => {
  const dns = await dnsblWorld();
  try {
    for (const zone of ['refused.dnsbl.test', 'silent.dnsbl.test']) {
      const result = await runCli(['rbl-check', '-c', mainCf(dns, []), '--site', zone, '--site', 'clean.dnsbl.test', CLEAN]);
      assert.equal(result.status, 2, `${zone}: ${result.stdout}${result.stderr}`);
      const rows = result.stdout.split('\n').filter(Boolean).map((line) => line.split(/\s{2,}/));
      assert.match(rows[1]?.[2] ?? '', /^could not check \(/, zone);
      assert.deepEqual(rows[2], [CLEAN, 'clean.dnsbl.test', 'not listed']);
    }
  } finally {
    await dns.close();
  }
});

test('rbl-check: listed wins over could not check (exit 1); a bad main.cf is exit 2 with file:line; nothing to check is a usage error (64)', async () => {
  const dns = await dnsblWorld();
  try {
    const both = await runCli(['rbl-check', '-c', mainCf(dns, ['mxscreen_self_listing_sites = bl.dnsbl.test, silent.dnsbl.test']), LISTED]);
    assert.equal(both.status, 1, both.stdout);
    assert.match(both.stdout, /could not check/);
    const bad = mainCf(dns, ['mxscreen_self_listing_addresses = 192.0.2.300']);
    const broken = await runCli(['rbl-check', '-c', bad]);
    assert.equal(broken.status, 2);
    assert.ok(broken.stderr.includes(`${bad}:3: mxscreen_self_listing_addresses`), broken.stderr);
    const nothing = await runCli(['rbl-check', '-c', mainCf(dns, ['postscreen_dnsbl_sites = bl.dnsbl.test'])]);
    assert.equal(nothing.status, 64);
    assert.match(nothing.stderr, /no address to check/);
    assert.equal((await runCli(['rbl-check', LISTED])).status, 64, 'without -c, --site is needed');
  } finally {
    await dns.close();
  }
});

test('a running mxscreen checks mxscreen_self_listing_addresses at start on postscreen_dnsbl_sites, exports mxscreen_self_listed{site,address}, and a reload checks the new addresses at once', async () => {
  const chain = await startChain([`mxscreen_self_listing_addresses = ${LISTED}`]);
  try {
    chain.dns.listDnsbl(ZONE, LISTED, ['127.0.0.2']);
    await chain.restart(); // the first round of the new process finds the listing
    const line = await chain.log.waitFor((entry) => entry.event === 'SELF LISTED');
    assert.equal(line.msg, `our address ${LISTED} is listed by ${ZONE}`);
    const text = await chain.mx.metrics.registry.metrics();
    assert.ok(text.includes(`mxscreen_self_listed{site="${ZONE}",address="${LISTED}"} 1`), text);
    assert.ok(text.includes(`mxscreen_self_listing_check_success{site="${ZONE}"} 1`));

    chain.dns.listDnsbl(ZONE, '192.0.2.27', ['127.0.0.2']);
    appendFileSync(chain.configFile, 'mxscreen_self_listing_addresses = 192.0.2.27\n'); // the later setting wins
    assert.equal(await chain.mx.reload(), true);
    const reloaded = await chain.log.waitFor((entry) => entry.event === 'SELF LISTED' && entry['address'] === '192.0.2.27');
    assert.equal(reloaded.msg, `our address 192.0.2.27 is listed by ${ZONE}`);
    const after = await chain.mx.metrics.registry.metrics();
    assert.ok(after.includes(`mxscreen_self_listed{site="${ZONE}",address="192.0.2.27"} 1`), after);
    assert.ok(!after.includes(`address="${LISTED}"`), 'a reload that drops an address removes its series');
  } finally {
    await chain.close();
  }
});

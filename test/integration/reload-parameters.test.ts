// Reload (SIGHUP, an edit of main.cf): every parameter either takes effect or is logged
// as needing a restart. The catalogue marks the restart-only ones; a change to each is one
// WARN line (event RELOAD) naming it, and the running value stays. The parameters that
// used to keep their old value in silence take effect: the DNS servers and time limit,
// the verify(8) settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMxscreen, type Mxscreen } from '../../src/main.js';
import type { DnsResolver } from '../../src/dns/resolver.js';
import { RESTART_PARAMETERS } from '../../src/config/reload-check.js';
import { SELF_TEST_INTERVAL_MS } from '../../src/screen/dnsbl-health.js';
import { LruVerdictCache } from '../../src/screen/verdict-cache.js';
import { connectClient } from '../fakes/scripted-client.js';
import { startDnsServer } from '../fakes/dns-server.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { repositoryRoot } from '../fakes/repository-root.js';
import { ManualClock } from '../queue/manual-clock.js';
import { until } from '../fakes/wait-until.js';
import { runTranscript } from '../policy/transcript.js';
import { LogCapture, startChain, type LogLine } from './harness.js';

/** A changed value for every restart-only parameter (the harness's main.cf sets the others). */
const RESTART_VALUES: Readonly<Record<string, string>> = {
  queue_directory: 'queue-elsewhere',
  mxscreen_listen: '127.0.0.1:0, 127.0.0.2:0',
  mxscreen_listen_backlog: '128',
  mxscreen_metrics_listen: '127.0.0.1:0',
  mxscreen_verdict_cache_size: '10',
  postscreen_cache_retention_time: '1d',
  mail_owner: 'nobody',
  mxscreen_workers: '2',
  postscreen_cache_map: 'btree:$data_directory/other_cache',
};

const restartWarnings = (lines: readonly LogLine[]) => lines.filter((line) => line.event === 'RELOAD' && line.level === 'warn');

test('reload: each restart-only parameter that changed is one WARN line naming it; the running value stays; reloadable ones are not warned about', async () => {
  assert.deepEqual(Object.keys(RESTART_VALUES).sort(), [...RESTART_PARAMETERS].sort(), 'a changed value for every parameter marked reload: restart');
  const chain = await startChain();
  try {
    const port = chain.port;
    assert.equal(await chain.mx.reload(), true);
    assert.deepEqual(restartWarnings(chain.log.lines), [], 'nothing changed, nothing to say');

    const reloadable = ['postscreen_dnsbl_timeout = 2s', 'unverified_recipient_reject_code = 550', 'postscreen_cache_cleanup_interval = 1h', 'mxscreen_shutdown_timeout = 2s'];
    appendFileSync(chain.configFile, [...Object.entries(RESTART_VALUES).map(([name, value]) => `${name} = ${value}`), ...reloadable, ''].join('\n'));
    assert.equal(await chain.mx.reload(), true);
    const warned = restartWarnings(chain.log.lines);
    assert.deepEqual(warned.map((line) => line.parameter).sort(), [...RESTART_PARAMETERS].sort());
    for (const line of warned) assert.equal(line.msg, `${String(line.parameter)} changed: takes effect after a restart`);

    assert.equal(chain.port, port);
    await runTranscript({ port }, 'C: EHLO client.example\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<info@example.com>\nS: 250', '127.0.0.1');
    assert.equal(await chain.mx.reload(), true);
    assert.equal(restartWarnings(chain.log.lines).length, warned.length, 'said once, not on every reload');
  } finally {
    await chain.close();
  }
});

test('reload: unverified_recipient_reject_code and mxscreen_verify_cache_size apply to the running verify cache', async () => {
  const chain = await startChain(['relay_recipient_maps =', 'smtpd_recipient_restrictions = reject_unverified_recipient']);
  try {
    chain.mailbox.setMode('reject', 'gone@example.com');
    const probes = () => chain.log.lines.filter((line) => line.event === 'address verify').length;
    const rcpt = (address: string, reply: string) =>
      runTranscript({ port: chain.port }, `C: EHLO client.example\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<${address}>\nS: ${reply}`, '127.0.0.1');
    await rcpt('gone@example.com', '450 4.1.1 <gone@example.com>: Recipient address rejected: undeliverable address');
    await rcpt('joe@example.com', '250');
    assert.equal(probes(), 2);

    appendFileSync(chain.configFile, 'unverified_recipient_reject_code = 550\nmxscreen_verify_cache_size = 1\n');
    assert.equal(await chain.mx.reload(), true);
    await rcpt('joe@example.com', '250'); // the most recent entry is kept
    assert.equal(probes(), 2);
    // gone@ did not fit in a cache of one: probed again, and refused with the new code.
    await rcpt('gone@example.com', '550 5.1.1 <gone@example.com>: Recipient address rejected: undeliverable address');
    assert.equal(probes(), 3);
  } finally {
    await chain.close();
  }
});

/** main.cf for an mxscreen started by the test itself (not the harness), with `lines` added. */
function writeMainCf(directory: string, lines: readonly string[]): string {
  const file = join(directory, 'main.cf');
  const base = ['myhostname = mx1.example.net', 'mxscreen_listen = 127.0.0.1:0', 'mxscreen_workers = 1', 'mxscreen_metrics_listen =', 'mynetworks = 127.0.0.1/32', 'queue_directory = queue', 'queue_run_delay = 1h', 'postscreen_greet_wait = 1s'];
  writeFileSync(file, [...base, ...lines, ''].join('\n'));
  return file;
}

test('reload: mxscreen_dns_servers takes effect; DNSBL queries of new clients go to the new server', async () => {
  const first = await startDnsServer();
  const second = await startDnsServer();
  const directory = temporaryDirectory('mxscreen-reload-dns-');
  const zone = 'zen.dnsbl.test';
  // RFC 5782 §5 test points on both, so the site stays healthy (dnsbl-health.ts) and is asked.
  for (const dns of [first, second]) dns.listDnsbl(zone, '127.0.0.2', ['127.0.0.2']);
  const lines = (dns: { server: string }) => [`mxscreen_dns_servers = ${dns.server}`, `postscreen_dnsbl_sites = ${zone}`];
  const configFile = writeMainCf(directory, lines(first));
  const log = new LogCapture();
  let mx: Mxscreen | undefined;
  try {
    mx = await startMxscreen({ configFile, logDestination: log, processMetrics: false });
    const port = mx.smtp[0]!.port;
    const queried = (dns: typeof first, client: string) => dns.queryCount(`${client.split('.').reverse().join('.')}.${zone}`, 'A');
    const screened = async (from: string, dns: typeof first) => {
      const client = await connectClient({ port, localAddress: from });
      try {
        await until(`the DNSBL query for ${from} at ${dns.server}`, () => queried(dns, from) > 0);
      } finally {
        await client.close();
      }
    };
    await screened('127.0.0.7', first);
    writeMainCf(directory, lines(second));
    assert.equal(await mx.reload(), true);
    await screened('127.0.0.8', second);
    assert.equal(queried(first, '127.0.0.8'), 0, 'the first server is no longer asked');
    assert.deepEqual(restartWarnings(log.lines), []);
  } finally {
    await mx?.stop();
    await first.close();
    await second.close();
  }
});

test('reload: postscreen_dnsbl_timeout applies to the DNSBL self-test', async () => {
  const directory = temporaryDirectory('mxscreen-reload-timeout-');
  const silent = (): Promise<never> => new Promise(() => undefined);
  const resolver: DnsResolver = { resolve4: silent, resolve6: silent, resolveMx: silent, reverse: silent, resolveTxt: silent };
  const clock = new ManualClock();
  const configFile = writeMainCf(directory, ['postscreen_dnsbl_timeout = 1h']);
  const log = new LogCapture();
  let mx: Mxscreen | undefined;
  try {
    mx = await startMxscreen({ configFile, resolver, clock, logDestination: log, processMetrics: false, tableCheckIntervalMs: 24 * 3_600_000 });
    writeMainCf(directory, ['postscreen_dnsbl_timeout = 2s', 'postscreen_dnsbl_sites = zen.dnsbl.test']);
    assert.equal(await mx.reload(), true);
    clock.advance(SELF_TEST_INTERVAL_MS); // the next self-test round asks the site, which never answers
    clock.advance(2000); // the new time limit, not the old hour
    await log.waitFor((line) => line.event === 'DNSBL health' && line.healthy === false);
  } finally {
    await mx?.stop();
  }
});

test('reload: postscreen_cache_cleanup_interval starts, changes and stops the verdict cache cleanup', async () => {
  const directory = temporaryDirectory('mxscreen-reload-cleanup-');
  const clock = new ManualClock();
  const configFile = writeMainCf(directory, ['postscreen_cache_cleanup_interval = 0']);
  let cleanups = 0;
  const cleanup = LruVerdictCache.prototype.cleanup;
  LruVerdictCache.prototype.cleanup = function (this: LruVerdictCache) {
    cleanups++;
    return cleanup.call(this);
  };
  let mx: Mxscreen | undefined;
  try {
    mx = await startMxscreen({ configFile, clock, logDestination: new LogCapture(), processMetrics: false, tableCheckIntervalMs: 24 * 3_600_000 });
    clock.advance(24 * 3_600_000);
    assert.equal(cleanups, 0, '0 disables the cleanup');
    writeMainCf(directory, ['postscreen_cache_cleanup_interval = 1h']);
    assert.equal(await mx.reload(), true);
    clock.advance(3_600_000);
    assert.equal(cleanups, 1);
    // An empty cache's cleanup settles within this turn's microtasks and arms the next one,
    // which the reload below must cancel.
    await new Promise((resolve) => setImmediate(resolve));
    writeMainCf(directory, ['postscreen_cache_cleanup_interval = 0']);
    assert.equal(await mx.reload(), true);
    clock.advance(24 * 3_600_000);
    assert.equal(cleanups, 1, 'set back to 0: no more cleanups');
  } finally {
    LruVerdictCache.prototype.cleanup = cleanup;
    await mx?.stop();
  }
});

test('README: the Reload paragraph names every restart-only parameter', () => {
  const readme = readFileSync(join(repositoryRoot(), 'README.md'), 'utf8');
  const paragraph = readme.slice(readme.indexOf('**Reload.**'), readme.indexOf('## Log events'));
  assert.deepEqual(RESTART_PARAMETERS.filter((name) => !paragraph.includes(`\`${name}\``)), []);
});

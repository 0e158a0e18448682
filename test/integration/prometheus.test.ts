// The shipped dashboard and alert rules against a real Prometheus (the Debian package's
// /usr/bin/prometheus) on a loopback port, scraping a running mxscreen every second as two
// targets, mx1 and mx2 (the same process: the dashboard shows both side by side). While
// clean, DNSBL-listed, pregreet, bounced and deferred traffic flows, every query of every
// dashboard panel must return data for both instances; with the mailbox server stopped the
// nexthop-down alert (its `for:` shortened in the test's copy of the rules) must fire, and
// clear when the server is back. mxscreen shares its verdict cache on a real redis-server
// (the Redis panels; a stored value that does not parse counts a backend error). Skipped,
// with a message, only when prometheus is absent and CI is not set; without redis-server
// (and without CI) only the Redis panels are left out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { newQueueId } from '../../src/queue/queue-id.js';
import { repositoryRoot } from '../fakes/repository-root.js';
import { startPrometheus, type PrometheusAlert, type PrometheusServer } from '../fakes/prometheus-server.js';
import { systemBinary } from '../fakes/system-binary.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { until } from '../fakes/wait-until.js';
import { dashboardQueries, readDashboard, substituteVariables } from '../rules/dashboard-queries.js';
import { createClient } from 'redis';
import { RedisServer, redisSkip } from '../fakes/redis-server.js';
import { startChain, waitForMessages, type Chain } from './harness.js';
import { cleanClient, hangupClient, listedClient, message, pregreetClient } from './traffic.js';

const prometheusBinary = systemBinary('prometheus', 'prometheus');
const root = repositoryRoot();
const WAIT = 5000;
/** Bound of each wait on Prometheus: a scrape and a rule evaluation take a second each. */
const PROMETHEUS_WAIT = 30_000;
/** Pause between two questions to Prometheus while waiting (ms). */
const POLL = 250;
const INSTANCES = ['mx1', 'mx2'];


/** The Redis panels' metrics: checked only where redis-server runs (always under CI). */
const REDIS_METRICS: readonly RegExp[] = [/\bmxscreen_verdict_cache_backend_up\b/, /\bmxscreen_verdict_cache_backend_errors_total\b/];
const redisMissing = redisSkip();
/**
 * Series only worker processes make (mxscreen_workers > 1): the chain here is one process (its
 * injected resolver reaches the owner only), so their panels are left out of the check;
 * workers.test.ts checks the series themselves.
 */
const WORKER_METRICS: readonly RegExp[] = [/\bmxscreen_worker_handoff_seconds_bucket\b/];

let chain: Chain | undefined;
let redis: RedisServer | undefined;
let redisClient: ReturnType<typeof createClient> | undefined;
let prometheus: PrometheusServer | undefined;

/** The shipped alert rules with every `for:` cut to 2s, so a test waits seconds, not minutes. */
function rulesWithShortFor(): unknown {
  const rules = parse(readFileSync(join(root, 'rules/prometheus/mxscreen-alerts.yml'), 'utf8')) as { groups: { rules: { for?: string }[] }[] };
  for (const group of rules.groups) for (const rule of group.rules) rule.for = '2s';
  return rules;
}

function nexthopDown(alerts: readonly PrometheusAlert[], nexthop: string): PrometheusAlert[] {
  return alerts.filter((alert) => alert.labels['alertname'] === 'MxscreenNexthopDown' && alert.labels['nexthop'] === nexthop);
}

/** Resolves once `event` has been logged more often than `before` times. */
function moreEvents(chain: Chain, event: string, before: number): Promise<void> {
  return until(`a new ${event} log line`, () => chain.log.events(event).length > before, WAIT);
}

/**
 * Round `n` of the traffic, each host from its own 127.(80+n).x.y address: clean clients
 * (PASS NEW, a message to each recipient, which address verification probes first, a relay
 * attempt, a header-check reject), one of them again (PASS OLD), DNSBL-listed clients, a
 * pregreet talker, a hang-up; a bounce, a deferred message, a damaged queue file.
 */
async function trafficRound(chain: Chain, n: number): Promise<void> {
  const host = (group: number, index: number) => `127.${80 + n}.${group}.${index}`;
  const received = chain.mailbox.received.length;
  // A value in Redis that does not parse: a miss (the client is screened anew), counted as reason="value".
  await redisClient?.set(`postscreen:${host(5, 1)}`, 'not a postscreen record');
  if (redisClient) await cleanClient(chain, host(5, 1));
  chain.mailbox.setMode('accept', 'joe@example.com');
  for (const index of [1, 2, 3]) {
    await cleanClient(chain, host(1, index), [
      ...message('alice@sender.test', ['info@example.com', 'joe@example.com']),
      ['MAIL FROM:<alice@sender.test>', 250],
      ['RCPT TO:<x@elsewhere.test>', 554],
      ['RCPT TO:<info@example.com>', 250],
      ['DATA', 354],
      ['Subject: reject me\r\n\r\nspam\r\n.', 550],
    ]);
  }
  await cleanClient(chain, host(1, 1));
  await listedClient(chain, host(2, 1));
  await listedClient(chain, host(2, 2));
  await pregreetClient(chain, host(3, 1));
  await hangupClient(chain, host(4, 1));
  await waitForMessages(chain.mailbox, received + 3, WAIT);
  // A bounce: the mailbox server refuses joe@ (already verified) with 5xx; a null sender gets no notice.
  chain.mailbox.setMode('reject', 'joe@example.com');
  const bounced = chain.log.events('status=bounced').length;
  await cleanClient(chain, host(1, 2), message('', ['joe@example.com']));
  await moreEvents(chain, 'status=bounced', bounced);
  // Deferred: the mailbox server answers 4xx until it is told to accept again.
  chain.mailbox.setMode('tempfail');
  const deferred = chain.log.events('status=deferred').length;
  await cleanClient(chain, host(1, 3), message('alice@sender.test', ['info@example.com']));
  await moreEvents(chain, 'status=deferred', deferred);
  chain.mailbox.setMode('accept');
  await waitForMessages(chain.mailbox, received + 4, WAIT);
  // A damaged queue file (a torn head) in incoming/: the next queue run moves it to corrupt/.
  const corrupt = chain.log.events('corrupt').length;
  writeFileSync(join(chain.directory, 'queue', 'incoming', newQueueId(Date.now())), 'MXSCREEN-QUEUE 1\n{"bodyLength":');
  await moreEvents(chain, 'corrupt', corrupt);
}

before(async () => {
  if (prometheusBinary.skip) return;
  const tables = temporaryDirectory('mxscreen-prometheus-tables-');
  writeFileSync(join(tables, 'header_checks'), '/^Subject: reject me/ REJECT no thanks\n');
  const cacheMap: string[] = [];
  if (!redisMissing) {
    redis = await RedisServer.start();
    redisClient = createClient({ url: redis.url() });
    redisClient.on('error', () => undefined);
    await redisClient.connect();
    writeFileSync(join(tables, 'postscreen_cache.cf'), `url = ${redis.url()}\ntimeout = 500ms\n`);
    cacheMap.push(`postscreen_cache_map = redis:${join(tables, 'postscreen_cache.cf')}`);
  }
  chain = await startChain(
    [
      'mxscreen_metrics_listen = 127.0.0.1:0',
      `header_checks = regexp:${join(tables, 'header_checks')}`,
      'smtpd_recipient_restrictions = reject_unverified_recipient',
      // a DNSBL answer must not miss its deadline on a loaded machine: a listed client would pass
      'postscreen_dnsbl_timeout = 4s',
      // the self-listing panels: one of our addresses checked against the harness DNSBL zone
      'mxscreen_self_listing_addresses = 192.0.2.25',
      ...cacheMap,
    ],
    { processMetrics: true },
  );
  const metricsPort = chain.mx.metricsEndpoint!.port;
  prometheus = await startPrometheus(
    prometheusBinary.path!,
    INSTANCES.map((instance) => ({ address: `127.0.0.1:${metricsPort}`, instance })),
    rulesWithShortFor(),
  );
  await until('Prometheus to scrape mx1 and mx2', async () => (await prometheus!.query('up{job="mxscreen"} == 1')).length === INSTANCES.length, PROMETHEUS_WAIT, POLL).catch((error: Error) => {
    throw new Error(`${error.message}\n${prometheus!.log()}`);
  });

  // Two rounds of traffic with a scrape between them: a counter that Prometheus first sees
  // already at its final value has a rate of 0, and a ratio of two such rates no value.
  await trafficRound(chain, 0);
  const firstRoundEnd = Date.now() / 1000;
  await until('a scrape of mx1 and mx2 after the first round', async () => (await prometheus!.query(`timestamp(mxscreen_stress_mode{job="mxscreen"}) > ${firstRoundEnd}`)).length === INSTANCES.length, PROMETHEUS_WAIT, POLL);
  await trafficRound(chain, 1);
});

after(async () => {
  await prometheus?.stop();
  await chain?.close();
  redisClient?.destroy();
  await redis?.stop();
});

test('every query of every dashboard panel returns data for mx1 and mx2 from a real Prometheus scraping mxscreen', { skip: prometheusBinary.skip }, async (t) => {
  const queries = dashboardQueries(readDashboard());
  const workerOnly = queries.filter(({ expr }) => WORKER_METRICS.some((metric) => metric.test(expr)));
  const redisLeftOut = redisMissing ? queries.filter(({ expr }) => REDIS_METRICS.some((metric) => metric.test(expr))) : [];
  if (redisMissing) t.diagnostic(`${redisLeftOut.length} Redis panel queries left out: ${redisMissing}`);
  const leftOut = [...workerOnly, ...redisLeftOut];
  const checked = queries.filter((query) => !leftOut.includes(query));
  assert.ok(checked.length >= 30, `${checked.length} queries checked`);
  // The whole test lies within a 5-minute window; Grafana would pick $__rate_interval from the scrape interval and the zoom.
  const promql = (expr: string) => substituteVariables(expr, { job: 'mxscreen', instance: `(${INSTANCES.join('|')})`, rateInterval: '5m' });
  let missing: string[] = [];
  const allAnswered = async () => {
    missing = [];
    for (const { panel, refId, expr } of checked) {
      const samples = await prometheus!.query(promql(expr));
      const instances = new Set(samples.filter((sample) => Number.isFinite(Number(sample.value[1]))).map((sample) => sample.metric['instance']));
      const lacking = INSTANCES.filter((instance) => !instances.has(instance));
      if (lacking.length > 0) missing.push(`${panel} ${refId} (no finite value for ${lacking.join(', ')}): ${promql(expr)}`);
    }
    return missing.length === 0;
  };
  // A counter needs two scrapes after its first increment before rate() has a value: wait for them.
  await until('every panel query to return data', allAnswered, PROMETHEUS_WAIT, POLL).catch(() => undefined);
  assert.deepEqual(missing, [], 'panel queries without data');
});

test('the nexthop-down alert fires in Prometheus while the mailbox server is stopped, and clears when it is back', { skip: prometheusBinary.skip }, async () => {
  const nexthop = `[127.0.0.1]:${chain!.mailbox.port}`;
  assert.deepEqual(nexthopDown(await prometheus!.alerts(), nexthop), [], 'silent while the nexthop is up');
  const received = chain!.mailbox.received.length;
  await chain!.mailbox.down();
  try {
    await cleanClient(chain!, '127.80.1.1', message('alice@sender.test', ['info@example.com']));
    await chain!.log.waitFor((line) => line.event === 'nexthop dead', WAIT);
    let firing: PrometheusAlert[] = [];
    const bothFiring = async () => {
      firing = nexthopDown(await prometheus!.alerts(), nexthop).filter((alert) => alert.state === 'firing');
      return firing.length === INSTANCES.length;
    };
    await until('MxscreenNexthopDown to fire for mx1 and mx2', bothFiring, PROMETHEUS_WAIT, POLL);
    assert.deepEqual(firing.map((alert) => [alert.labels['instance'], alert.labels['severity']]).sort(), INSTANCES.map((instance) => [instance, 'critical']));
    assert.match(firing[0]!.annotations['summary'] ?? '', new RegExp(`^Nexthop \\[127\\.0\\.0\\.1\\]:${chain!.mailbox.port} is down as seen from mx[12]: mail for the mailbox server is waiting`));
  } finally {
    await chain!.mailbox.restart();
  }
  await waitForMessages(chain!.mailbox, received + 1, WAIT);
  await chain!.log.waitFor((line) => line.event === 'nexthop up', WAIT);
  await until('MxscreenNexthopDown to clear', async () => nexthopDown(await prometheus!.alerts(), nexthop).length === 0, PROMETHEUS_WAIT, POLL);
});

// Every metric of README "Metrics", read back after the behaviour that moves it: through the
// whole chain with `GET /metrics` on a loopback mxscreen_metrics_listen (a real HTTP request),
// the policy stage alone for the replies smtp-server composes itself, and the queue world
// (manual clock) for the queue gauges. Values are compared with their full label set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChain, waitForMessages, ZONE, type Chain } from '../integration/harness.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { startPolicy } from '../policy/transcript.js';
import { MINUTE, withWorld } from '../queue/queue-world.js';

const WAIT = 5000; // upper bound of any single wait; each step takes milliseconds

interface HttpAnswer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

/** A real HTTP GET on loopback; rejects after WAIT ms. */
function httpGet(port: number, path: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path, timeout: WAIT }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type'] ?? ''), body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out`)));
    request.on('error', reject);
  });
}

/** `GET /metrics` of the chain's mxscreen. */
async function scrape(chain: Chain): Promise<string> {
  const endpoint = chain.mx.metricsEndpoint;
  assert.ok(endpoint, 'mxscreen_metrics_listen is set');
  const answer = await httpGet(endpoint.port, '/metrics');
  assert.equal(answer.status, 200);
  return answer.body;
}

/**
 * The value of the sample `name{labels}` in Prometheus text `text` (the label set must be
 * exactly `labels`, in any order), or undefined when there is no such sample.
 */
function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]);
    if (JSON.stringify(got.sort()) === want) return Number(match[3]);
  }
  return undefined;
}

/** Reply codes a client read, one per reply (the last line of each; `220-` teaser lines are part of the 220). */
function replyCodes(received: string): number[] {
  return received
    .split(/\r?\n/)
    .filter((line) => /^\d{3}( |$)/.test(line))
    .map((line) => Number(line.slice(0, 3)));
}

function tally(codes: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const code of codes) counts.set(code, (counts.get(code) ?? 0) + 1);
  return counts;
}

/** Every code the clients saw is counted exactly as often in mxscreen_smtp_replies_total{code}, and nothing else is. */
function assertRepliesCounted(text: string, clients: readonly ScriptedClient[]): void {
  const seen = tally(clients.flatMap((client) => replyCodes(client.received())));
  const counted = new Map<number, number>();
  for (const line of text.split('\n')) {
    const match = /^mxscreen_smtp_replies_total\{code="(\d{3})"\} (\d+)$/.exec(line);
    if (match) counted.set(Number(match[1]), Number(match[2]));
  }
  assert.deepEqual([...counted].sort(), [...seen].sort(), 'mxscreen_smtp_replies_total{code} = the replies the clients read');
}

async function command(client: ScriptedClient, line: string): Promise<number> {
  client.send(`${line}\r\n`);
  return (await client.readReply(WAIT)).code;
}

test('GET /metrics answers the registry in the Prometheus text format on mxscreen_metrics_listen, GET /healthz answers ok, anything else 404', async () => {
  const chain = await startChain(['mxscreen_metrics_listen = 127.0.0.1:0']);
  try {
    const port = chain.mx.metricsEndpoint!.port;
    assert.notEqual(port, 0, 'the ephemeral port is bound');
    const listen = chain.log.events('LISTEN').find((line) => line['path'] === '/metrics');
    assert.equal(listen?.['port'], port);
    const health = await httpGet(port, '/healthz');
    assert.deepEqual([health.status, health.type, health.body], [200, 'text/plain', 'ok\n']);
    const metrics = await httpGet(port, '/metrics?name=x');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
    assert.match(metrics.body, /^# HELP mxscreen_connections_total SMTP connections by screen verdict\.$/m);
    assert.match(metrics.body, /^# TYPE mxscreen_connections_total counter$/m);
    assert.equal(sample(metrics.body, 'mxscreen_stress_mode'), 0);
    // The embedded verdict cache: no Redis backend series, so MxscreenVerdictCacheBackendDown cannot fire here.
    assert.doesNotMatch(metrics.body, /^mxscreen_verdict_cache_backend_up /m);
    assert.equal((await httpGet(port, '/')).status, 404);
    assert.equal((await httpGet(port, '/metricsx')).status, 404);
  } finally {
    await chain.close();
  }
});

test('screen, policy, queue and delivery metrics move with what happens, with their labels (GET /metrics)', async () => {
  const tables = temporaryDirectory('mxscreen-metrics-');
  writeFileSync(join(tables, 'header_checks'), '/^Subject: reject me/ REJECT no thanks\n');
  const chain = await startChain([
    'mxscreen_metrics_listen = 127.0.0.1:0',
    // broken.dnsbl.test has no RFC 5782 test point: it fails its self-test at start.
    `postscreen_dnsbl_sites = ${ZONE}*2, broken.dnsbl.test`,
    `header_checks = regexp:${join(tables, 'header_checks')}`,
  ]);
  const clients: ScriptedClient[] = [];
  try {
    await chain.log.waitFor((line) => line.event === 'DNSBL health' && line['site'] === 'broken.dnsbl.test', WAIT);
    let text = await scrape(chain);
    assert.equal(sample(text, 'mxscreen_dnsbl_site_healthy', { site: 'broken.dnsbl.test' }), 0);
    assert.equal(sample(text, 'mxscreen_dnsbl_site_healthy', { site: ZONE }), 1);

    // A clean client: screened (cache miss, pregreet and DNSBL pass), PASS NEW, one message queued and delivered.
    const clean = await connectClient({ port: chain.port, localAddress: '127.0.60.1' });
    clients.push(clean);
    assert.equal((await clean.readReply(WAIT)).code, 220);
    text = await scrape(chain);
    assert.equal(sample(text, 'mxscreen_connections_total', { verdict: 'pass-new' }), 1);
    assert.equal(sample(text, 'mxscreen_screen_verdicts_total', { test: 'pregreet', result: 'pass', action: 'none' }), 1);
    assert.equal(sample(text, 'mxscreen_screen_verdicts_total', { test: 'dnsbl', result: 'pass', action: 'none' }), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_answers_total', { site: ZONE, result: 'not_listed' }), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_answers_total', { site: 'broken.dnsbl.test', result: 'not_listed' }), undefined, 'an unhealthy site is not asked');
    assert.equal(sample(text, 'mxscreen_dnsbl_query_seconds_count', { site: ZONE }), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_rank_count'), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_rank_bucket', { le: '0' }), 1, 'rank 0 observed');
    assert.equal(sample(text, 'mxscreen_screen_cache_lookups_total', { result: 'miss' }), 1);
    assert.equal(sample(text, 'mxscreen_screen_cache_entries'), 1);
    assert.equal(sample(text, 'mxscreen_connections_active', { stage: 'smtpd' }), 1);
    assert.equal(sample(text, 'mxscreen_connections_active', { stage: 'screen' }), 0);

    assert.equal(await command(clean, 'EHLO client.example'), 250);
    assert.equal(await command(clean, 'MAIL FROM:<alice@sender.test>'), 250);
    assert.equal(await command(clean, 'RCPT TO:<info@example.com>'), 250);
    assert.equal(await command(clean, 'RCPT TO:<nobody@example.com>'), 550);
    assert.equal(await command(clean, 'RCPT TO:<x@elsewhere.test>'), 554);
    assert.equal(await command(clean, 'DATA'), 354);
    assert.equal(await command(clean, 'Subject: hello\r\n\r\nhello\r\n.'), 250);
    const [delivered] = await waitForMessages(chain.mailbox, 1, WAIT);
    const queued = chain.log.events('queued')[0]!;
    await chain.log.waitFor((line) => line.event === 'removed' && line['queueId'] === queued['queueId'], WAIT);
    assert.equal(await command(clean, 'MAIL FROM:<alice@sender.test>'), 250);
    assert.equal(await command(clean, 'RCPT TO:<info@example.com>'), 250);
    assert.equal(await command(clean, 'DATA'), 354);
    assert.equal(await command(clean, 'Subject: reject me\r\n\r\nspam\r\n.'), 550);
    assert.equal(await command(clean, 'FOO'), 500);
    assert.equal(await command(clean, 'QUIT'), 221);
    await clean.waitForEnd(WAIT);
    await chain.log.waitFor((line) => line.event === 'DISCONNECT' && line['mail'] === 2, WAIT);

    text = await scrape(chain);
    const nexthop = `[127.0.0.1]:${chain.mailbox.port}`;
    assert.equal(sample(text, 'mxscreen_messages_queued_total'), 1);
    assert.equal(sample(text, 'mxscreen_message_bytes_total'), delivered!.body.length, 'the bytes written to the queue are the bytes delivered');
    assert.equal(sample(text, 'mxscreen_message_bytes_total'), queued['size']);
    assert.equal(sample(text, 'mxscreen_deliveries_total', { status: 'sent', nexthop }), 1);
    assert.equal(sample(text, 'mxscreen_delivery_seconds_count'), 1);
    assert.equal(sample(text, 'mxscreen_nexthop_up', { nexthop }), 1);
    assert.equal(sample(text, 'mxscreen_smtpd_restrictions_total', { list: 'relay', result: 'reject' }), 1);
    assert.equal(sample(text, 'mxscreen_content_checks_total', { action: 'reject' }), 1);
    assert.equal(sample(text, 'mxscreen_queue_messages', { queue: 'incoming' }), 0, 'taken from incoming/');
    assert.equal(sample(text, 'mxscreen_queue_messages', { queue: 'active' }), 0, 'removed from active/ after delivery');
    assert.equal(sample(text, 'mxscreen_connections_active', { stage: 'smtpd' }), 0);

    // The same client again: every test still valid.
    const again = await connectClient({ port: chain.port, localAddress: '127.0.60.1' });
    clients.push(again);
    assert.equal((await again.readReply(WAIT)).code, 220);
    assert.equal(await command(again, 'QUIT'), 221);
    // A client listed in the DNSBL: dropped with 521 by the screen stage.
    chain.dns.listDnsbl(ZONE, '127.0.60.2', ['127.0.0.2']);
    const listed = await connectClient({ port: chain.port, localAddress: '127.0.60.2' });
    clients.push(listed);
    assert.equal((await listed.waitForCode(521, WAIT)).code, 521);
    await listed.waitForEnd(WAIT);
    await again.waitForEnd(WAIT);
    await chain.log.waitFor((line) => line.event === 'DISCONNECT' && line['mail'] === 0, WAIT);

    text = await scrape(chain);
    assert.equal(sample(text, 'mxscreen_connections_total', { verdict: 'pass-old' }), 1);
    assert.equal(sample(text, 'mxscreen_screen_cache_lookups_total', { result: 'hit' }), 1);
    assert.equal(sample(text, 'mxscreen_connections_total', { verdict: 'drop' }), 1);
    assert.equal(sample(text, 'mxscreen_screen_verdicts_total', { test: 'dnsbl', result: 'fail', action: 'drop' }), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_answers_total', { site: ZONE, result: 'listed' }), 1);
    assert.equal(sample(text, 'mxscreen_dnsbl_rank_count'), 2);
    assert.equal(sample(text, 'mxscreen_dnsbl_rank_bucket', { le: '1' }), 1, 'rank 2 is above the le="1" bucket');
    assert.equal(sample(text, 'mxscreen_dnsbl_rank_bucket', { le: '2' }), 2);
    // Every reply the three clients read is counted by its code: the screen's 521 and
    // smtp-server's own (220 greeting, EHLO's 250, 221) as well as the policy stage's (500 for an unknown command).
    assertRepliesCounted(text, clients);
    assert.equal(sample(text, 'mxscreen_smtp_replies_total', { code: '521' }), 1);
    assert.equal(sample(text, 'mxscreen_smtp_replies_total', { code: '221' }), 2);
    assert.equal(sample(text, 'mxscreen_smtp_replies_total', { code: '500' }), 1);
  } finally {
    for (const client of clients) await client.close();
    await chain.close();
  }
});

test('mxscreen_smtp_replies_total counts every reply, smtp-server\'s own and ours: EHLO, NOOP, RSET, HELP and an unknown command (500), syntax errors, and the idle-timeout 421', async () => {
  const policy = await startPolicy({ mainCf: 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com\nsmtpd_timeout = 1s' });
  const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
  try {
    assert.equal((await client.readReply(WAIT)).code, 220);
    assert.equal(await command(client, 'EHLO client.example'), 250);
    assert.equal(await command(client, 'NOOP'), 250);
    assert.equal(await command(client, 'RSET'), 250);
    assert.equal(await command(client, 'HELP'), 500);
    assert.equal(await command(client, 'FOO'), 500);
    assert.equal(await command(client, 'RCPT TO:<joe@example.com>'), 503);
    // Now idle: smtp-server closes the session after smtpd_timeout with its own 421.
    assert.equal((await client.readReply(WAIT)).code, 421);
    await client.waitForEnd(WAIT);
    const text = await policy.metrics.registry.metrics();
    assertRepliesCounted(text, [client]);
    assert.equal(sample(text, 'mxscreen_smtp_replies_total', { code: '421' }), 1);
    assert.equal(sample(text, 'mxscreen_smtp_replies_total', { code: '250' }), 3);
  } finally {
    await client.close();
    await policy.close();
  }
});

test('stress mode and open connections in the screen stage: mxscreen_stress_mode 1 at the pre-queue limit, 0 again when the clients hang up (GET /metrics)', async () => {
  // postscreen_pre_queue_limit = 2: stress mode at ceil(90%) = 2 screened connections, off at floor(70%) = 1.
  const chain = await startChain(['mxscreen_metrics_listen = 127.0.0.1:0', 'postscreen_pre_queue_limit = 2', 'postscreen_greet_wait = 30s']);
  const clients: ScriptedClient[] = [];
  try {
    for (const address of ['127.0.61.1', '127.0.61.2']) {
      const client = await connectClient({ port: chain.port, localAddress: address });
      clients.push(client);
      assert.match(await client.readLine(WAIT), /^220-/, 'in the greet wait');
    }
    await chain.log.waitFor((line) => line.event === 'STRESS' && line['stress'] === true, WAIT);
    let text = await scrape(chain);
    assert.equal(sample(text, 'mxscreen_stress_mode'), 1);
    assert.equal(sample(text, 'mxscreen_connections_active', { stage: 'screen' }), 2);
    for (const client of clients) await client.close();
    await chain.log.waitFor((line) => line.event === 'STRESS' && line['stress'] === false, WAIT);
    await chain.log.waitFor(() => chain.log.events('HANGUP').length === 2, WAIT);
    text = await scrape(chain);
    assert.equal(sample(text, 'mxscreen_stress_mode'), 0);
    assert.equal(sample(text, 'mxscreen_connections_active', { stage: 'screen' }), 0);
    assert.equal(sample(text, 'mxscreen_connections_total', { verdict: 'hangup' }), 2);
  } finally {
    for (const client of clients) await client.close();
    await chain.close();
  }
});

test('queue gauges and counters: a deferred message in mxscreen_queue_messages{queue="deferred"}, deliveries by status and nexthop, bounces by reason, mxscreen_nexthop_up', async () => {
  await withWorld(async (world) => {
    const nexthop = `[127.0.0.1]:${world.mailbox.port}`;
    await world.manager.start();
    await world.mailbox.down();
    world.manager.kick(await world.queue(['bob@example.com']));
    await world.manager.whenIdle();
    world.clock.advance(2 * MINUTE); // two queue runs count the queues; the message waits for its backoff
    await world.manager.whenIdle();
    let text = await world.metrics.registry.metrics();
    assert.equal(sample(text, 'mxscreen_queue_messages', { queue: 'deferred' }), 1);
    assert.equal(sample(text, 'mxscreen_queue_messages', { queue: 'incoming' }), 0);
    // mxscreen_queue_oldest_seconds: queue-delivery-features.test.ts. Not here: the age comes from
    // the queue id, monotonic per process, and the real-clock tests above made ids later than this world's clock.
    assert.equal(sample(text, 'mxscreen_deliveries_total', { status: 'deferred', nexthop }), 1);
    assert.equal(sample(text, 'mxscreen_nexthop_up', { nexthop }), 0);
    assert.equal(sample(text, 'mxscreen_delivery_seconds_count'), 1);

    await world.mailbox.restart();
    world.manager.kick(await world.queue(['carol@bounce.test'])); // transport error: → a bounce
    world.clock.advance(3 * MINUTE); // bob's backoff is over
    await world.manager.whenIdle();
    text = await world.metrics.registry.metrics();
    assert.equal(sample(text, 'mxscreen_deliveries_total', { status: 'sent', nexthop }), 2, "bob's message and the notice to the sender about carol");
    assert.equal(sample(text, 'mxscreen_bounces_total', { reason: 'transport' }), 1);
    assert.equal(sample(text, 'mxscreen_nexthop_up', { nexthop }), 1);
    assert.equal(sample(text, 'mxscreen_queue_messages', { queue: 'deferred' }), 0);
    assert.equal(sample(text, 'mxscreen_messages_queued_total'), 3, 'two messages and one notice');
  }, { queueRunDelay: MINUTE });
});

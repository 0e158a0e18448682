// Two mxscreen instances (mx1, mx2) sharing one real redis-server through
// postscreen_cache_map = redis:FILE (README "Sharing the verdict cache"): a client that passed
// on one is PASS OLD on the other; Redis killed, slow or holding a hostile value never
// costs a client more than the read deadline and never lets one PASS; sharing resumes after
// a restart; the password never shows in logs or metrics. Skips only where redis-server is
// absent and CI is unset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { startChain, waitForMessages, type Chain } from './harness.js';
import { RedisServer, redisSkip } from '../fakes/redis-server.js';
import { command as commandWithin, connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { until } from '../fakes/wait-until.js';

/** One command line; the last line of its reply within 5000 ms. */
const command = (client: ScriptedClient, line: string): Promise<string> => commandWithin(client, line, 5000);

const PASSWORD = 's3cret-Pa55';
const skip = redisSkip();

/** A Redis client file in its own directory: url with the password, a 50 ms read deadline. */
function clientFile(url: string, extra = ''): { file: string; remove: () => void } {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-redis-cf-'));
  const file = join(directory, 'postscreen_cache.cf');
  writeFileSync(file, `# shared verdict cache\nurl = ${url}\ntimeout = 50ms\nconnect_timeout = 500ms\n${extra}`);
  return { file, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

/** mx1 and mx2 on one cache file; `mx2Extra` main.cf lines for mx2 only. */
async function startPair(file: string, mx2Extra: readonly string[] = []): Promise<{ mx1: Chain; mx2: Chain; close: () => Promise<void> }> {
  const mx1 = await startChain([`postscreen_cache_map = redis:${file}`]);
  const mx2 = await startChain(['myhostname = mx2.example.net', `postscreen_cache_map = redis:${file}`, ...mx2Extra]);
  return { mx1, mx2, close: async () => void (await Promise.all([mx1.close(), mx2.close()])) };
}

async function upGauge(chain: Chain): Promise<number> {
  return (await chain.mx.metrics.verdictCacheBackendUp.get()).values[0]?.value ?? -1;
}

async function backendErrors(chain: Chain, reason: string): Promise<number> {
  return (await chain.mx.metrics.verdictCacheBackendErrors.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0;
}

/** Connects from `client` to `chain`'s first SMTP address; the first line and how long it took, ms. */
async function firstLine(chain: Chain, client: string): Promise<{ socket: ScriptedClient; line: string; ms: number }> {
  const bound = chain.mx.smtp[0]!;
  const started = performance.now();
  const socket = await connectClient({ host: bound.address, port: bound.port, localAddress: client });
  const line = await socket.readLine(5000);
  return { socket, line, ms: performance.now() - started };
}

/** Greeting (after the teaser, if any), EHLO, MAIL, RCPT, and DATA when RCPT got 250; then QUIT. */
async function sendMail(client: ScriptedClient, firstLineSeen: string): Promise<{ rcpt: string; data: string | undefined }> {
  if (firstLineSeen.startsWith('220-')) assert.equal((await client.readReply(5000)).code, 220);
  assert.match(await command(client, 'EHLO client.example'), /^250 /);
  assert.match(await command(client, 'MAIL FROM:<alice@sender.test>'), /^250 /);
  const rcpt = await command(client, 'RCPT TO:<info@example.com>');
  let data: string | undefined;
  if (rcpt.startsWith('250')) {
    assert.match(await command(client, 'DATA'), /^354 /);
    data = await command(client, 'Subject: shared cache\r\n\r\nhello\r\n.');
  }
  await command(client, 'QUIT');
  return { rcpt, data };
}

/** A client passes on `chain`: teaser, greet wait, 220, QUIT; then its record is in Redis. */
async function passNew(chain: Chain, client: string, redis: { get(key: string): Promise<unknown> }): Promise<void> {
  const { socket, line } = await firstLine(chain, client);
  assert.match(line, /^220-/, 'a new client sees the teaser');
  assert.equal((await socket.readReply(5000)).code, 220);
  await command(socket, 'QUIT');
  await chain.log.waitFor((entry) => entry.event === 'PASS NEW' && String(entry.client).startsWith(`[${client}]`));
  const deadline = Date.now() + 5000;
  while ((await redis.get(`postscreen:${client}`)) === null) {
    assert.ok(Date.now() < deadline, `the record of ${client} reached Redis`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function assertNoSecret(...chains: Chain[]): void {
  for (const chain of chains) {
    const text = JSON.stringify(chain.log.lines);
    assert.ok(!text.includes(PASSWORD), 'the password never appears in a log line');
  }
}

async function assertNoSecretInMetrics(...chains: Chain[]): Promise<void> {
  for (const chain of chains) assert.ok(!(await chain.mx.metrics.registry.metrics()).includes(PASSWORD), 'nor in the metrics');
}

test('a client that passed on mx1 is PASS OLD on mx2 at its next connection: no teaser, no greet wait', { skip }, async () => {
  const redisServer = await RedisServer.start(['--requirepass', PASSWORD]);
  const cf = clientFile(redisServer.url(`:${PASSWORD}@`));
  const redis = createClient({ url: redisServer.url(`:${PASSWORD}@`) });
  redis.on('error', () => undefined);
  await redis.connect();
  const pair = await startPair(cf.file);
  try {
    const { mx1, mx2 } = pair;
    await mx1.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    await mx2.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    await passNew(mx1, '127.0.64.1', redis);
    const value = await redis.get('postscreen:127.0.64.1');
    assert.match(String(value), /^\d+;\d+;0;0;0$/, "postscreen's record shape: pregreet;dnsbl;deep tests");
    const ttl = await redis.pTTL('postscreen:127.0.64.1');
    assert.ok(ttl > 7 * 86_400_000, `the key outlives the last expiry by postscreen_cache_retention_time (PTTL ${ttl})`);

    const { socket, line, ms } = await firstLine(mx2, '127.0.64.1');
    assert.equal(line, '220 mx2.example.net ESMTP mxscreen', 'no teaser on mx2');
    assert.ok(ms < 150, `no greet wait (${ms.toFixed(1)} ms, the greet wait is 150 ms)`);
    const sent = await sendMail(socket, line);
    assert.match(String(sent.data), /^250 2\.0\.0 Ok: queued as /);
    assert.equal(mx2.log.events('PASS OLD').length, 1);
    assert.equal(mx2.log.events('PASS NEW').length, 0);
    assertNoSecret(mx1, mx2);
    await assertNoSecretInMetrics(mx1, mx2);
  } finally {
    await pair.close();
    redis.destroy();
    await redisServer.stop();
    cf.remove();
  }
});

test('Redis killed mid-test, then restarted: both hosts keep accepting mail with their local caches, log each change of state once, and sharing resumes', { skip }, async () => {
  const redisServer = await RedisServer.start(['--requirepass', PASSWORD]);
  const cf = clientFile(redisServer.url(`:${PASSWORD}@`));
  const pair = await startPair(cf.file);
  try {
    const { mx1, mx2 } = pair;
    await mx1.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    await mx2.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    assert.equal(await upGauge(mx1), 1);

    await redisServer.kill();
    await mx1.log.waitFor((line) => line.event === 'CACHE BACKEND DOWN');
    await mx2.log.waitFor((line) => line.event === 'CACHE BACKEND DOWN');
    assert.equal(await upGauge(mx1), 0);
    assert.equal(await upGauge(mx2), 0);
    const downText = await mx1.mx.metrics.registry.metrics();
    assert.match(downText, /^mxscreen_verdict_cache_backend_up 0$/m);
    assert.match(downText, /^mxscreen_verdict_cache_backend_errors_total\{reason="connection"\} [1-9]/m);
    // Both keep screening and accepting mail; a client that passes on mx1 is PASS OLD on mx1 (local cache).
    for (const chain of [mx1, mx2]) {
      const { socket, line, ms } = await firstLine(chain, '127.0.64.2');
      assert.match(line, /^220-/);
      assert.ok(ms < 100, `the teaser comes at once with Redis down (${ms.toFixed(1)} ms)`);
      assert.match(String((await sendMail(socket, line)).data), /^250 2\.0\.0 Ok: queued as /);
    }
    const again = await firstLine(mx1, '127.0.64.2');
    assert.match(again.line, /^220 /, 'PASS OLD from the local cache while Redis is down');
    await command(again.socket, 'QUIT');
    await waitForMessages(mx1.mailbox, 1, 5000);
    await waitForMessages(mx2.mailbox, 1, 5000);

    await redisServer.restart();
    await until('both hosts see Redis up again', () => mx1.log.events('CACHE BACKEND UP').length === 2 && mx2.log.events('CACHE BACKEND UP').length === 2, 10_000);
    assert.equal(await upGauge(mx1), 1);
    assert.equal(await upGauge(mx2), 1);
    assert.match(await mx2.mx.metrics.registry.metrics(), /^mxscreen_verdict_cache_backend_up 1$/m);
    // Reconnect attempts fail many times while Redis is away: still one DOWN line per change of state.
    assert.equal(mx1.log.events('CACHE BACKEND DOWN').length, 1);
    assert.equal(mx2.log.events('CACHE BACKEND DOWN').length, 1);
    assert.ok((await backendErrors(mx1, 'connection')) >= 1);

    const redis = createClient({ url: redisServer.url(`:${PASSWORD}@`) });
    redis.on('error', () => undefined);
    await redis.connect();
    try {
      await passNew(mx1, '127.0.64.3', redis);
      const { socket, line } = await firstLine(mx2, '127.0.64.3');
      assert.equal(line, '220 mx2.example.net ESMTP mxscreen', 'sharing resumed: PASS OLD on mx2');
      await command(socket, 'QUIT');
    } finally {
      redis.destroy();
    }
    assertNoSecret(mx1, mx2);
  } finally {
    await pair.close();
    await redisServer.stop();
    cf.remove();
  }
});

test('a slow Redis (DEBUG SLEEP) costs a new client at most the read deadline: a miss, the tests run, and the store is still shared afterwards', { skip }, async () => {
  const redisServer = await RedisServer.start();
  const cf = clientFile(redisServer.url());
  const mx1 = await startChain([`postscreen_cache_map = redis:${cf.file}`]);
  const redis = createClient({ url: redisServer.url() });
  redis.on('error', () => undefined);
  await redis.connect();
  try {
    await mx1.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    const sleeper = redis.duplicate();
    sleeper.on('error', () => undefined);
    await sleeper.connect();
    const sleeping = sleeper.sendCommand(['DEBUG', 'SLEEP', '1']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { socket, line, ms } = await firstLine(mx1, '127.0.64.4');
    assert.match(line, /^220-/, 'a miss: the tests run');
    assert.ok(ms < 400, `the teaser within the 50 ms read deadline plus scheduling, long before Redis wakes (${ms.toFixed(1)} ms)`);
    assert.equal((await socket.readReply(5000)).code, 220);
    await command(socket, 'QUIT');
    await mx1.log.waitFor((entry) => entry.event === 'PASS NEW');
    assert.ok((await backendErrors(mx1, 'timeout')) >= 1, 'the missed deadline is counted');
    await sleeping;
    sleeper.destroy();
    assert.equal(mx1.log.events('CACHE BACKEND DOWN').length, 0, 'slow is not down');
  } finally {
    redis.destroy();
    await mx1.close();
    await redisServer.stop();
    cf.remove();
  }
});

test('a server that accepts and never answers: clients are screened at once with the local cache', { skip }, async () => {
  const held: Socket[] = [];
  const silent = createServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const cf = clientFile(`redis://127.0.0.1:${(silent.address() as { port: number }).port}/0`);
  const mx1 = await startChain([`postscreen_cache_map = redis:${cf.file}`]);
  try {
    await until('the client tried to connect', () => held.length > 0);
    const { socket, line, ms } = await firstLine(mx1, '127.0.64.5');
    assert.match(line, /^220-/);
    assert.ok(ms < 400, `no stall (${ms.toFixed(1)} ms)`);
    assert.equal((await socket.readReply(5000)).code, 220);
    await command(socket, 'QUIT');
    await mx1.log.waitFor((entry) => entry.event === 'PASS NEW');
    assert.equal(await upGauge(mx1), 0);
  } finally {
    await mx1.close();
    for (const socket of held) socket.destroy();
    silent.close();
    cf.remove();
  }
});

test('a hostile value in Redis is a miss: the client is tested (never PASS OLD) and the value is replaced by its real record', { skip }, async () => {
  const redisServer = await RedisServer.start();
  const cf = clientFile(redisServer.url());
  const mx2 = await startChain(['myhostname = mx2.example.net', `postscreen_cache_map = redis:${cf.file}`]);
  const redis = createClient({ url: redisServer.url() });
  redis.on('error', () => undefined);
  await redis.connect();
  try {
    await mx2.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    const forever = Date.now() + 100 * 365 * 86_400_000;
    const hostile = [`${forever};${forever};0;0;0`, 'PASS', '{"pregreet":9e15,"dnsbl":9e15}', `${forever};${forever}`];
    for (const [index, value] of hostile.entries()) {
      const client = `127.0.64.${10 + index}`;
      await redis.set(`postscreen:${client}`, value);
      const { socket, line } = await firstLine(mx2, client);
      assert.match(line, /^220-/, `${JSON.stringify(value)} is no PASS`);
      assert.equal((await socket.readReply(5000)).code, 220);
      await command(socket, 'QUIT');
      await mx2.log.waitFor((entry) => entry.event === 'PASS NEW' && String(entry.client).startsWith(`[${client}]`));
    }
    assert.equal(mx2.log.events('PASS OLD').length, 0);
    assert.equal(await backendErrors(mx2, 'value'), hostile.length);
    const deadline = Date.now() + 5000;
    while (!/^\d+;\d+;0;0;0$/.test(String(await redis.get('postscreen:127.0.64.11'))) || String(await redis.get('postscreen:127.0.64.11')).startsWith(String(forever))) {
      assert.ok(Date.now() < deadline, 'the hostile value was replaced by the real record');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    redis.destroy();
    await mx2.close();
    await redisServer.stop();
    cf.remove();
  }
});

test('the backup-MX recipe: mx2 with postscreen_allowlist_interfaces = !its address, static:all never admits a new client, and admits it PASS OLD once mx1 passed it', { skip }, async () => {
  const redisServer = await RedisServer.start(['--requirepass', PASSWORD]);
  const cf = clientFile(redisServer.url(`:${PASSWORD}@`));
  const redis = createClient({ url: redisServer.url(`:${PASSWORD}@`) });
  redis.on('error', () => undefined);
  await redis.connect();
  const pair = await startPair(cf.file, ['mxscreen_listen = 127.0.0.22:0', 'postscreen_allowlist_interfaces = !127.0.0.22, static:all']);
  const BOT = '127.0.65.1';
  try {
    const { mx1, mx2 } = pair;
    await mx2.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    await mx1.log.waitFor((line) => line.event === 'CACHE BACKEND UP');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const { socket, line } = await firstLine(mx2, BOT);
      const sent = await sendMail(socket, line);
      assert.equal(sent.rcpt, '450 4.3.2 Service currently unavailable', `attempt ${attempt}: mx2 refuses a client mx1 does not know`);
      await socket.closed;
    }
    assert.equal(mx2.log.events('ALLOWLIST VETO').length, 2);
    assert.equal(mx2.log.lines.filter((line) => line.msg?.startsWith('disconnect from')).length, 0, 'never handed to smtpd');
    assert.equal(await redis.get(`postscreen:${BOT}`), null, 'mx2 cached nothing');

    await passNew(mx1, BOT, redis);
    const { socket, line } = await firstLine(mx2, BOT);
    assert.equal(line, '220 mx2.example.net ESMTP mxscreen');
    const sent = await sendMail(socket, line);
    assert.match(String(sent.data), /^250 2\.0\.0 Ok: queued as /);
    assert.equal(mx2.log.events('PASS OLD').length, 1);
    assert.equal(mx2.log.events('ALLOWLIST VETO').length, 2, 'no veto for a PASS OLD client');
    const [delivered] = await waitForMessages(mx2.mailbox, 1, 5000);
    assert.equal(delivered!.sender, 'alice@sender.test');
    assertNoSecret(mx1, mx2);
  } finally {
    await pair.close();
    redis.destroy();
    await redisServer.stop();
    cf.remove();
  }
});

test('reload: a bad Redis client file keeps the running configuration (RELOAD FAILED at file:line); a changed good one takes effect after a restart', async () => {
  const port = (await import('../fakes/redis-server.js')).freePort;
  const cf = clientFile(`redis://:${PASSWORD}@127.0.0.1:${await port()}/0`);
  const mx1 = await startChain([`postscreen_cache_map = redis:${cf.file}`]);
  try {
    writeFileSync(cf.file, `url = redis://:${PASSWORD}@127.0.0.1:1/0\ntimeout = soon\n`);
    assert.equal(await mx1.mx.reload(), false);
    const failed = mx1.log.events('RELOAD FAILED');
    assert.equal(failed.length, 1);
    assert.deepEqual(failed[0]!.problems, [`${cf.file}:2: timeout: bad time value "soon" (expected a number with optional unit ms, s, m, h, d or w)`]);
    writeFileSync(cf.file, `url = redis://:${PASSWORD}@127.0.0.1:1/0\ntimeout = 20ms\n`);
    assert.equal(await mx1.mx.reload(), true);
    const warned = mx1.log.events('RELOAD').filter((line) => line.level === 'warn');
    assert.deepEqual(warned.map((line) => line.msg), [`${cf.file} changed: takes effect after a restart`]);
    assertNoSecret(mx1);
  } finally {
    await mx1.close();
    cf.remove();
  }
});

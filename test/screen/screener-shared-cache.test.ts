// The screener with a verdict cache whose lookup answers later (a shared store,
// shared-verdict-cache.ts): the client waits silently for the answer, then is PASS OLD or
// tested; a client that hangs up meanwhile is a HANGUP with its slot and gauge released.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { systemClock } from '../../src/clock.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SmtpListener } from '../../src/screen/listener.js';
import { Screener } from '../../src/screen/screener.js';
import type { ScreenSettings } from '../../src/screen/screen-settings.js';
import type { CacheRecord, CachedTest, VerdictCache } from '../../src/screen/verdict-cache.js';
import { connectClient } from '../fakes/scripted-client.js';
import { until } from '../fakes/wait-until.js';
import { manualSettings } from './manual-screen.js';

const DAY = 86_400_000;

/** main.cf defaults (no DNSBL sites, no deep tests: only the pregreet test is cached), a short greet wait. */
const SETTINGS: ScreenSettings = manualSettings({ greetWaitMs: 150, greetBanner: 'mx.screen.test ESMTP' });

/** A cache whose every lookup waits until the test answers it. */
class LaterCache implements VerdictCache {
  readonly asked: { ip: string; needed: readonly CachedTest[]; answer: (record: CacheRecord | undefined) => void }[] = [];
  readonly size = 0;
  get(): CacheRecord | undefined {
    return undefined;
  }
  lookup(ip: string, needed: readonly CachedTest[]): Promise<CacheRecord | undefined> {
    return new Promise((resolve) => this.asked.push({ ip, needed, answer: resolve }));
  }
  set(): void {}
}

async function start() {
  const events: string[] = [];
  const log = createLogger({ destination: { write: (line: string) => void events.push(String((JSON.parse(line) as { event?: string }).event)) } });
  const metrics = new Metrics({ processMetrics: false });
  const cache = new LaterCache();
  const handoffs: Socket[] = [];
  const screener = new Screener(SETTINGS, {
    resolver: createNodeResolver({ servers: ['127.0.0.1:9'], timeoutMs: 100, tries: 1 }),
    clock: systemClock,
    log,
    metrics,
    cache,
    handoff(socket) {
      socket.on('error', () => undefined);
      socket.resume();
      socket.end('220 policy\r\n');
      handoffs.push(socket);
    },
  });
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => screener.screen(socket));
  const [bound] = await listener.listen();
  const active = async () => (await metrics.activeConnections.get()).values.find((value) => value.labels.stage === 'screen')?.value ?? 0;
  return { port: bound!.port, events, cache, handoffs, active, close: () => listener.close() };
}

test('the client waits silently for a late lookup; a record with every test valid is then PASS OLD', async () => {
  const screen = await start();
  try {
    const client = await connectClient({ port: screen.port, localAddress: '127.0.70.1' });
    await until('the lookup', () => screen.cache.asked.length === 1);
    assert.deepEqual(screen.cache.asked[0]!.needed, ['pregreet']);
    await assert.rejects(client.readLine(100), 'nothing is sent while the lookup waits');
    screen.cache.asked[0]!.answer({ pregreet: Date.now() + DAY });
    assert.equal(await client.readLine(2000), '220 policy');
    assert.ok(screen.events.includes('PASS OLD'));
    await client.close();
  } finally {
    await screen.close();
  }
});

test('a late miss starts the tests (the teaser); a client that closes during the lookup is a HANGUP, never handed over, and leaves the gauge', async () => {
  const screen = await start();
  try {
    const client = await connectClient({ port: screen.port, localAddress: '127.0.70.2' });
    await until('the lookup', () => screen.cache.asked.length === 1);
    screen.cache.asked[0]!.answer(undefined);
    assert.equal(await client.readLine(2000), '220-mx.screen.test ESMTP');
    await client.close();

    const leaving = connect({ port: screen.port, host: '127.0.0.1', localAddress: '127.0.70.3' });
    leaving.on('error', () => undefined);
    await once(leaving, 'connect');
    await until('the second lookup', () => screen.cache.asked.length === 2);
    leaving.end(); // FIN: no 'error' on the server side, only a closed socket
    await new Promise((resolve) => setTimeout(resolve, 50)); // the reset reaches the server
    screen.cache.asked[1]!.answer({ pregreet: Date.now() + DAY });
    await until('HANGUP', () => screen.events.includes('HANGUP'));
    assert.ok(!screen.events.includes('PASS OLD'), 'a client that left is not PASS OLD');
    assert.equal(screen.handoffs.length, 0, 'never handed over');
    assert.equal(await screen.active(), 0, 'the screen gauge is back to 0');
  } finally {
    await screen.close();
  }
});

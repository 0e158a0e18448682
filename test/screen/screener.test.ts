import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { systemClock, type Clock } from '../../src/clock.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { parseAccessList } from '../../src/screen/access-list.js';
import { parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';
import { SmtpListener } from '../../src/screen/listener.js';
import { Screener } from '../../src/screen/screener.js';
import type { ScreenSettings } from '../../src/screen/screen-settings.js';
import { LruVerdictCache } from '../../src/screen/verdict-cache.js';
import type { ScreenVerdict } from '../../src/screen-verdict.js';
import { openTable } from '../../src/tables/open-table.js';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { ManualClock } from '../queue/manual-clock.js';

const ZONE = 'zen.dnsbl.test';
const BANNER = 'mx.screen.test ESMTP mxscreen';
const GREETING = '220 mx.screen.test ESMTP policy';
/** smtpd_banner as postscreen's own engine sends it (distinct from the policy stage's GREETING). */
const ENGINE_BANNER = 'mx.screen.test ESMTP engine';
/** postscreen_allowlist_interfaces that vetoes the test listener's address 127.0.0.1. */
const VETO_LOOPBACK = { patterns: ['!127.0.0.1', '0.0.0.0/0'], tables: [] };

let dns: FakeDns;
let directory: string;
before(async () => {
  dns = await startDnsServer();
  directory = mkdtempSync(join(tmpdir(), 'mxscreen-screener-'));
  writeFileSync(join(directory, 'access.cidr'), ['# test access list', '127.0.30.1 permit', '127.0.30.2 reject', '127.0.30.0/24 dunno', ''].join('\n'));
});
after(async () => {
  await dns.close();
  rmSync(directory, { recursive: true, force: true });
});

function sites(...texts: string[]): DnsblSite[] {
  return texts.map((text) => {
    const site = parseDnsblSite(text);
    if ('error' in site) throw new Error(site.error);
    return site;
  });
}

function settings(overrides: Partial<ScreenSettings> = {}): ScreenSettings {
  return {
    greetWaitMs: 150,
    greetBanner: BANNER,
    greetAction: 'enforce',
    greetTtlMs: 86_400_000,
    dnsblSites: [],
    dnsblThreshold: 1,
    dnsblAction: 'enforce',
    dnsblTimeoutMs: 500,
    dnsblMinTtlMs: 60_000,
    dnsblMaxTtlMs: 3_600_000,
    denylistAction: 'drop',
    accessList: { elements: [] },
    mynetworks: { patterns: [], tables: [] },
    dnsblAllowlistThreshold: 0,
    dnsblReplyMap: [],
    allowlistInterfaces: { patterns: ['0.0.0.0/0', '::/0'], tables: [] },
    engine: { banner: ENGINE_BANNER, hostname: 'mx.screen.test', messageSizeLimit: 10_240_000, disableVrfy: false, heloRequired: false },
    limits: { clientConnectionCountLimit: 50, preQueueLimit: 100, postQueueLimit: 100 },
    proxyProtocol: false,
    proxyTimeoutMs: 1000,
    deepTests: new Set(),
    deepActions: { pipelining: 'enforce', non_smtp_command: 'drop', bare_newline: 'ignore' },
    deepTtlMs: { pipelining: 30 * 86_400_000, non_smtp_command: 30 * 86_400_000, bare_newline: 30 * 86_400_000 },
    forbiddenCommands: ['CONNECT', 'GET', 'POST'],
    commandCountLimit: 20,
    commandTimeLimitMs: 300_000,
    lineLengthLimit: 2048,
    myhostname: 'mx.screen.test',
    ...overrides,
  };
}

interface LogLine {
  event?: string;
  msg?: string;
  [field: string]: unknown;
}

interface Handoff {
  socket: Socket;
  verdict: ScreenVerdict;
  /** Bytes the policy side read after the handover. */
  data: () => string;
}

/**
 * A screener on a loopback listener; the handoff answers GREETING like the policy stage.
 * With a ManualClock the greet wait and every other deadline move only when the test says.
 */
async function startScreen(initial: ScreenSettings, clock: Clock = systemClock) {
  const logs: LogLine[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const metrics = new Metrics();
  const cache = new LruVerdictCache({ maxEntries: 100, clock });
  const handoffs: Handoff[] = [];
  const sockets: Socket[] = [];
  let wake: (() => void) | undefined;
  const screener = new Screener(initial, {
    resolver: createNodeResolver({ servers: [dns.server], timeoutMs: 300, tries: 1 }),
    clock,
    log,
    metrics,
    cache,
    handoff(socket, verdict) {
      let data = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
      socket.resume(); // the screener hands the socket over paused (smtp-server's pipe() resumes it)
      socket.write(`${GREETING}\r\n`);
      handoffs.push({ socket, verdict, data: () => data });
      wake?.();
    },
  });
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => {
    sockets.push(socket);
    screener.screen(socket);
  });
  const [bound] = await listener.listen();
  assert.ok(bound);
  const clients: ScriptedClient[] = [];
  return {
    port: bound.port,
    screener,
    logs,
    metrics,
    cache,
    handoffs,
    events: () => logs.map((line) => line.event).filter(Boolean),
    async connect(localAddress: string) {
      const client = await connectClient({ port: bound.port, localAddress });
      clients.push(client);
      return client;
    },
    async nextHandoff(count: number, timeoutMs = 1000): Promise<Handoff> {
      const deadline = Date.now() + timeoutMs;
      while (handoffs.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`no handoff #${count} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return handoffs[count - 1]!;
    },
    async close() {
      await listener.close();
      for (const client of clients) await client.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

async function connections(metrics: Metrics, verdict: string): Promise<number> {
  const { values } = await metrics.connections.get();
  return values.find((v) => v.labels.verdict === verdict)?.value ?? 0;
}

async function activeConnections(metrics: Metrics, stage: string): Promise<number> {
  const { values } = await metrics.activeConnections.get();
  return values.find((v) => v.labels.stage === stage)?.value ?? 0;
}

/** The first log line matching `match`, waiting (bounded) for it to be written. */
async function waitForLog(screen: { logs: LogLine[] }, match: (line: LogLine) => boolean, timeoutMs = 2000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = screen.logs.find(match);
    if (line) return line;
    if (Date.now() > deadline) assert.fail('no such log line within the time limit');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a clean client gets the teaser, waits the greet wait, and passes (PASS NEW)', async () => {
  const clock = new ManualClock();
  const screen = await startScreen(settings(), clock);
  try {
    const client = await screen.connect('127.0.31.1');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    clock.advance(149);
    assert.equal(screen.handoffs.length, 0, 'still in the greet wait 1 ms before its end');
    clock.advance(1);
    assert.equal(await client.readLine(1000), GREETING);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'pass-new');
    assert.deepEqual(verdict.client, { address: '127.0.31.1', port: client.localPort });
    assert.deepEqual(screen.events(), ['CONNECT', 'PASS NEW']);
    assert.equal(screen.logs[1]?.msg, `PASS NEW [127.0.31.1]:${client.localPort}`);
    assert.match(String(screen.logs[0]?.msg), /^CONNECT from \[127\.0\.31\.1\]:\d+ to \[127\.0\.0\.1\]:\d+$/);
    assert.ok(screen.cache.get('127.0.31.1')?.pregreet);
  } finally {
    await screen.close();
  }
});

test('PASS NEW, then the same client is PASS OLD: no teaser, no greet wait', async () => {
  const clock = new ManualClock();
  const screen = await startScreen(settings({ greetWaitMs: 200 }), clock);
  try {
    const first = await screen.connect('127.0.31.2');
    assert.equal(await first.readLine(1000), `220-${BANNER}`);
    clock.advance(200);
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'pass-new');
    // From here the clock stands still: a greet wait would never end.
    const second = await screen.connect('127.0.31.2');
    assert.equal(await second.readLine(1000), GREETING, 'no greet wait');
    assert.equal((await screen.nextHandoff(2)).verdict.outcome, 'pass-old');
    assert.deepEqual(screen.events(), ['CONNECT', 'PASS NEW', 'CONNECT', 'PASS OLD']);
  } finally {
    await screen.close();
  }
});

test('pregreet + enforce: PREGREET logged, handed over with 550 5.5.1, early bytes consumed, later bytes kept', async () => {
  const screen = await startScreen(settings({ greetAction: 'enforce' }));
  try {
    const client = await screen.connect('127.0.32.1');
    client.send('EHLO early.bird\r\n');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    assert.equal(await client.readLine(1000), GREETING);
    const handoff = await screen.nextHandoff(1);
    assert.equal(handoff.verdict.outcome, 'enforce');
    assert.deepEqual(handoff.verdict.enforce, { test: 'pregreet', reply: { code: 550, enhanced: '5.5.1', text: 'Protocol error' } });
    const pregreet = screen.logs.find((line) => line.event === 'PREGREET');
    assert.match(String(pregreet?.msg), /^PREGREET 17 after \d+\.\d\d from \[127\.0\.32\.1\]:\d+: EHLO early\.bird\\r\\n$/);
    client.send('QUIT\r\n');
    for (let i = 0; i < 400 && handoff.data() === ''; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(handoff.data(), 'QUIT\r\n');
    assert.equal(screen.cache.get('127.0.32.1'), undefined, 'a failure is not cached');
  } finally {
    await screen.close();
  }
});

test('pregreet + drop: 521 5.5.1 Protocol error, then the connection is closed', async () => {
  const screen = await startScreen(settings({ greetAction: 'drop', greetWaitMs: 2000 }));
  try {
    const client = await screen.connect('127.0.32.2');
    client.send('EHLO early.bird\r\n');
    const reply = await client.readReply(1000);
    assert.deepEqual(reply.lines, [`220-${BANNER}`, '521 5.5.1 Protocol error']);
    await client.waitForEnd(1000);
    assert.equal(screen.handoffs.length, 0);
    assert.deepEqual(screen.events(), ['CONNECT', 'PREGREET', 'DISCONNECT']);
    assert.equal(await connections(screen.metrics, 'drop'), 1);
  } finally {
    await screen.close();
  }
});

test('pregreet + ignore: handed over as ignored-failure, no PASS line, nothing cached', async () => {
  const screen = await startScreen(settings({ greetAction: 'ignore' }));
  try {
    const client = await screen.connect('127.0.32.3');
    client.send('EHLO early.bird\r\n');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    assert.equal(await client.readLine(1000), GREETING);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'ignored-failure');
    assert.equal(verdict.enforce, undefined);
    assert.deepEqual(screen.events(), ['CONNECT', 'PREGREET']);
    assert.equal(screen.cache.get('127.0.32.3'), undefined);
  } finally {
    await screen.close();
  }
});

test('DNSBL-listed client + drop: 521 5.7.1 naming the site, DNSBL rank logged', async () => {
  dns.listDnsbl(ZONE, '127.0.33.1', ['127.0.0.2']);
  const screen = await startScreen(settings({ dnsblSites: sites(`${ZONE}*2`, 'other.dnsbl.test'), dnsblAction: 'drop' }));
  try {
    const client = await screen.connect('127.0.33.1');
    const reply = await client.readReply(1000);
    assert.deepEqual(reply.lines, [`220-${BANNER}`, `521 5.7.1 Service unavailable; client [127.0.33.1] blocked using ${ZONE}`]);
    await client.waitForEnd(1000);
    const rank = screen.logs.find((line) => line.event === 'DNSBL rank');
    assert.equal(rank?.msg, `DNSBL rank 2 for [127.0.33.1]:${client.localPort}`);
    assert.equal(screen.handoffs.length, 0);
  } finally {
    await screen.close();
  }
});

test('DNSBL-listed client + enforce: handed over with 550 5.7.1 and the rank', async () => {
  dns.listDnsbl(ZONE, '127.0.33.2', ['127.0.0.4']);
  const screen = await startScreen(settings({ dnsblSites: sites(`${ZONE}=127.0.0.[2..11]*3`), dnsblAction: 'enforce' }));
  try {
    const client = await screen.connect('127.0.33.2');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'enforce');
    assert.equal(verdict.dnsblRank, 3);
    assert.deepEqual(verdict.enforce, {
      test: 'dnsbl',
      reply: { code: 550, enhanced: '5.7.1', text: `Service unavailable; client [127.0.33.2] blocked using ${ZONE}` },
    });
  } finally {
    await screen.close();
  }
});

test('a 127.255.255.254 answer is not a listing: PASS NEW', async () => {
  dns.listDnsbl(ZONE, '127.0.33.3', ['127.255.255.254']);
  const screen = await startScreen(settings({ dnsblSites: sites(ZONE), dnsblAction: 'drop' }));
  try {
    const client = await screen.connect('127.0.33.3');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    assert.equal(await client.readLine(1000), GREETING);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'pass-new');
    assert.equal(verdict.dnsblRank, 0);
    const record = screen.cache.get('127.0.33.3');
    assert.ok(record?.dnsbl && record.pregreet, 'both tests cached');
  } finally {
    await screen.close();
  }
});

test('a DNSBL that never answers does not hold the client beyond the greet wait', async () => {
  dns.setNoAnswer(`4.33.0.127.${ZONE}`);
  const clock = new ManualClock();
  const screen = await startScreen(settings({ dnsblSites: sites(ZONE), dnsblAction: 'drop', dnsblTimeoutMs: 2000, greetWaitMs: 150 }), clock);
  try {
    const client = await screen.connect('127.0.33.4');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    // Bounded wait (2 s) until the DNSBL query is out; it never gets an answer.
    for (let i = 0; i < 200 && dns.queryCount(`4.33.0.127.${ZONE}`) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dns.queryCount(`4.33.0.127.${ZONE}`), 1);
    clock.advance(150); // the end of the greet wait, long before the 2 s DNSBL timeout
    assert.equal(await client.readLine(1000), GREETING);
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'pass-new');
  } finally {
    await screen.close();
  }
});

test('only the expired test runs: pregreet still cached, DNSBL re-asked, no teaser, done when DNS answers', async () => {
  const clock = new ManualClock(); // never moved: the greet wait cannot end
  const screen = await startScreen(settings({ dnsblSites: sites(ZONE), greetWaitMs: 2000 }), clock);
  try {
    screen.cache.set('127.0.33.5', { pregreet: clock.now() + 60_000 });
    const client = await screen.connect('127.0.33.5');
    assert.equal(await client.readLine(1500), GREETING, 'concluded when the DNSBL answered, not at the end of the greet wait');
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'pass-old');
    assert.ok(screen.cache.get('127.0.33.5')?.dnsbl);
    assert.equal(dns.queryCount(`5.33.0.127.${ZONE}`), 1);
  } finally {
    await screen.close();
  }
});

test('postscreen_access_list: a cidr permit is ALLOWLISTED and handed over at once', async () => {
  const { list } = parseAccessList(['permit_mynetworks', 'cidr:access.cidr'], (spec) => openTable(spec, directory));
  const screen = await startScreen(settings({ accessList: list, greetWaitMs: 2000 }));
  try {
    const client = await screen.connect('127.0.30.1');
    assert.equal(await client.readLine(1000), GREETING);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'allowlisted');
    assert.deepEqual(screen.events(), ['CONNECT', 'ALLOWLISTED']);
    assert.equal(screen.cache.get('127.0.30.1'), undefined, 'allowlisting is not cached');
  } finally {
    await screen.close();
  }
});

test('postscreen_access_list: permit_mynetworks', async () => {
  const { list } = parseAccessList(['permit_mynetworks'], (spec) => openTable(spec, directory));
  const screen = await startScreen(settings({ accessList: list, mynetworks: { patterns: ['127.0.34.0/24'], tables: [] }, greetWaitMs: 2000 }));
  try {
    const client = await screen.connect('127.0.34.1');
    assert.equal(await client.readLine(1000), GREETING);
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'allowlisted');
  } finally {
    await screen.close();
  }
});

test('postscreen_access_list: a cidr reject with denylist action drop gets 521 5.3.2 at once', async () => {
  const { list } = parseAccessList(['permit_mynetworks', 'cidr:access.cidr'], (spec) => openTable(spec, directory));
  const screen = await startScreen(settings({ accessList: list, denylistAction: 'drop', greetWaitMs: 2000 }));
  try {
    const client = await screen.connect('127.0.30.2');
    assert.equal(await client.readLine(1000), '521 5.3.2 Service currently unavailable');
    await client.waitForEnd(1000);
    assert.deepEqual(screen.events(), ['CONNECT', 'DENYLISTED', 'DISCONNECT']);
  } finally {
    await screen.close();
  }
});

test('postscreen_access_list: a cidr reject with denylist action enforce runs the tests, then 550 5.3.2', async () => {
  const { list } = parseAccessList(['cidr:access.cidr'], (spec) => openTable(spec, directory));
  const screen = await startScreen(settings({ accessList: list, denylistAction: 'enforce' }));
  try {
    const client = await screen.connect('127.0.30.2');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'enforce');
    assert.deepEqual(verdict.enforce, { test: 'access', reply: { code: 550, enhanced: '5.3.2', text: 'Service currently unavailable' } });
    assert.equal(screen.cache.get('127.0.30.2'), undefined);
  } finally {
    await screen.close();
  }
});

test('postscreen_access_list: a cidr reject with denylist action ignore is un-failed (postscreen.c): DENYLISTED, then PASS NEW and cached', async () => {
  const { list } = parseAccessList(['cidr:access.cidr'], (spec) => openTable(spec, directory));
  const screen = await startScreen(settings({ accessList: list, denylistAction: 'ignore' }));
  try {
    const client = await screen.connect('127.0.30.2');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'pass-new');
    assert.equal(verdict.enforce, undefined);
    assert.deepEqual(screen.events(), ['CONNECT', 'DENYLISTED', 'PASS NEW']);
    assert.ok(screen.cache.get('127.0.30.2')?.pregreet, 'the pregreet pass is cached');
  } finally {
    await screen.close();
  }
});

test('a client that hangs up during the greet wait: HANGUP and DISCONNECT, no handover', async () => {
  const screen = await startScreen(settings({ greetWaitMs: 2000 }));
  try {
    const client = await screen.connect('127.0.35.1');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    await client.close();
    for (let i = 0; i < 400 && !screen.events().includes('DISCONNECT'); i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(screen.events(), ['CONNECT', 'HANGUP', 'DISCONNECT']);
    assert.match(String(screen.logs[1]?.msg), /^HANGUP after \d+\.\d\d from \[127\.0\.35\.1\]:\d+ in tests before SMTP handshake$/);
    assert.equal(screen.handoffs.length, 0);
    assert.equal(await connections(screen.metrics, 'hangup'), 1);
  } finally {
    await screen.close();
  }
});

test('setSettings (reload) applies to the next connection: an empty banner sends no teaser', async () => {
  const screen = await startScreen(settings());
  try {
    screen.screener.setSettings(settings({ greetBanner: '' }));
    const client = await screen.connect('127.0.36.1');
    assert.equal(await client.readLine(1000), GREETING);
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'pass-new');
  } finally {
    await screen.close();
  }
});

test('ALLOWLIST VETO: a client with a valid cache record is PASS OLD on a vetoed address too (postscreen.c: the cache comes first)', async () => {
  const screen = await startScreen(settings({ allowlistInterfaces: VETO_LOOPBACK }));
  try {
    screen.cache.set('127.0.37.1', { pregreet: Date.now() + 60_000 });
    const client = await screen.connect('127.0.37.1');
    assert.equal(await client.readLine(1000), GREETING, 'no teaser: handed over at once');
    assert.equal((await screen.nextHandoff(1)).verdict.outcome, 'pass-old');
    assert.deepEqual(screen.events(), ['CONNECT', 'PASS OLD']);
  } finally {
    await screen.close();
  }
});

test('ALLOWLIST VETO: with a deep test enabled and not valid, a client whose early tests are cached is not PASS OLD on a vetoed address: it goes straight to the engine', async () => {
  const screen = await startScreen(settings({ allowlistInterfaces: VETO_LOOPBACK, deepTests: new Set(['bare_newline']) }));
  try {
    screen.cache.set('127.0.37.6', { pregreet: Date.now() + 60_000 });
    const client = await screen.connect('127.0.37.6');
    assert.equal(await client.readLine(1000), `220 ${ENGINE_BANNER}`, 'no early test due: no teaser, the engine greets');
    client.send('HELO bot.example\r\n');
    assert.equal(await client.readLine(1000), '250 mx.screen.test');
    assert.deepEqual(screen.events(), ['CONNECT', 'ALLOWLIST VETO']);
    assert.equal(screen.handoffs.length, 0);
    assert.equal(screen.cache.get('127.0.37.6')?.bare_newline, undefined);
  } finally {
    await screen.close();
  }
});

test('ALLOWLIST VETO: a new client on a vetoed address is tested, kept in postscreen\'s own engine (RCPT 450 4.3.2), never handed over, not cached', async () => {
  const screen = await startScreen(settings({ allowlistInterfaces: VETO_LOOPBACK }));
  try {
    const client = await screen.connect('127.0.37.2');
    assert.equal(await client.readLine(1000), `220-${BANNER}`, 'the tests run: teaser');
    assert.equal(await client.readLine(1000), `220 ${ENGINE_BANNER}`, "postscreen's own greeting, not the policy stage's");
    client.send('EHLO bot.example\r\n');
    const ehlo = await client.readReply(1000);
    assert.deepEqual(ehlo.lines, ['250-mx.screen.test', '250-SIZE 10240000', '250-VRFY', '250-ETRN', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250 DSN']);
    client.send('MAIL FROM:<bot@example.org>\r\n');
    assert.equal(await client.readLine(1000), '250 2.1.0 Ok');
    client.send('RCPT TO:<info@example.com>\r\n');
    assert.equal(await client.readLine(1000), '450 4.3.2 Service currently unavailable');
    client.send('DATA\r\n');
    assert.equal(await client.readLine(1000), '554 5.5.1 Error: no valid recipients');
    client.send('QUIT\r\n');
    assert.equal(await client.readLine(1000), '221 2.0.0 Bye');
    await client.waitForEnd(1000);
    await client.closed;
    assert.equal(screen.handoffs.length, 0, 'never handed to the policy stage');
    assert.equal(screen.cache.get('127.0.37.2'), undefined, 'nothing cached');
    assert.deepEqual(screen.events(), ['CONNECT', 'ALLOWLIST VETO', 'NOQUEUE: reject', 'DISCONNECT']);
    assert.match(String(screen.logs[1]?.msg), /^ALLOWLIST VETO \[127\.0\.37\.2\]:\d+$/);
    assert.equal(
      screen.logs[2]?.msg,
      `NOQUEUE: reject: RCPT from [127.0.37.2]:${client.localPort}: 450 4.3.2 Service currently unavailable; from=<bot@example.org>, to=<info@example.com>, proto=ESMTP, helo=<bot.example>`,
    );
    assert.equal(await connections(screen.metrics, 'noforward'), 1);
    assert.equal(await activeConnections(screen.metrics, 'screen'), 0, 'the engine session left the screen stage when it closed');
  } finally {
    await screen.close();
  }
});

test('ALLOWLIST VETO + a DNSBL listing under enforce: every RCPT gets the 550 5.7.1; the command limits hold after RCPT; the pipelining test is on', async () => {
  dns.listDnsbl(ZONE, '127.0.37.3', ['127.0.0.2']);
  const screen = await startScreen(settings({ allowlistInterfaces: VETO_LOOPBACK, dnsblSites: sites(ZONE), commandCountLimit: 4 }));
  try {
    const client = await screen.connect('127.0.37.3');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    assert.equal(await client.readLine(1000), `220 ${ENGINE_BANNER}`);
    client.send('HELO bot.example\r\n');
    assert.equal(await client.readLine(1000), '250 mx.screen.test');
    client.send('MAIL FROM:<bot@example.org>\r\n');
    assert.equal(await client.readLine(1000), '250 2.1.0 Ok');
    client.send('RCPT TO:<info@example.com>\r\n');
    assert.equal(await client.readLine(1000), `550 5.7.1 Service unavailable; client [127.0.37.3] blocked using ${ZONE}`);
    client.send('RCPT TO:<joe@example.com>\r\n');
    assert.equal(await client.readLine(1000), `550 5.7.1 Service unavailable; client [127.0.37.3] blocked using ${ZONE}`);
    client.send('NOOP\r\n');
    assert.equal(await client.readLine(1000), '421 mx.screen.test Service unavailable - try again later', 'the 5th command is over postscreen_command_count_limit');
    await client.waitForEnd(1000);
    assert.deepEqual(
      screen.events().filter((event) => event !== 'NOQUEUE: reject'),
      ['CONNECT', 'ALLOWLIST VETO', 'DNSBL rank', 'COMMAND COUNT LIMIT', 'DISCONNECT'],
    );
    assert.equal(screen.handoffs.length, 0);
    assert.equal(screen.cache.get('127.0.37.3'), undefined);

    // The pipelining test runs in the engine even though postscreen_pipelining_enable is off (postscreen_smtpd.c).
    const bot = await screen.connect('127.0.37.4');
    assert.equal(await bot.readLine(1000), `220-${BANNER}`);
    assert.equal(await bot.readLine(1000), `220 ${ENGINE_BANNER}`);
    bot.send('EHLO bot.example\r\nMAIL FROM:<bot@example.org>\r\n');
    await bot.waitForCode(250, 1000);
    const pipelining = await waitForLog(screen, (line) => line.event === 'COMMAND PIPELINING');
    assert.match(String(pipelining.msg), /^COMMAND PIPELINING from \[127\.0\.37\.4\]:\d+ after EHLO: MAIL FROM:<bot@example\.org>\\r\\n$/);
    assert.equal(screen.handoffs.length, 0);
  } finally {
    await screen.close();
  }
});

test('ALLOWLIST VETO: a client that hangs up in postscreen\'s own engine is logged HANGUP … in tests after SMTP handshake', async () => {
  const screen = await startScreen(settings({ allowlistInterfaces: VETO_LOOPBACK }));
  try {
    const client = await screen.connect('127.0.37.5');
    await client.readLine(1000);
    assert.equal(await client.readLine(1000), `220 ${ENGINE_BANNER}`);
    await client.close();
    const hangup = await waitForLog(screen, (line) => line.event === 'HANGUP');
    assert.match(String(hangup.msg), /^HANGUP after \d+\.\d\d from \[127\.0\.37\.5\]:\d+ in tests after SMTP handshake$/);
    await waitForLog(screen, (line) => line.event === 'DISCONNECT');
    assert.equal(await activeConnections(screen.metrics, 'screen'), 0);
  } finally {
    await screen.close();
  }
});

test('postscreen_dnsbl_allowlist_threshold: a DNSWL rank ends the greet wait and passes every test', async () => {
  dns.listDnsbl('wl.dnswl.test', '127.0.38.1', ['127.0.2.3'], 600);
  const clock = new ManualClock(); // never moved: the greet wait cannot end
  const screen = await startScreen(
    settings({ dnsblSites: sites('wl.dnswl.test*-5', ZONE), dnsblAllowlistThreshold: -1, greetWaitMs: 3000, deepTests: new Set(['pipelining']) }),
    clock,
  );
  try {
    const client = await screen.connect('127.0.38.1');
    assert.equal(await client.readLine(1000), `220-${BANNER}`);
    assert.equal(await client.readLine(2000), GREETING, 'did not wait for the greet wait');
    const { verdict } = await screen.nextHandoff(1);
    assert.equal(verdict.outcome, 'pass-new');
    assert.equal(verdict.deepTests, undefined, 'the deep tests count as passed');
    const record = screen.cache.get('127.0.38.1');
    assert.ok(record?.pregreet && record.dnsbl && record.pipelining);
  } finally {
    await screen.close();
  }
});

test('postscreen_dnsbl_reply_map: the secret zone name never appears in the reply or the INFO log', async () => {
  const secret = 'k3y.zen.dq.dnsbl.test';
  dns.listDnsbl(secret, '127.0.38.2', ['127.0.0.2']);
  const replyMap = [{ spec: 'inline:{}', lookup: (key: string) => (key === secret ? 'zen.dnsbl.test' : undefined) }];
  const screen = await startScreen(settings({ dnsblSites: sites(`${secret}*2`), dnsblAction: 'drop', dnsblReplyMap: replyMap as never }));
  try {
    const client = await screen.connect('127.0.38.2');
    const reply = await client.readReply(1000);
    assert.equal(reply.lines[1], '521 5.7.1 Service unavailable; client [127.0.38.2] blocked using zen.dnsbl.test');
    await client.waitForEnd(1000);
    assert.ok(!JSON.stringify(screen.logs).includes('k3y'), 'no log line names the key');
  } finally {
    await screen.close();
  }
});

test('postscreen_client_connection_count_limit through the screener: NOQUEUE: reject: CONNECT and 421 4.7.0 Error: too many connections', async () => {
  const screen = await startScreen(settings({ greetWaitMs: 2000, limits: { clientConnectionCountLimit: 1, preQueueLimit: 100, postQueueLimit: 100 } }));
  try {
    const first = await screen.connect('127.0.39.1');
    assert.equal(await first.readLine(1000), `220-${BANNER}`);
    const second = await screen.connect('127.0.39.1');
    assert.equal(await second.readLine(1000), '421 4.7.0 Error: too many connections');
    await second.waitForEnd(1000);
    const line = screen.logs.find((entry) => entry.event === 'NOQUEUE: reject');
    assert.match(String(line?.msg), /^NOQUEUE: reject: CONNECT from \[127\.0\.39\.1\]:\d+: too many connections$/);
  } finally {
    await screen.close();
  }
});

test('PROXY v1: the address from the header is screened, cached and logged; later bytes reach the policy stage', async () => {
  const screen = await startScreen(settings({ proxyProtocol: true, greetBanner: '' }));
  try {
    const client = await screen.connect('127.0.39.2');
    client.send('PROXY TCP4 192.0.2.77 198.51.100.1 40000 25\r\n');
    assert.equal(await client.readLine(1000), GREETING);
    const handoff = await screen.nextHandoff(1);
    assert.deepEqual(handoff.verdict.client, { address: '192.0.2.77', port: 40000 });
    assert.deepEqual(handoff.verdict.local, { address: '198.51.100.1', port: 25 });
    assert.ok(screen.cache.get('192.0.2.77')?.pregreet);
    assert.match(String(screen.logs[0]?.msg), /^CONNECT from \[192\.0\.2\.77\]:40000 to \[198\.51\.100\.1\]:25$/);
    client.send('EHLO proxied.example\r\n');
    for (let i = 0; i < 400 && handoff.data() === ''; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(handoff.data(), 'EHLO proxied.example\r\n');
  } finally {
    await screen.close();
  }
});

test('PROXY: no header within postscreen_upstream_proxy_timeout closes the connection', async () => {
  const screen = await startScreen(settings({ proxyProtocol: true, proxyTimeoutMs: 100 }));
  try {
    const client = await screen.connect('127.0.39.3');
    await client.waitForEnd(1000);
    assert.equal(client.received(), '');
    assert.equal(screen.logs.find((line) => line.event === 'PROXY')?.reason, 'timeout');
  } finally {
    await screen.close();
  }
});

test('deep tests due are handed over as a monitor; a pass at RCPT is cached', async () => {
  const screen = await startScreen(settings({ greetBanner: '', deepTests: new Set(['pipelining', 'bare_newline']) }));
  try {
    const client = await screen.connect('127.0.39.4');
    assert.equal(await client.readLine(1000), GREETING);
    const handoff = await screen.nextHandoff(1);
    assert.ok(handoff.verdict.deepTests, 'a monitor');
    // Play the policy stage's replies by hand.
    client.send('EHLO good.example\r\n');
    for (let i = 0; i < 400 && handoff.data() === ''; i++) await new Promise((r) => setTimeout(r, 5));
    handoff.socket.write('250 mx.screen.test\r\n');
    await client.readLine(1000);
    client.send('RCPT TO:<a@b.example>\r\n');
    for (let i = 0; i < 400 && !screen.cache.get('127.0.39.4')?.pipelining; i++) await new Promise((r) => setTimeout(r, 5));
    const record = screen.cache.get('127.0.39.4');
    assert.ok(record?.pipelining && record.bare_newline && record.pregreet);
    assert.equal(handoff.verdict.deepTests?.failure(), undefined);
  } finally {
    await screen.close();
  }
});

test('an IPv4 client on a dual-stack listener is screened and cached as IPv4', async () => {
  const screen = await startScreen(settings({ greetBanner: '' }));
  try {
    const dual = new SmtpListener(['[::]:0'], (socket) => screen.screener.screen(socket));
    const [bound] = await dual.listen();
    try {
      const client = await connectClient({ port: bound!.port, localAddress: '127.0.39.5' });
      assert.equal(await client.readLine(1000), GREETING);
      const { verdict } = await screen.nextHandoff(1);
      assert.equal(verdict.client.address, '127.0.39.5');
      assert.ok(screen.cache.get('127.0.39.5')?.pregreet);
      verdict && (await client.close());
    } finally {
      await dual.close();
    }
  } finally {
    await screen.close();
  }
});

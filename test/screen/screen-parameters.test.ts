// Screen-stage parameters by their effect through the screener, on real loopback sockets
// and an injected clock: postscreen_dnsbl_threshold above 1, the DNSWL allowlist threshold
// after a failure, postscreen_greet_ttl expiry, and the refusals at
// postscreen_pre_queue_limit and postscreen_post_queue_limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { parseAccessList } from '../../src/screen/access-list.js';
import { openTable } from '../../src/tables/open-table.js';
import { BANNER, EVENT_BOUND_MS, GREET_WAIT_MS, GREETING, manualSettings, sites, startManualScreen, until, type ManualScreen } from './manual-screen.js';


async function limitRefusals(screen: ManualScreen): Promise<number> {
  return screen.counter(screen.metrics.connections, { verdict: 'limit' });
}

test('postscreen_dnsbl_threshold = 2: a client listed on one site of weight 1 passes; listed on two it is refused', async () => {
  const [a, b] = ['a.threshold.dnsbl.test', 'b.threshold.dnsbl.test'];
  const screen = await startManualScreen(manualSettings({ dnsblSites: sites(a, b), dnsblThreshold: 2, dnsblAction: 'drop' }));
  screen.dns.listDnsbl(a, '127.0.96.1', ['127.0.0.2']);
  screen.dns.listDnsbl(a, '127.0.96.2', ['127.0.0.2']);
  screen.dns.listDnsbl(b, '127.0.96.2', ['127.0.0.4']);
  try {
    const once = await screen.connectTeased('127.0.96.1');
    await until(async () => (await screen.dnsblAnswers()) === 2, 'both sites answered for 127.0.96.1');
    screen.clock.advance(GREET_WAIT_MS);
    const { verdict } = await screen.handoffOf(once);
    assert.equal(verdict.outcome, 'pass-new');
    assert.equal(verdict.dnsblRank, 1);
    assert.equal(await once.readLine(EVENT_BOUND_MS), GREETING);
    assert.equal(screen.events('DNSBL rank').length, 0, 'rank 1 is below the threshold: not a failure');

    const twice = await screen.connectTeased('127.0.96.2');
    await until(async () => (await screen.dnsblAnswers()) === 4, 'both sites answered for 127.0.96.2');
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal(await twice.readLine(EVENT_BOUND_MS), `521 5.7.1 Service unavailable; client [127.0.96.2] blocked using ${a}`);
    await twice.waitForEnd(EVENT_BOUND_MS);
    assert.equal(screen.handedOver(twice), false);
    const rank = screen.events('DNSBL rank')[0];
    assert.equal(rank?.rank, 2);
    assert.match(String(rank?.msg), /^DNSBL rank 2 for \[127\.0\.96\.2\]:\d+$/);
  } finally {
    await screen.close();
  }
});

test('postscreen_dnsbl_allowlist_threshold: a DNSWL rank ends the greet wait at once, but not for a client that already failed a test (denylisted under enforce)', async () => {
  const wl = 'wl.allowlist.dnswl.test';
  const { list } = parseAccessList(['inline:{ 127.0.96.9=reject }'], (spec) => openTable(spec, tmpdir()));
  const screen = await startManualScreen(manualSettings({ dnsblSites: sites(`${wl}*-5`), dnsblAllowlistThreshold: -1, accessList: list, denylistAction: 'enforce' }));
  screen.dns.listDnsbl(wl, '127.0.96.9', ['127.0.2.3']);
  screen.dns.listDnsbl(wl, '127.0.96.10', ['127.0.2.3']);
  try {
    const clean = await screen.connectTeased('127.0.96.10');
    assert.equal((await screen.handoffOf(clean)).verdict.outcome, 'pass-new', 'no clock tick: the DNSWL rank ended the wait');
    const denylisted = await screen.connectTeased('127.0.96.9');
    await until(async () => (await screen.dnsblAnswers()) === 2, 'the DNSWL answered for 127.0.96.9');
    assert.equal(screen.handedOver(denylisted), false, 'a failed test: the DNSWL rank does not end the greet wait');
    screen.clock.advance(GREET_WAIT_MS);
    const { verdict } = await screen.handoffOf(denylisted);
    assert.equal(verdict.outcome, 'enforce');
    assert.equal(verdict.enforce?.test, 'access');
  } finally {
    await screen.close();
  }
});

test('postscreen_greet_ttl: a PASS OLD client is not greet-tested until its pregreet pass expires; then it runs the greet test again', async () => {
  const ttl = 60_000;
  // The record outlives its tests (postscreen_cache_retention_time), so a re-tested client is PASS OLD.
  const screen = await startManualScreen(manualSettings({ greetTtlMs: ttl }), { retentionMs: 7 * 86_400_000 });
  try {
    for (const address of ['127.0.96.10', '127.0.96.11']) await screen.connectTeased(address);
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal(screen.events('PASS NEW').length, 2);
    const expires = screen.clock.now() + ttl;
    assert.equal(screen.cache.get('127.0.96.10')?.pregreet, expires, 'the pass lasts postscreen_greet_ttl');

    screen.clock.advance(ttl - 1);
    const valid = await screen.connect('127.0.96.10');
    assert.equal(await valid.readLine(EVENT_BOUND_MS), GREETING, 'still valid 1 ms before the TTL: no teaser, no greet wait');
    assert.equal((await screen.handoffOf(valid)).verdict.outcome, 'pass-old');

    screen.clock.advance(1);
    const quiet = await screen.connect('127.0.96.10');
    assert.equal(await quiet.readLine(EVENT_BOUND_MS), `220-${BANNER}`, 'expired: the teaser again');
    screen.clock.advance(GREET_WAIT_MS - 1);
    assert.equal(screen.handedOver(quiet), false, 'held for the greet wait');
    screen.clock.advance(1);
    assert.equal((await screen.handoffOf(quiet)).verdict.outcome, 'pass-old', 'the record was kept: PASS OLD after the test');
    assert.equal(await quiet.readLine(EVENT_BOUND_MS), GREETING);
    assert.equal(screen.cache.get('127.0.96.10')?.pregreet, screen.clock.now() + ttl, 'the pass is renewed');

    const talker = await screen.connect('127.0.96.11');
    assert.equal(await talker.readLine(EVENT_BOUND_MS), `220-${BANNER}`);
    talker.send('EHLO early.example\r\n');
    const pregreet = await screen.logLine((line) => line.event === 'PREGREET', 'the pregreet failure');
    assert.match(String(pregreet.msg), /^PREGREET 20 after 0(\.0+)? from \[127\.0\.96\.11\]:\d+: EHLO early\.example\\r\\n$/);
    screen.clock.advance(GREET_WAIT_MS);
    const { verdict } = await screen.handoffOf(talker);
    assert.equal(verdict.outcome, 'enforce', 'the greet test ran again and caught it');
    assert.equal(verdict.enforce?.reply.text, 'Protocol error');
    assert.equal(screen.cache.get('127.0.96.11')?.pregreet, expires, 'a failed session updates nothing (psc_conclude): the expired pass stays expired');
  } finally {
    await screen.close();
  }
});

test('postscreen_pre_queue_limit = 2: a third connection while two are screened gets 421 4.3.2 All screening ports are busy and is closed; a slot freed by a handover admits the next', async () => {
  const screen = await startManualScreen(manualSettings({ limits: { clientConnectionCountLimit: 50, preQueueLimit: 2, postQueueLimit: 100 } }));
  try {
    await screen.connectTeased('127.0.96.20');
    await screen.connectTeased('127.0.96.21');
    const third = await screen.connect('127.0.96.22');
    assert.equal(await third.readLine(EVENT_BOUND_MS), '421 4.3.2 All screening ports are busy');
    await third.waitForEnd(EVENT_BOUND_MS);
    assert.equal(third.received(), '421 4.3.2 All screening ports are busy\r\n', 'no teaser, nothing else');
    const refusal = screen.events('NOQUEUE: reject')[0];
    assert.match(String(refusal?.msg), /^NOQUEUE: reject: CONNECT from \[127\.0\.96\.22\]:\d+: all screening ports busy$/);
    assert.equal(await limitRefusals(screen), 1);
    assert.equal(screen.screener.limits.counts.screening, 2, 'the refused connection took no slot');

    screen.clock.advance(GREET_WAIT_MS); // both screened connections are handed over
    assert.equal(screen.handoffs.length, 2);
    await screen.connectTeased('127.0.96.22');
    assert.equal(await limitRefusals(screen), 1);
  } finally {
    await screen.close();
  }
});

test('postscreen_post_queue_limit = 1: a client that passes while one session is open in smtpd gets 421 4.3.2 All server ports are busy and is closed; when that session ends the next is handed over', async () => {
  const screen = await startManualScreen(manualSettings({ limits: { clientConnectionCountLimit: 50, preQueueLimit: 100, postQueueLimit: 1 } }));
  try {
    const first = await screen.connectTeased('127.0.96.30');
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal(await first.readLine(EVENT_BOUND_MS), GREETING);
    const open = await screen.handoffOf(first);

    const second = await screen.connectTeased('127.0.96.31');
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal(await second.readLine(EVENT_BOUND_MS), '421 4.3.2 All server ports are busy');
    await second.waitForEnd(EVENT_BOUND_MS);
    assert.equal(screen.handedOver(second), false);
    const refusal = screen.events('NOQUEUE: reject')[0];
    assert.match(String(refusal?.msg), /^NOQUEUE: reject: CONNECT from \[127\.0\.96\.31\]:\d+: all server ports busy$/);
    assert.equal(await limitRefusals(screen), 1);
    assert.deepEqual(screen.screener.limits.counts, { screening: 0, smtpd: 1 }, 'the refused one left the screen stage');

    open.socket.destroy(); // the smtpd session ends
    await until(() => screen.screener.limits.counts.smtpd === 0, 'the smtpd slot to be freed');
    const third = await screen.connectTeased('127.0.96.32');
    screen.clock.advance(GREET_WAIT_MS);
    assert.equal(await third.readLine(EVENT_BOUND_MS), GREETING);
    assert.equal((await screen.handoffOf(third)).verdict.outcome, 'pass-new');
  } finally {
    await screen.close();
  }
});

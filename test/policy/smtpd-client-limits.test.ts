// smtpd's anvil(8) limits as tables on a ManualClock: the connection count and rate limits,
// the smtpd_client_event_limit_exceptions exemption, their defaults and old name, and the
// gate's 421 and warning on a real loopback socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromText } from '../../src/config/config.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SmtpdClientLimits, smtpdClientLimitSettingsFromConfig, type ClientLimitSlot, type SmtpdClientLimitSettings } from '../../src/policy/smtpd-client-limits.js';
import { screenSettingsFromConfig } from '../../src/screen/screen-settings.js';
import type { ScreenVerdict } from '../../src/screen-verdict.js';
import { connectClient } from '../fakes/scripted-client.js';
import { ManualClock } from '../queue/manual-clock.js';
import { until } from '../fakes/wait-until.js';

const NONE = { patterns: [], tables: [] };

function limits(overrides: Partial<SmtpdClientLimitSettings> = {}) {
  const lines: { level?: string; event?: string; msg?: string }[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const clock = new ManualClock(0);
  const metrics = new Metrics();
  const settings: SmtpdClientLimitSettings = { connectionCountLimit: 50, connectionRateLimit: 0, rateTimeUnitMs: 60_000, exceptions: NONE, myhostname: 'mx1.example.net', ...overrides };
  return { limits: new SmtpdClientLimits(settings, { clock, log, metrics }), lines, clock, metrics };
}

function slot(result: ClientLimitSlot | { limit: string }): ClientLimitSlot {
  assert.ok(!('limit' in result), `refused by the ${'limit' in result ? result.limit : ''} limit`);
  return result;
}

const config = (lines: string[]) => configFromText(['myhostname = mx1.example.net', ...lines, ''].join('\n'), { file: join(tmpdir(), 'main.cf'), directory: tmpdir() });

test('smtpd_client_connection_count_limit: the 51st open connection is refused with 421 4.7.0 host Error: too many connections from addr', () => {
  const { limits: l } = limits();
  const open = Array.from({ length: 50 }, () => slot(l.admit('192.0.2.1')));
  assert.deepEqual(l.admit('192.0.2.1'), {
    limit: 'concurrency',
    count: 51,
    reply: { code: 421, enhanced: '4.7.0', text: 'mx1.example.net Error: too many connections from 192.0.2.1' },
  });
  assert.equal(l.openConnections('192.0.2.1'), 50, 'a refused connection is not left counted');
  slot(l.admit('192.0.2.2'));
  open[0]!.release();
  open[0]!.release();
  assert.equal(l.openConnections('192.0.2.1'), 49, 'release is idempotent');
  slot(l.admit('192.0.2.1'));
  assert.ok('limit' in l.admit('192.0.2.1'));
});

test('smtpd_client_event_limit_exceptions: an exempt client is neither counted nor limited, by the count or the rate', () => {
  const { limits: l } = limits({ connectionCountLimit: 1, connectionRateLimit: 1, exceptions: { patterns: ['127.0.0.0/8'], tables: [] } });
  for (let i = 0; i < 100; i++) slot(l.admit('127.0.0.1'));
  assert.equal(l.openConnections('127.0.0.1'), 0);
  slot(l.admit('192.0.2.1'));
  assert.ok('limit' in l.admit('192.0.2.1'));
});

test('smtpd_client_connection_rate_limit per anvil_rate_time_unit: refused connections count in the rate; a new window admits again', () => {
  const { limits: l, clock } = limits({ connectionRateLimit: 2, rateTimeUnitMs: 60_000 });
  slot(l.admit('192.0.2.1')).release();
  slot(l.admit('192.0.2.1')).release();
  assert.deepEqual(l.admit('192.0.2.1'), {
    limit: 'rate',
    count: 3,
    reply: { code: 421, enhanced: '4.7.0', text: 'mx1.example.net Error: too many connections from 192.0.2.1' },
  });
  const again = l.admit('192.0.2.1');
  assert.ok('limit' in again && again.count === 4);
  slot(l.admit('192.0.2.2'));
  clock.advance(59_999);
  assert.ok('limit' in l.admit('192.0.2.1'));
  clock.advance(1);
  slot(l.admit('192.0.2.1'));
});

test('the count limit is checked before the rate limit (smtpd.c)', () => {
  const { limits: l } = limits({ connectionCountLimit: 1, connectionRateLimit: 1 });
  slot(l.admit('192.0.2.1'));
  const refused = l.admit('192.0.2.1');
  assert.ok('limit' in refused && refused.limit === 'concurrency' && refused.count === 2);
});

test('defaults (postconf(5)): count 50, rate 0, exceptions $mynetworks, postscreen_client_connection_count_limit = $smtpd_client_connection_count_limit', () => {
  const defaults = smtpdClientLimitSettingsFromConfig(config(['mynetworks = 192.0.2.0/24']));
  assert.equal(defaults.connectionCountLimit, 50);
  assert.equal(defaults.connectionRateLimit, 0);
  assert.equal(defaults.rateTimeUnitMs, 60_000);
  assert.deepEqual(defaults.exceptions.patterns, ['192.0.2.0/24']);
  assert.equal(screenSettingsFromConfig(config([])).limits.clientConnectionCountLimit, 50);
  assert.equal(screenSettingsFromConfig(config(['smtpd_client_connection_count_limit = 7'])).limits.clientConnectionCountLimit, 7);
  const old = smtpdClientLimitSettingsFromConfig(config(['smtpd_client_connection_limit_exceptions = 198.51.100.0/24']));
  assert.deepEqual(old.exceptions.patterns, ['198.51.100.0/24'], 'the old name sets smtpd_client_event_limit_exceptions');
});

/** A loopback server whose connections go through `gate` (the session writes `220 session`). */
async function withGate(l: SmtpdClientLimits, fn: (port: number, started: Socket[]) => Promise<void>): Promise<void> {
  const started: Socket[] = [];
  const server = createServer((socket) => {
    const verdict = { sessionId: `S${started.length}`, client: { address: '127.0.40.1', port: socket.remotePort ?? 0 } } as ScreenVerdict;
    socket.pause();
    l.gate(socket, verdict, () => {
      started.push(socket);
      socket.write('220 session\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn((server.address() as { port: number }).port, started);
  } finally {
    for (const socket of started) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

const GATE_CASES: { name: string; input: Partial<SmtpdClientLimitSettings>; want: { event: string } }[] = [
  { name: 'past smtpd_client_connection_count_limit', input: { connectionCountLimit: 1 }, want: { event: 'Connection concurrency limit exceeded' } },
  { name: 'past smtpd_client_connection_rate_limit', input: { connectionRateLimit: 1 }, want: { event: 'Connection rate limit exceeded' } },
];

for (const { name, input, want } of GATE_CASES) {
  test(`gate: ${name}, a connection gets the 421 instead of the greeting, logged at warn "${want.event}" as smtpd does; the session never starts`, async () => {
    const { limits: l, lines, metrics } = limits(input);
    await withGate(l, async (port, started) => {
      const first = await connectClient({ port, localAddress: '127.0.40.1' });
      assert.equal(await first.readLine(1000), '220 session');
      const second = await connectClient({ port, localAddress: '127.0.40.1' });
      assert.equal(await second.readLine(1000), '421 4.7.0 mx1.example.net Error: too many connections from 127.0.40.1');
      await second.waitForEnd(1000);
      assert.equal(started.length, 1);
      const warning = lines.find((line) => line.event === want.event);
      assert.equal(warning?.level, 'warn');
      assert.equal(warning?.msg, `${want.event}: 2 from unknown[127.0.40.1] for service smtpd`);
      assert.equal((await metrics.smtpReplies.get()).values.find((v) => v.labels.code === '421')?.value, 1);
      await first.close();
      await until('the slot to be released when the session socket closes', () => l.openConnections('127.0.40.1') === 0);
    });
  });
}

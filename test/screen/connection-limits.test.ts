import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { ConnectionLimits, type ConnectionSlot, type LimitSettings } from '../../src/screen/connection-limits.js';
import { ManualClock } from '../queue/manual-clock.js';

function limits(overrides: Partial<LimitSettings> = {}) {
  const lines: { event?: string; msg?: string }[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const clock = new ManualClock(0);
  const metrics = new Metrics();
  const settings: LimitSettings = { clientConnectionCountLimit: 0, preQueueLimit: 0, postQueueLimit: 0, connectionRateLimit: 0, rateTimeUnitMs: 60_000, ...overrides };
  return { limits: new ConnectionLimits(settings, { clock, log, metrics }), lines, clock, metrics };
}

function slot(result: ConnectionSlot | { reason: string }): ConnectionSlot {
  assert.ok(!('reason' in result), `refused: ${'reason' in result ? result.reason : ''}`);
  return result;
}

test('postscreen_client_connection_count_limit: 421 4.7.0 too many connections, per client', () => {
  const { limits: l } = limits({ clientConnectionCountLimit: 2 });
  const first = slot(l.admit('192.0.2.1', false));
  slot(l.admit('192.0.2.1', false));
  assert.deepEqual(l.admit('192.0.2.1', false), { reason: 'too many connections', reply: { code: 421, enhanced: '4.7.0', text: 'Error: too many connections from 192.0.2.1' } });
  slot(l.admit('192.0.2.2', false));
  first.release();
  slot(l.admit('192.0.2.1', false));
});

test('postscreen_pre_queue_limit: 421 4.3.2 All screening ports are busy', () => {
  const { limits: l } = limits({ preQueueLimit: 1 });
  const first = slot(l.admit('192.0.2.1', false));
  const refused = l.admit('192.0.2.2', false);
  assert.ok('reason' in refused && refused.reason === 'all screening ports busy' && refused.reply.text === 'All screening ports are busy');
  assert.equal(first.handover(), undefined);
  slot(l.admit('192.0.2.2', false));
});

test('postscreen_post_queue_limit: the handover is refused with 421 4.3.2 All server ports are busy', () => {
  const { limits: l } = limits({ postQueueLimit: 1 });
  assert.equal(slot(l.admit('192.0.2.1', false)).handover(), undefined);
  const second = slot(l.admit('192.0.2.2', false));
  assert.deepEqual(second.handover(), { reason: 'all server ports busy', reply: { code: 421, enhanced: '4.3.2', text: 'All server ports are busy' } });
});

test('smtpd_client_connection_rate_limit per anvil_rate_time_unit; mynetworks exempt', () => {
  const { limits: l, clock } = limits({ connectionRateLimit: 2, rateTimeUnitMs: 60_000 });
  slot(l.admit('192.0.2.1', false)).release();
  slot(l.admit('192.0.2.1', false)).release();
  const refused = l.admit('192.0.2.1', false);
  assert.ok('reason' in refused && refused.reason === 'connection rate limit exceeded');
  for (let i = 0; i < 5; i++) slot(l.admit('127.0.0.1', true)).release();
  clock.advance(60_000);
  slot(l.admit('192.0.2.1', false));
});

test('stress mode: entered at 90% of the pre-queue limit, left at 70%, logged and exported', async () => {
  const { limits: l, lines, metrics } = limits({ preQueueLimit: 10 });
  const slots = Array.from({ length: 8 }, (_, i) => slot(l.admit(`192.0.2.${i + 1}`, false)));
  assert.equal(l.stress, false);
  slots.push(slot(l.admit('192.0.2.99', false)));
  assert.equal(l.stress, true);
  assert.equal(lines.find((line) => line.event === 'STRESS')?.msg, 'entering STRESS mode with 9 connections');
  assert.equal((await metrics.stressMode.get()).values[0]?.value, 1);
  slots[0]!.release();
  assert.equal(l.stress, true, 'still above 70%');
  slots[1]!.release();
  assert.equal(l.stress, false);
  assert.equal(lines.filter((line) => line.event === 'STRESS')[1]?.msg, 'leaving STRESS mode with 7 connections');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { ConnectionLimits, type ConnectionSlot, type LimitSettings } from '../../src/screen/connection-limits.js';

function limits(overrides: Partial<LimitSettings> = {}) {
  const lines: { event?: string; msg?: string }[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const metrics = new Metrics();
  const settings: LimitSettings = { clientConnectionCountLimit: 0, preQueueLimit: 0, postQueueLimit: 0, ...overrides };
  return { limits: new ConnectionLimits(settings, { log, metrics }), lines, metrics };
}

function slot(result: ConnectionSlot | { reason: string }): ConnectionSlot {
  assert.ok(!('reason' in result), `refused: ${'reason' in result ? result.reason : ''}`);
  return result;
}

test('postscreen_client_connection_count_limit: 421 4.7.0 Error: too many connections, per client (postscreen.c)', () => {
  const { limits: l } = limits({ clientConnectionCountLimit: 2 });
  const first = slot(l.admit('192.0.2.1'));
  slot(l.admit('192.0.2.1'));
  assert.deepEqual(l.admit('192.0.2.1'), { reason: 'too many connections', reply: { code: 421, enhanced: '4.7.0', text: 'Error: too many connections' } });
  slot(l.admit('192.0.2.2'));
  first.release();
  slot(l.admit('192.0.2.1'));
});

test('postscreen_client_connection_count_limit counts the screen stage only: a connection handed to smtpd no longer counts', () => {
  const { limits: l } = limits({ clientConnectionCountLimit: 2 });
  const handedOver = Array.from({ length: 10 }, () => {
    const connection = slot(l.admit('192.0.2.1'));
    assert.equal(connection.handover(), undefined);
    return connection;
  });
  const screening = [slot(l.admit('192.0.2.1')), slot(l.admit('192.0.2.1'))];
  assert.ok('reason' in l.admit('192.0.2.1'), 'two in the screen stage: the third is refused');
  for (const connection of handedOver) connection.release();
  assert.ok('reason' in l.admit('192.0.2.1'), 'closing smtpd sessions frees nothing in the screen stage');
  screening[0]!.release();
  assert.equal(slot(l.admit('192.0.2.1')).handover(), undefined);
  assert.deepEqual(l.counts, { screening: 1, smtpd: 1 });
});

test('postscreen_pre_queue_limit: 421 4.3.2 All screening ports are busy', () => {
  const { limits: l } = limits({ preQueueLimit: 1 });
  const first = slot(l.admit('192.0.2.1'));
  const refused = l.admit('192.0.2.2');
  assert.ok('reason' in refused && refused.reason === 'all screening ports busy' && refused.reply.text === 'All screening ports are busy');
  assert.equal(first.handover(), undefined);
  slot(l.admit('192.0.2.2'));
});

test('postscreen_post_queue_limit: the handover is refused with 421 4.3.2 All server ports are busy', () => {
  const { limits: l } = limits({ postQueueLimit: 1 });
  assert.equal(slot(l.admit('192.0.2.1')).handover(), undefined);
  const second = slot(l.admit('192.0.2.2'));
  assert.deepEqual(second.handover(), { reason: 'all server ports busy', reply: { code: 421, enhanced: '4.3.2', text: 'All server ports are busy' } });
});

test('stress mode: entered at 90% of the pre-queue limit, left at 70%, logged and exported', async () => {
  const { limits: l, lines, metrics } = limits({ preQueueLimit: 10 });
  const slots = Array.from({ length: 8 }, (_, i) => slot(l.admit(`192.0.2.${i + 1}`)));
  assert.equal(l.stress, false);
  slots.push(slot(l.admit('192.0.2.99')));
  assert.equal(l.stress, true);
  assert.equal(lines.find((line) => line.event === 'STRESS')?.msg, 'entering STRESS mode with 9 connections');
  assert.equal((await metrics.stressMode.get()).values[0]?.value, 1);
  slots[0]!.release();
  assert.equal(l.stress, true, 'still above 70%');
  slots[1]!.release();
  assert.equal(l.stress, false);
  assert.equal(lines.filter((line) => line.event === 'STRESS')[1]?.msg, 'leaving STRESS mode with 7 connections');
});

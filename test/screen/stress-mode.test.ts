// Stress mode (postscreen(8), connection-limits.ts) by its effects through the screener,
// on an injected clock: a connection admitted in stress mode waits 2 s for the greet
// wait and gets a 10 s command time limit (Postfix's `${stress?{2}:{6}}s` and
// `${stress?{10}:{300}}s`); stress mode ends at 70% of postscreen_pre_queue_limit, and a
// connection admitted after that has the configured values again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STRESS_COMMAND_TIME_LIMIT_MS, STRESS_GREET_WAIT_MS } from '../../src/screen/connection-limits.js';
import type { ScriptedClient } from '../fakes/scripted-client.js';
import { EVENT_BOUND_MS, GREET_WAIT_MS, GREETING, manualSettings, startManualScreen, until, type ManualScreen } from './manual-screen.js';

/** postscreen_pre_queue_limit: stress mode at 9 connections being screened (90%), off at 7 (70%). */
const PRE_QUEUE_LIMIT = 10;
const COMMAND_TIME_LIMIT_MS = 300_000;
const TIMEOUT_REPLY = '421 4.4.2 mx.manual.test Error: timeout exceeded';

function stressSettings(preQueueLimit = PRE_QUEUE_LIMIT) {
  return manualSettings({
    greetWaitMs: GREET_WAIT_MS,
    commandTimeLimitMs: COMMAND_TIME_LIMIT_MS,
    // A deep test due after the handover, so the command time limit runs on the live session.
    deepTests: new Set(['pipelining'] as const),
    limits: { clientConnectionCountLimit: 50, preQueueLimit, postQueueLimit: 100 },
  });
}

async function stressGauge(screen: ManualScreen): Promise<number | undefined> {
  return (await screen.metrics.stressMode.get()).values[0]?.value;
}

/** `count` connections from 127.0.<subnet>.1…, each admitted (teaser read) before the next. */
async function connectEach(screen: ManualScreen, subnet: number, count: number): Promise<ScriptedClient[]> {
  const clients: ScriptedClient[] = [];
  for (let host = 1; host <= count; host++) clients.push(await screen.connectTeased(`127.0.${subnet}.${host}`));
  return clients;
}

test(`a connection admitted in stress mode waits ${STRESS_GREET_WAIT_MS} ms, not postscreen_greet_wait; the ones admitted before wait the full ${GREET_WAIT_MS} ms`, async () => {
  const screen = await startManualScreen(stressSettings());
  try {
    const calm = await connectEach(screen, 92, 8);
    assert.equal(screen.screener.limits.stress, false, '8 of 10 is below 90%');
    const stressed = await screen.connectTeased('127.0.92.9');
    assert.equal(await stressGauge(screen), 1);
    assert.equal(screen.events('STRESS')[0]?.msg, 'entering STRESS mode with 9 connections');

    screen.clock.advance(STRESS_GREET_WAIT_MS - 1);
    assert.equal(screen.handoffs.length, 0, 'nobody before 2 s');
    screen.clock.advance(1);
    assert.deepEqual(
      screen.handoffs.map((h) => h.verdict.client.address),
      ['127.0.92.9'],
      'the stressed connection at 2 s, the others still waiting',
    );
    assert.equal(screen.handoffs[0]?.verdict.outcome, 'pass-new');
    assert.equal(await stressed.readLine(EVENT_BOUND_MS), GREETING);

    screen.clock.advance(GREET_WAIT_MS - STRESS_GREET_WAIT_MS - 1);
    assert.equal(screen.handoffs.length, 1, 'the calm connections wait the configured greet wait');
    screen.clock.advance(1);
    assert.equal(screen.handoffs.length, 9);
    for (const client of calm) assert.equal(await client.readLine(EVENT_BOUND_MS), GREETING);
  } finally {
    await screen.close();
  }
});

test(`a connection admitted in stress mode gets a ${STRESS_COMMAND_TIME_LIMIT_MS} ms command time limit after the greeting; one admitted before keeps postscreen_command_time_limit`, async () => {
  const screen = await startManualScreen(stressSettings());
  try {
    const [calm] = await connectEach(screen, 93, 8);
    const stressed = await screen.connectTeased('127.0.93.9');
    const start = screen.clock.now();
    screen.clock.advance(STRESS_GREET_WAIT_MS); // the stressed connection is handed over and greeted
    const stressedSession = await screen.handoffOf(stressed);
    assert.ok(stressedSession.verdict.deepTests, 'a deep-test monitor watches the live session');
    assert.equal(await stressed.readLine(EVENT_BOUND_MS), GREETING);

    screen.clock.advance(STRESS_COMMAND_TIME_LIMIT_MS - 1);
    assert.equal(stressedSession.socket.writableEnded, false, 'no time limit before 10 s');
    screen.clock.advance(1);
    assert.equal(stressedSession.socket.writableEnded, true, 'closed 10 s after the greeting');
    assert.equal(await stressed.readLine(EVENT_BOUND_MS), TIMEOUT_REPLY);
    await stressed.waitForEnd(EVENT_BOUND_MS);
    const limit = screen.logs.find((line) => line.event === 'COMMAND TIME LIMIT');
    assert.match(String(limit?.msg), /^COMMAND TIME LIMIT from \[127\.0\.93\.9\]:\d+ after CONNECT$/);

    // The calm connections were greeted at 6 s; their limit is postscreen_command_time_limit.
    const calmSession = await screen.handoffOf(calm!);
    assert.equal(calmSession.socket.writableEnded, false, 'the calm session is still open');
    screen.clock.advance(start + GREET_WAIT_MS + COMMAND_TIME_LIMIT_MS - 1 - screen.clock.now());
    assert.equal(calmSession.socket.writableEnded, false);
    screen.clock.advance(1);
    assert.equal(calmSession.socket.writableEnded, true, 'closed at postscreen_command_time_limit');
    assert.equal(await calm!.readLine(EVENT_BOUND_MS), GREETING);
    assert.equal(await calm!.readLine(EVENT_BOUND_MS), TIMEOUT_REPLY);
  } finally {
    await screen.close();
  }
});

test('stress mode ends at 70% of postscreen_pre_queue_limit: a connection admitted after that has the configured greet wait and command time limit', async () => {
  const screen = await startManualScreen(stressSettings());
  try {
    const clients = await connectEach(screen, 94, 9);
    assert.equal(await stressGauge(screen), 1);
    await clients[0]!.close();
    await until(() => screen.events('HANGUP').length === 1, 'the first hangup');
    assert.equal(screen.screener.limits.counts.screening, 8);
    assert.equal(await stressGauge(screen), 1, '8 of 10 is above 70%: still in stress mode');
    await clients[1]!.close();
    await until(() => screen.events('HANGUP').length === 2, 'the second hangup');
    assert.equal(await stressGauge(screen), 0);
    assert.deepEqual(
      screen.events('STRESS').map((line) => line.msg),
      ['entering STRESS mode with 9 connections', 'leaving STRESS mode with 7 connections'],
    );

    screen.clock.advance(1_000); // the old connections' greet waits end at 6 s, the new one's at 7 s
    const after = await screen.connectTeased('127.0.94.10');
    screen.clock.advance(GREET_WAIT_MS - 1_000);
    assert.equal(screen.handoffs.length, 7, 'the seven older connections');
    assert.equal(screen.handedOver(after), false, 'not handed over at 2 s nor at 5 s');
    screen.clock.advance(1_000);
    const session = await screen.handoffOf(after);
    assert.equal(await after.readLine(EVENT_BOUND_MS), GREETING);
    screen.clock.advance(STRESS_COMMAND_TIME_LIMIT_MS);
    assert.equal(session.socket.writableEnded, false, 'no stress command time limit');
    screen.clock.advance(COMMAND_TIME_LIMIT_MS - STRESS_COMMAND_TIME_LIMIT_MS);
    assert.equal(session.socket.writableEnded, true);
  } finally {
    await screen.close();
  }
});

test('the thresholds are whole connections as postscreen.c truncates them: with postscreen_pre_queue_limit 5, stress mode at 4 connections (.9 × 5), off at 3 (.7 × 5)', async () => {
  const screen = await startManualScreen(stressSettings(5));
  try {
    await connectEach(screen, 95, 3);
    const fourth = await screen.connectTeased('127.0.95.4');
    assert.equal(screen.events('STRESS')[0]?.msg, 'entering STRESS mode with 4 connections');
    screen.clock.advance(STRESS_GREET_WAIT_MS);
    assert.deepEqual(
      screen.handoffs.map((h) => h.verdict.client.address),
      ['127.0.95.4'],
      'the fourth connection has the stress greet wait',
    );
    assert.equal(screen.screener.limits.counts.screening, 3);
    assert.equal(screen.events('STRESS')[1]?.msg, 'leaving STRESS mode with 3 connections', 'its handover took the screen stage to 3');
    assert.equal(await fourth.readLine(EVENT_BOUND_MS), GREETING);
  } finally {
    await screen.close();
  }
});

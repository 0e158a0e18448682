import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock, Timer } from '../../src/clock.js';
import { TimerQueue } from '../../src/screen/timer-queue.js';
import { ManualClock } from '../queue/manual-clock.js';

/** Counts the timers set on the underlying clock. */
class CountingClock implements Clock {
  armed = 0;
  constructor(readonly inner: ManualClock) {}
  now(): number {
    return this.inner.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    this.armed++;
    return this.inner.setTimer(ms, fn);
  }
}

test('10,000 deadlines use one clock timer, and fire in due order', () => {
  const manual = new ManualClock(0);
  const clock = new CountingClock(manual);
  const queue = new TimerQueue(clock);
  const fired: number[] = [];
  for (let i = 0; i < 10_000; i++) queue.setTimer(6_000 + (i % 7), () => fired.push(6_000 + (i % 7)));
  assert.equal(clock.armed, 1);
  assert.equal(queue.size, 10_000);
  manual.advance(6_010);
  assert.equal(fired.length, 10_000);
  assert.deepEqual(fired, [...fired].sort((a, b) => a - b));
  assert.equal(queue.size, 0);
});

test('a cancelled deadline never runs, and cancelled entries do not pile up', () => {
  const manual = new ManualClock(0);
  const queue = new TimerQueue(manual);
  let ran = 0;
  const timers = Array.from({ length: 1_000 }, () => queue.setTimer(100, () => ran++));
  for (const timer of timers.slice(0, 900)) timer.cancel();
  assert.equal(queue.size, 100);
  manual.advance(100);
  assert.equal(ran, 100);
});

test('an earlier deadline re-arms the clock timer', () => {
  const manual = new ManualClock(0);
  const queue = new TimerQueue(manual);
  const order: string[] = [];
  queue.setTimer(1_000, () => order.push('late'));
  queue.setTimer(10, () => order.push('early'));
  manual.advance(10);
  assert.deepEqual(order, ['early']);
  manual.advance(990);
  assert.deepEqual(order, ['early', 'late']);
});

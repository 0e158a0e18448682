/*
 * manual-clock — a Clock whose time moves only when a test says so.
 *
 * Decides: `advance(ms)` moves time forward and runs every timer that came due, in due
 * order (timers a callback sets that fall within the advance run too); `pending()` shows
 * the timers still to fire. Never sleeps.
 * Leaves to others: what the timers do.
 */
import type { Clock, Timer } from '../../src/clock.js';

interface Pending {
  due: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #timers: Pending[] = [];

  constructor(start = Date.UTC(2024, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const pending: Pending = { due: this.#now + Math.max(0, ms), fn, cancelled: false };
    this.#timers.push(pending);
    return { cancel: () => void (pending.cancelled = true) };
  }

  /** How far ahead (ms) each timer still to fire is, soonest first; lets a test see what waits. */
  pending(): number[] {
    return this.#timers.filter((timer) => !timer.cancelled).map((timer) => timer.due - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms` and fires due timers (at most 10,000, a bound for loops). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (let fired = 0; fired < 10_000; fired += 1) {
      this.#timers = this.#timers.filter((timer) => !timer.cancelled);
      const next = this.#timers.filter((timer) => timer.due <= target).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      next.cancelled = true;
      this.#now = Math.max(this.#now, next.due);
      next.fn();
    }
    this.#now = target;
  }
}

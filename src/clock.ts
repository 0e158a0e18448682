/*
 * clock — the injectable source of time.
 *
 * Decides: that every stage reads time and sets timers through a `Clock`, so tests can
 * run time-dependent paths (greet wait, backoff, TTLs) without sleeping for long.
 * Leaves to others: what the time is used for.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` after `ms` milliseconds unless cancelled. The timer never keeps the process alive. */
  setTimer(ms: number, fn: () => void): Timer;
}

/** The real clock: Date.now and unref'd setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

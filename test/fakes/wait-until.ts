/*
 * wait-until — a bounded wait for a condition that an event will make true (a log line
 * written, a probe counted), for tests that cannot be handed a promise.
 *
 * Decides: the condition is checked after every short pause of the event loop until it
 * holds or `timeoutMs` has passed; then the wait rejects naming what was awaited. The
 * bound is a failure limit, never a timing assertion. A condition that asks another
 * process (an HTTP query) may be async, and pause longer between checks (`pauseMs`).
 * Leaves to others: what is awaited.
 */

/**
 * Resolves once `ready()` holds, checked every `pauseMs` (one check at a time when it is
 * async); rejects with "timed out waiting for `what`" after `timeoutMs`.
 */
export async function until(what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 5000, pauseMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/*
 * backoff — when a deferred message is tried again (qmgr(8), postconf(5)
 * minimal_backoff_time, maximal_backoff_time).
 *
 * Decides: the wait after the n-th failed attempt: minimal_backoff_time doubled per
 * attempt (min, 2·min, 4·min, …), never more than maximal_backoff_time.
 * Leaves to others: the clock and the queue run that picks the message up (queue-manager.ts).
 * Bugs: no jitter; Postfix bases the wait on the message's age instead, which grows
 * about as fast.
 */

/**
 * Delay in ms before attempt `attempts + 1`, after `attempts` (≥ 1) failed attempts.
 * `minimal` and `maximal` are ms; a maximal below minimal means minimal.
 */
export function backoffDelay(attempts: number, minimal: number, maximal: number): number {
  const doublings = Math.min(Math.max(attempts - 1, 0), 40); // 2^40·min is beyond any maximal
  return Math.max(minimal, Math.min(maximal, minimal * 2 ** doublings));
}

/*
 * queue-id — names of queued messages.
 *
 * Decides: a queue id is 16 uppercase hex digits: 11 for the arrival time in ms since the
 * epoch (good until the year 2527), then 5 for a per-process sequence that starts at a
 * random value each millisecond. Ids sort by time as strings (like Postfix's long queue
 * ids, enable_long_queue_ids) and never contain a character that needs quoting.
 * Leaves to others: what is stored under the id (spool.ts).
 * Bugs: two processes allocating in the same millisecond collide with probability about
 * 2^-20 per pair of ids; the spool's temporary file is opened exclusively, which catches
 * a collision in incoming/ but not with a file already in active/ or deferred/.
 */
import { randomInt } from 'node:crypto';

/** Pattern of a queue id; anything else in a queue directory is not a queued message. */
export const QUEUE_ID_PATTERN = /^[0-9A-F]{16}$/;

const SEQUENCE_SPACE = 0x100000; // 5 hex digits
let lastTime = -1;
let sequence = 0;

/** A new queue id for a message arriving at `now` (ms since the epoch). */
export function newQueueId(now: number): string {
  const time = Math.max(Math.floor(now), lastTime);
  if (time !== lastTime) {
    lastTime = time;
    sequence = randomInt(SEQUENCE_SPACE / 2);
  } else {
    sequence += 1;
    if (sequence >= SEQUENCE_SPACE) {
      // XXX: more than half a million ids in one ms: borrow the next millisecond.
      lastTime += 1;
      sequence = 0;
    }
  }
  return lastTime.toString(16).toUpperCase().padStart(11, '0') + sequence.toString(16).toUpperCase().padStart(5, '0');
}

/** True when `name` is a queue id (and not a temporary or foreign file). */
export function isQueueId(name: string): boolean {
  return QUEUE_ID_PATTERN.test(name);
}

/** The arrival time (ms since the epoch) a queue id begins with. */
export function queueIdTime(id: string): number {
  return parseInt(id.slice(0, 11), 16);
}

/*
 * queue-id — names of queued messages.
 *
 * Decides: a queue id is 16 uppercase hex digits: 11 for the arrival time in ms since the
 * epoch (good until the year 2527), then 5 for a per-process sequence that starts at a
 * random value each millisecond. Ids sort by time as strings (like Postfix's long queue
 * ids, enable_long_queue_ids) and never contain a character that needs quoting. With
 * mxscreen_workers > 1 each process writing to the queue directory has a slot (the owner
 * 0, worker i slot i + 1; setQueueIdSlot): the 20 sequence bits are split into `slots`
 * disjoint ranges, the slot's range taken by its high bits, so two processes never make
 * the same id in the same millisecond.
 * Leaves to others: what is stored under the id (spool.ts), who gets which slot (workers/).
 * Bugs: a restarted process in a slot could repeat an id of its previous life only if the
 * clock went back or that life borrowed milliseconds ahead (> 2^20 / slots ids in one ms);
 * the spool's temporary file is opened exclusively, which catches a collision in incoming/
 * but not with a file already in active/ or deferred/.
 */
import { randomInt } from 'node:crypto';

/** Pattern of a queue id; anything else in a queue directory is not a queued message. */
export const QUEUE_ID_PATTERN = /^[0-9A-F]{16}$/;

const SEQUENCE_BITS = 20; // 5 hex digits
let slotBase = 0;
/** Sequence numbers of this process's slot: 2^20 / slots. */
let sequenceSpace = 1 << SEQUENCE_BITS;
let lastTime = -1;
let sequence = 0;

/**
 * Gives this process slot `slot` of `slots` (a power of two, at most 2^16: 16 sequence
 * bits go to slots, at least 16 ids per ms stay each). Call before the first newQueueId.
 * Throws RangeError for a slot outside 0 … slots − 1 or a count that is not a power of two.
 */
export function setQueueIdSlot(slot: number, slots: number): void {
  if (!Number.isInteger(slots) || slots < 1 || slots > 1 << 16 || (slots & (slots - 1)) !== 0) throw new RangeError(`queue id slots ${slots}: not a power of two up to 65536`);
  if (!Number.isInteger(slot) || slot < 0 || slot >= slots) throw new RangeError(`queue id slot ${slot} of ${slots}`);
  sequenceSpace = (1 << SEQUENCE_BITS) / slots;
  slotBase = slot * sequenceSpace;
  lastTime = -1;
  sequence = 0;
}

/** The smallest power of two ≥ `processes` (queue id slots for the owner and its workers). */
export function queueIdSlots(processes: number): number {
  let slots = 1;
  while (slots < processes) slots *= 2;
  return slots;
}

/** A new queue id for a message arriving at `now` (ms since the epoch). */
export function newQueueId(now: number): string {
  const time = Math.max(Math.floor(now), lastTime);
  if (time !== lastTime) {
    lastTime = time;
    sequence = randomInt(Math.max(1, sequenceSpace / 2));
  } else {
    sequence += 1;
    if (sequence >= sequenceSpace) {
      // XXX: more than half a million ids in one ms: borrow the next millisecond.
      lastTime += 1;
      sequence = 0;
    }
  }
  return lastTime.toString(16).toUpperCase().padStart(11, '0') + (slotBase + sequence).toString(16).toUpperCase().padStart(5, '0');
}

/** True when `name` is a queue id (and not a temporary or foreign file). */
export function isQueueId(name: string): boolean {
  return QUEUE_ID_PATTERN.test(name);
}

/** The arrival time (ms since the epoch) a queue id begins with. */
export function queueIdTime(id: string): number {
  return parseInt(id.slice(0, 11), 16);
}

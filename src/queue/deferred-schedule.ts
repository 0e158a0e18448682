/*
 * deferred-schedule — the queue manager's in-memory index of deferred/ (qmgr(8) scans
 * the deferred queue; we keep what a scan needs): id → next attempt and the domains of
 * undelivered recipients.
 *
 * Decides: the index is built from the small state files (spool.readSchedule), never
 * from queue files or bodies, 32 reads at once; a rescan drops ids gone from deferred/
 * and reads the new ones; one pass takes what is due (up to the room in active/) and
 * finds the earliest next attempt for the wake-up timer; a message without a state file
 * is due now and its domains are unknown.
 * Leaves to others: moves and timers (queue-manager.ts), the state files (spool.ts,
 * delivery-state.ts), matching a flush's domain (queue-control.ts).
 * Bugs: the whole index is in memory; a state file another process changes is read again
 * only when its id is new to a rescan.
 */
import type { Spool } from './spool.js';
import { undeliveredDomains, type DeliveryState } from './delivery-state.js';
import { recipientDomain } from '../message/envelope.js';

export interface ScheduleEntry {
  /** Next attempt, ms since the epoch; 0 = now. */
  due: number;
  /** Domains of undelivered recipients; undefined when unknown (no state file). */
  domains: readonly string[] | undefined;
}

/** The schedule of deferred/: queue id → entry. */
export type DeferredSchedule = Map<string, ScheduleEntry>;

/** Deferred state files read at once while building the schedule. */
const INDEX_PARALLELISM = 32;

/**
 * Adds every message of deferred/ to `schedule` from its state file (at start). Throws
 * the fs error when deferred/ cannot be listed.
 */
export async function buildSchedule(spool: Spool, schedule: DeferredSchedule): Promise<void> {
  const ids = await spool.list('deferred');
  // Bounded: INDEX_PARALLELISM workers walk the list once.
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const entry = await spool.readSchedule(id);
      schedule.set(id, { due: entry?.nextAttempt ?? 0, domains: entry?.domains });
    }
  };
  await Promise.all(Array.from({ length: Math.min(INDEX_PARALLELISM, ids.length) }, worker));
}

/**
 * Makes `schedule` follow deferred/ as listed in `ids` (files another process put there
 * or removed): drops what is gone, reads the state of what is new and not in `owned`
 * (ids in active/ that the manager holds, read at each step).
 */
export async function reconcileSchedule(spool: Spool, schedule: DeferredSchedule, ids: readonly string[], owned: ReadonlySet<string>): Promise<void> {
  const present = new Set(ids);
  for (const id of schedule.keys()) if (!present.has(id)) schedule.delete(id);
  for (const id of ids) {
    if (schedule.has(id) || owned.has(id)) continue;
    const entry = await spool.readSchedule(id);
    schedule.set(id, { due: entry?.nextAttempt ?? 0, domains: entry?.domains });
  }
}

/**
 * One pass over `schedule` at `now` (ms since the epoch): removes and returns the ids
 * that are due, not in `owned`, while `owned.size` plus those taken stays under
 * `activeLimit`; `earliest` is the next attempt of what stays (at least now + 1 ms),
 * Infinity when nothing does. No file access.
 */
export function takeDue(schedule: DeferredSchedule, now: number, owned: ReadonlySet<string>, activeLimit: number): { due: string[]; earliest: number } {
  const due: string[] = [];
  let earliest = Infinity;
  // Bounded by the size of the schedule.
  for (const [id, entry] of schedule) {
    if (owned.has(id)) continue;
    if (entry.due <= now && owned.size + due.length < activeLimit) {
      schedule.delete(id);
      due.push(id);
    } else {
      earliest = Math.min(earliest, Math.max(entry.due, now + 1));
    }
  }
  return { due, earliest };
}

/** The entry of a message that goes to deferred/ with state `state`. */
export function scheduleEntry(state: DeliveryState): ScheduleEntry {
  return { due: state.nextAttempt, domains: undeliveredDomains(state) };
}

/**
 * The domains of every recipient of message `id` in deferred/, from its queue file head
 * ([] when unreadable): what a flush by domain uses when the entry's domains are unknown.
 */
export function queuedDomains(spool: Spool, id: string): Promise<string[]> {
  return spool.readHead('deferred', id).then((head) => head.envelope.recipients.map((r) => recipientDomain(r.address)), () => []);
}

/*
 * timer-queue — every deadline of the screen stage on one Clock timer.
 *
 * Decides: that waiting connections cost memory, not timers: greet waits, DNSBL
 * time limits, PROXY header time limits and command time limits are entries in one
 * binary heap ordered by due time, and only the earliest one has a Clock timer. A
 * cancelled entry is dropped lazily; when cancelled entries outnumber live ones the heap
 * is rebuilt, so memory stays bounded by the live deadlines. Implements `Clock`, so the
 * tests (pregreet.ts, dnsbl.ts) take it where they take a clock.
 * Leaves to others: what runs when a deadline comes (the callers).
 * Bugs: entries that come due in the same Clock callback run in due order, but all at
 * once; a callback that throws stops the others of that batch until the next one.
 */
import type { Clock, Timer } from '../clock.js';

interface Entry {
  readonly due: number;
  /** Insertion order, to keep equal due times first-in first-out. */
  readonly order: number;
  fn: (() => void) | undefined;
}

export class TimerQueue implements Clock {
  readonly #clock: Clock;
  #heap: Entry[] = [];
  #cancelled = 0;
  #sequence = 0;
  #armed: { readonly due: number; readonly timer: Timer } | undefined;

  /** `clock`: the injected Clock whose single timer drives the queue. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  now(): number {
    return this.#clock.now();
  }

  /** Live deadlines (cancelled ones not counted). */
  get size(): number {
    return this.#heap.length - this.#cancelled;
  }

  /** Runs `fn` after `ms` milliseconds unless cancelled. O(log n); no Clock timer of its own. */
  setTimer(ms: number, fn: () => void): Timer {
    const entry: Entry = { due: this.#clock.now() + Math.max(0, ms), order: this.#sequence++, fn };
    this.#push(entry);
    this.#arm();
    return {
      cancel: () => {
        if (entry.fn === undefined) return;
        entry.fn = undefined;
        this.#cancelled++;
        if (this.#cancelled > 64 && this.#cancelled * 2 > this.#heap.length) this.#compact();
      },
    };
  }

  #arm(): void {
    this.#dropCancelledTop();
    const top = this.#heap[0];
    if (top === undefined) {
      this.#armed?.timer.cancel();
      this.#armed = undefined;
      return;
    }
    if (this.#armed !== undefined && this.#armed.due <= top.due) return;
    this.#armed?.timer.cancel();
    const due = top.due;
    this.#armed = { due, timer: this.#clock.setTimer(Math.max(0, due - this.#clock.now()), () => this.#fire()) };
  }

  #fire(): void {
    this.#armed = undefined;
    const now = this.#clock.now();
    // Bounded: at most the entries present now; entries added by callbacks wait for the next turn.
    for (let budget = this.#heap.length; budget > 0; budget--) {
      const top = this.#heap[0];
      if (top === undefined || top.due > now) break;
      this.#pop();
      const fn = top.fn;
      if (fn === undefined) {
        this.#cancelled--;
        continue;
      }
      top.fn = undefined;
      fn();
    }
    this.#arm();
  }

  #dropCancelledTop(): void {
    while (this.#heap[0] !== undefined && this.#heap[0].fn === undefined) {
      this.#pop();
      this.#cancelled--;
    }
  }

  #compact(): void {
    const live = this.#heap.filter((entry) => entry.fn !== undefined);
    this.#heap = [];
    this.#cancelled = 0;
    for (const entry of live) this.#push(entry);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
      index = smallest;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.due < b.due || (a.due === b.due && a.order < b.order);
}

/*
 * faulty-file-system — the queue's commit-path calls (QueueFileSystem) over the real file
 * system, with one fault injected at a chosen step.
 *
 * Decides: every call of the commit path counts as one step (open, each writev, fsync,
 * fstat, close, rename, link, unlink, directory fsync), numbered from 1 while `armed`. At
 * step `at` the call fails as `fault` says: `ENOSPC` or `EIO` reject as the kernel does;
 * `short` writes only part of what a writev of two bytes or more asked and returns
 * the short count, as a write interrupted by a signal does, the rest succeeding;
 * `short+ENOSPC` is a disk that fills up: the short write, then ENOSPC for every later
 * write. A fault named for writev only (`short…`) at another call is no fault. A step can
 * also be held (hold()): each call that reaches it waits until the test lets it go on, so
 * a test can see what the client has been told while a fsync or rename is pending.
 * Leaves to others: what the spool does about it (the tests check that).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DirectorySync } from '../../src/queue/group-commit.js';
import { NODE_QUEUE_FILE_SYSTEM, type QueueFileHandle, type QueueFileSystem } from '../../src/queue/queue-file-system.js';

export type Fault = 'ENOSPC' | 'EIO' | 'short' | 'short+ENOSPC';
export const FAULTS: readonly Fault[] = ['ENOSPC', 'EIO', 'short', 'short+ENOSPC'];

export type Step = 'open' | 'writev' | 'sync' | 'stat' | 'close' | 'rename' | 'link' | 'unlink' | 'directory fsync';
/** Picks the step a fault strikes by what it is (a writev's buffers are given). */
export type StepMatch = (step: Step, buffers: readonly Buffer[]) => boolean;

/** The writev that carries a queue file's END record. */
export const END_RECORD_WRITE: StepMatch = (step, buffers) => step === 'writev' && buffers.at(-1)?.subarray(0, 4).toString('latin1') === 'END ';

function errno(code: 'ENOSPC' | 'EIO', step: Step): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected at ${step}`), { code });
}

/** Calls of one kind held before they run (FaultyFileSystem.hold), in arrival order. */
export class HeldStep {
  readonly match: StepMatch;
  readonly #waiting: (() => void)[] = [];
  #arrived = 0;
  #arrivals: { count: number; resolve: () => void }[] = [];
  #open = false;

  constructor(match: StepMatch) {
    this.match = match;
  }

  /**
   * Resolves once `count` calls in all have reached the step (held or, after releaseAll,
   * not); rejects after `timeoutMs` (a bound, so a broken promise fails instead of hanging).
   */
  reached(count = 1, timeoutMs = 5000): Promise<void> {
    if (this.#arrived >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.#arrived} of ${count} calls reached the held step within ${timeoutMs} ms`)), timeoutMs);
      this.#arrivals.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Calls that reached the step so far. */
  get arrived(): number {
    return this.#arrived;
  }

  /** Calls waiting now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Lets the oldest waiting call run. */
  releaseOne(): void {
    this.#waiting.shift()?.();
  }

  /** Lets every waiting call run, and holds no more. */
  releaseAll(): void {
    this.#open = true;
    for (const go of this.#waiting.splice(0)) go();
  }

  /** @internal FaultyFileSystem: a call reached the step; resolves when it may run. */
  arrive(): Promise<void> {
    this.#arrived += 1;
    this.#arrivals = this.#arrivals.filter((arrival) => (arrival.count <= this.#arrived ? (arrival.resolve(), false) : true));
    if (this.#open) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
}

export class FaultyFileSystem implements QueueFileSystem {
  readonly #holds: HeldStep[] = [];
  /** Steps are counted (and the fault can strike) only while armed. */
  armed = false;
  /** Steps counted since the last arm(). */
  steps: Step[] = [];
  #at: number | StepMatch = 0;
  #fault: Fault = 'ENOSPC';
  /** The disk is full (after a `short+ENOSPC` fault): every later write fails. */
  #full = false;
  /** Whether the fault struck since arm(). */
  struck = false;

  /**
   * Starts counting from 1; the fault strikes at step `at` (0: never), or at the first
   * step `at` matches (a writev is shown its buffers).
   */
  arm(at: number | StepMatch, fault: Fault): void {
    this.armed = true;
    this.steps = [];
    this.#at = at;
    this.#fault = fault;
    this.#full = false;
    this.struck = false;
  }

  disarm(): void {
    this.armed = false;
    this.#full = false;
  }

  /** Holds every call that `match` picks until the test releases it (see HeldStep). */
  hold(match: StepMatch): HeldStep {
    const held = new HeldStep(match);
    this.#holds.push(held);
    return held;
  }

  /** @internal Waits while a hold keeps `step`. */
  async pass(step: Step, buffers: readonly Buffer[] = []): Promise<void> {
    for (const held of this.#holds) if (held.match(step, buffers)) await held.arrive();
  }

  /** The fault this step suffers, if any (and counts the step); `buffers`: what a writev writes. */
  #step(step: Step, buffers: readonly Buffer[] = []): Fault | undefined {
    if (!this.armed || this.struck) {
      if (this.armed) this.steps.push(step);
      return undefined;
    }
    this.steps.push(step);
    const asked = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (typeof this.#at === 'number' ? this.steps.length !== this.#at : !this.#at(step, buffers)) return undefined;
    if (this.#fault.startsWith('short') && (step !== 'writev' || asked < 2)) return undefined;
    this.struck = true;
    return this.#fault;
  }

  /** Throws the step's errno fault (ENOSPC, EIO) for calls that are not writes. */
  #check(step: Step): void {
    const fault = this.#step(step);
    if (fault === 'ENOSPC' || fault === 'EIO') throw errno(fault, step);
  }

  async open(path: string, flags: 'wx' | 'r+' | 'w'): Promise<QueueFileHandle> {
    await this.pass('open');
    this.#check('open');
    return new FaultyHandle(await open(path, flags, 0o600), this);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.pass('rename');
    this.#check('rename');
    return NODE_QUEUE_FILE_SYSTEM.rename(from, to);
  }

  async link(from: string, to: string): Promise<void> {
    await this.pass('link');
    this.#check('link');
    return NODE_QUEUE_FILE_SYSTEM.link(from, to);
  }

  async unlink(path: string): Promise<void> {
    await this.pass('unlink');
    this.#check('unlink');
    return NODE_QUEUE_FILE_SYSTEM.unlink(path);
  }

  directorySync(path: string): DirectorySync {
    return new DirectorySync(path, async (directory) => {
      await this.pass('directory fsync');
      this.#check('directory fsync');
      const handle = await open(directory, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  /** @internal FaultyHandle: the fault of one writev of `buffers`. */
  writeFault(buffers: readonly Buffer[]): Fault | 'full' | undefined {
    const fault = this.#step('writev', buffers);
    if (fault === 'short+ENOSPC') this.#full = true;
    else if (this.#full) return 'full';
    return fault;
  }

  /** @internal FaultyHandle */
  check(step: Step): void {
    this.#check(step);
  }
}

class FaultyHandle implements QueueFileHandle {
  constructor(
    private readonly handle: FileHandle,
    private readonly fs: FaultyFileSystem,
  ) {}

  async writev(buffers: readonly Buffer[], position: number): Promise<{ bytesWritten: number }> {
    await this.fs.pass('writev', buffers);
    const asked = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const fault = this.fs.writeFault(buffers);
    if (fault === 'ENOSPC' || fault === 'EIO') throw errno(fault, 'writev');
    if (fault === 'full') throw errno('ENOSPC', 'writev');
    if (fault === 'short' || fault === 'short+ENOSPC') {
      // At least one byte, at least one byte short (asked ≥ 2 here).
      const part = Buffer.concat(buffers).subarray(0, Math.max(1, Math.floor(asked / 2)));
      return this.handle.write(part, 0, part.length, position);
    }
    return this.handle.writev(buffers, position);
  }

  async sync(): Promise<void> {
    await this.fs.pass('sync');
    this.fs.check('sync');
    return this.handle.sync();
  }

  async stat(): Promise<{ size: number }> {
    await this.fs.pass('stat');
    this.fs.check('stat');
    return this.handle.stat();
  }

  async close(): Promise<void> {
    await this.fs.pass('close');
    this.fs.check('close');
    return this.handle.close();
  }
}

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
 * write. A fault named for writev only (`short…`) at another call is no fault.
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

export class FaultyFileSystem implements QueueFileSystem {
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
    this.#check('open');
    return new FaultyHandle(await open(path, flags, 0o600), this);
  }

  async rename(from: string, to: string): Promise<void> {
    this.#check('rename');
    return NODE_QUEUE_FILE_SYSTEM.rename(from, to);
  }

  async link(from: string, to: string): Promise<void> {
    this.#check('link');
    return NODE_QUEUE_FILE_SYSTEM.link(from, to);
  }

  async unlink(path: string): Promise<void> {
    this.#check('unlink');
    return NODE_QUEUE_FILE_SYSTEM.unlink(path);
  }

  directorySync(path: string): DirectorySync {
    return new DirectorySync(path, async (directory) => {
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
    this.fs.check('sync');
    return this.handle.sync();
  }

  async stat(): Promise<{ size: number }> {
    this.fs.check('stat');
    return this.handle.stat();
  }

  async close(): Promise<void> {
    this.fs.check('close');
    return this.handle.close();
  }
}

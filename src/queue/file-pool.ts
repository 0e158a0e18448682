/*
 * file-pool — removed queue files, emptied and kept for new messages (recycle/).
 *
 * Decides: a removed message's file is renamed into `recycle/` (from then on it is not
 * queued: a crash there loses nothing that was not delivered or deleted), emptied
 * (O_TRUNC: no message content stays behind), and handed to the next new message, which
 * links it to its temporary name exclusively (as `wx` would) and writes it. Why: on the
 * benchmark VM's ext4 creating a regular file costs about 1 ms of kernel CPU, a rename,
 * link or unlink 20–40 µs; a relay creates one file per message. At most `limit` files
 * are kept; the rest are unlinked. At open every file left in recycle/ is unlinked (a
 * file is never truncated there at start: after an unclean stop it may share its inode
 * with a queued message, and unlinking a name is always safe).
 * Leaves to others: what is written into a file and its durability (spool.ts).
 * One process per queue directory owns recycle/: the owner's spool, which removes every
 * delivered file. A worker's spool (role writer, mxscreen_workers > 1) writes new messages
 * but removes none, so the owner lends it files: the worker asks (`wanted`) when it holds
 * fewer than LEND_LOW_WATER, for up to LEND_TARGET; the owner hands over names of ready
 * files (lend(), they leave its count and stay in recycle/), the worker takes them oldest
 * first (supply(), take()). Without lending, each message cost a worker a file creation and
 * the owner the unlink of a file with data blocks (a 2-worker relay profile, with unlink
 * made synchronous to see it, found the owner 0.6 ms per message inside unlink(2)). A
 * short answer (the owner had too few) makes the worker wait
 * LEND_RETRY_MS before it asks again, and create files meanwhile.
 * Bugs: a second owner on the same directory (two mxscreen instances) would unlink the
 * first one's pool at its open; it then creates files again, nothing is lost.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueFileSystem } from './queue-file-system.js';

/** Directory of emptied files waiting for a new message. */
export const RECYCLE_DIRECTORY = 'recycle';
/** A borrowing pool asks for files when it holds fewer than this. */
export const LEND_LOW_WATER = 8;
/** …and asks for as many as bring it to this: a worker holds at most this many lent files. */
export const LEND_TARGET = 32;
/** After an answer shorter than asked, a borrowing pool waits this long (ms) before asking again. */
export const LEND_RETRY_MS = 1000;

/** How a pool that removes nothing (a worker's) gets files: it asks its owner for `count` more. */
export interface FileBorrowing {
  readonly wanted: (count: number) => void;
  /** Now, ms (the spool's clock). */
  readonly now: () => number;
}

export class FilePool {
  readonly #directory: string;
  readonly #limit: number;
  readonly #fs: QueueFileSystem;
  readonly #borrowing: FileBorrowing | undefined;
  /** Names of empty files in recycle/, ready to use, oldest first. */
  readonly #ready: string[] = [];
  /** Files being emptied or linked: counted against the limit. */
  #busy = 0;
  #next = 0;
  /** Borrowing: files asked for and not answered yet (0: no request out). */
  #asked = 0;
  /** Borrowing: no request before this time (ms), after a short answer. */
  #quietUntil = 0;

  /**
   * `directory`: absolute path of recycle/; `limit`: files kept at most (0 for a pool that
   * removes nothing); `fs`: the calls of take() and give(); `borrowing`: for a worker's
   * pool, how it asks for lent files.
   */
  constructor(directory: string, limit: number, fs: QueueFileSystem, borrowing?: FileBorrowing) {
    this.#directory = directory;
    this.#limit = limit;
    this.#fs = fs;
    this.#borrowing = borrowing;
  }

  /**
   * The owner's side of lending: up to `count` ready files, by name in recycle/. They leave
   * this pool's count (the borrower links and unlinks them) and stay in the directory.
   */
  lend(count: number): string[] {
    return this.#ready.splice(0, Math.max(0, count));
  }

  /** The borrower's side: the owner's answer to `wanted` (names in recycle/, possibly fewer than asked, or none). */
  supply(names: readonly string[]): void {
    for (const name of names) if (isPoolName(name)) this.#ready.push(name);
    if (this.#borrowing && names.length < this.#asked) this.#quietUntil = this.#borrowing.now() + LEND_RETRY_MS;
    this.#asked = 0;
  }

  /** The owner: unlinks lent files a dead worker did not use (a name it used is gone already). Never throws. */
  async reclaim(names: readonly string[]): Promise<void> {
    for (const name of names) if (isPoolName(name)) await unlink(join(this.#directory, name)).catch(() => undefined);
  }

  /** Borrowing: asks for files when few are left and no request is out. */
  #askIfLow(): void {
    const borrowing = this.#borrowing;
    if (!borrowing || this.#asked > 0 || this.#ready.length >= LEND_LOW_WATER || borrowing.now() < this.#quietUntil) return;
    this.#asked = LEND_TARGET - this.#ready.length;
    borrowing.wanted(this.#asked);
  }

  /** Unlinks what an earlier process left in recycle/. Never throws. */
  async sweep(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#directory);
    } catch {
      return;
    }
    for (const name of names) await unlink(join(this.#directory, name)).catch(() => undefined);
  }

  /**
   * Gives an empty file the name `path` (exclusively: rejects with EEXIST as `wx` would)
   * and resolves true; false when the pool has none (the caller creates the file).
   * Rejects with the fs error of the link.
   */
  async take(path: string): Promise<boolean> {
    this.#askIfLow();
    // Bounded by the pool size: a file that vanished (swept by another process) is skipped.
    for (let name = this.#ready.shift(); name !== undefined; name = this.#ready.shift()) {
      const from = join(this.#directory, name);
      this.#busy += 1;
      try {
        await this.#fs.link(from, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        this.#ready.unshift(name);
        throw error;
      } finally {
        this.#busy -= 1;
      }
      await this.#fs.unlink(from).catch(() => undefined);
      return true;
    }
    return false;
  }

  /**
   * Removes the queue file at `path`: renamed into recycle/ and emptied when the pool has
   * room, unlinked otherwise. Rejects with the fs error of the rename or unlink (ENOENT…);
   * once the file has left `path`, never rejects.
   */
  async give(path: string): Promise<void> {
    if (this.#ready.length + this.#busy >= this.#limit) return this.#fs.unlink(path);
    const name = `${process.pid}.${(this.#next += 1)}`;
    const kept = join(this.#directory, name);
    await this.#fs.rename(path, kept);
    this.#busy += 1;
    try {
      const file = await this.#fs.open(kept, 'w'); // O_TRUNC: empty from here on
      await file.close();
      this.#ready.push(name);
    } catch {
      await this.#fs.unlink(kept).catch(() => undefined);
    } finally {
      this.#busy -= 1;
    }
  }

  /** Empty files ready (tests). */
  get size(): number {
    return this.#ready.length;
  }
}

/** A name give() makes (`<pid>.<n>`): what lending may pass between processes, never a path. */
function isPoolName(name: string): boolean {
  return /^[0-9]+\.[0-9]+$/.test(name);
}

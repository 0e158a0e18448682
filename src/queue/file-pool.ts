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
 * One process per queue directory recycles: the owner's spool; a worker's spool (role
 * writer, mxscreen_workers > 1) has a pool of size 0, so it never sweeps or takes from it.
 * Bugs: a second owner on the same directory (two mxscreen instances) would unlink the
 * first one's pool at its open; it then creates files again, nothing is lost.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueFileSystem } from './queue-file-system.js';

/** Directory of emptied files waiting for a new message. */
export const RECYCLE_DIRECTORY = 'recycle';

export class FilePool {
  readonly #directory: string;
  readonly #limit: number;
  readonly #fs: QueueFileSystem;
  /** Names of empty files in recycle/, ready to use. */
  readonly #ready: string[] = [];
  /** Files being emptied or linked: counted against the limit. */
  #busy = 0;
  #next = 0;

  /** `directory`: absolute path of recycle/; `limit`: files kept at most; `fs`: the calls of take() and give(). */
  constructor(directory: string, limit: number, fs: QueueFileSystem) {
    this.#directory = directory;
    this.#limit = limit;
    this.#fs = fs;
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
    // Bounded by the pool size: a file that vanished (swept by another process) is skipped.
    for (let name = this.#ready.pop(); name !== undefined; name = this.#ready.pop()) {
      const from = join(this.#directory, name);
      this.#busy += 1;
      try {
        await this.#fs.link(from, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        this.#ready.push(name);
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

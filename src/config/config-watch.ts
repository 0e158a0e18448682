/*
 * config-watch — notices when main.cf or a table file changes on disk.
 *
 * Decides: a cheap poll on the injected clock (every `intervalMs`, one stat per file:
 * modification time, size and inode), so an edit, a `cp` over the file and an
 * editor's rename-into-place are all seen, on every platform, without fs.watch's
 * lost events; several changes within one interval give one call. A file that
 * disappears counts as changed (the reload then reports it with file:0).
 * Leaves to others: what a change means (main.ts reloads; a bad reload keeps the last
 * good configuration and logs file:line).
 * Bugs: a change that keeps mtime, size and inode (within the file system's mtime
 * resolution) is missed until the next one.
 */
import { statSync } from 'node:fs';
import type { Clock, Timer } from '../clock.js';

type Stamp = string;

function stampOf(file: string): Stamp {
  try {
    const stat = statSync(file);
    return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
  } catch {
    return 'missing';
  }
}

export interface WatchOptions {
  readonly clock: Clock;
  /** Time between two polls, ms. */
  readonly intervalMs: number;
  /** Called with the files that changed since the last poll. */
  readonly onChange: (files: readonly string[]) => void;
}

/** Polls `files` until stop(). At most 10 000 files are watched (a bound). */
export class SourceWatcher {
  #stamps = new Map<string, Stamp>();
  #timer: Timer | undefined;
  readonly #options: WatchOptions;

  constructor(files: readonly string[], options: WatchOptions) {
    this.#options = options;
    this.setFiles(files);
    this.#schedule();
  }

  /** Watches `files` from now on (after a reload: the new configuration's sources). */
  setFiles(files: readonly string[]): void {
    this.#stamps = new Map(files.slice(0, 10_000).map((file) => [file, stampOf(file)]));
  }

  /** Polls once now; returns the files that changed (and reports them). */
  poll(): string[] {
    const changed: string[] = [];
    for (const [file, stamp] of this.#stamps) {
      const now = stampOf(file);
      if (now !== stamp) {
        changed.push(file);
        this.#stamps.set(file, now);
      }
    }
    if (changed.length > 0) this.#options.onChange(changed);
    return changed;
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#options.clock.setTimer(this.#options.intervalMs, () => {
      this.poll();
      if (this.#timer !== undefined) this.#schedule();
    });
  }
}

/*
 * group-commit — several committing messages share one directory fsync.
 *
 * Decides: a caller of `sync()` gets a promise that resolves after an fsync of the
 * directory that *started after* its call (so its rename is covered). While one fsync
 * runs, every new caller waits for the single next one: under load N commits cost about
 * two directory fsyncs, not N (the durability contract is unchanged: each 250 still
 * follows an fsync that covers its rename). Postfix gets the same effect from its many
 * cleanup processes sharing the file system journal.
 * Leaves to others: the file's own fsync and the rename (spool.ts).
 */
import { open } from 'node:fs/promises';

export class DirectorySync {
  readonly #path: string;
  readonly #fsync: (path: string) => Promise<void>;
  /** The fsync now running, if any. */
  #running: Promise<void> | undefined;
  /** The fsync that will start when the running one ends, shared by everyone waiting for it. */
  #next: Promise<void> | undefined;

  /** `path`: absolute path of the directory to fsync; `fsync` is replaceable for tests. */
  constructor(path: string, fsync: (path: string) => Promise<void> = syncDirectory) {
    this.#path = path;
    this.#fsync = fsync;
  }

  /** Resolves after an fsync of the directory begun after this call; rejects with its fs error. */
  sync(): Promise<void> {
    if (!this.#running) return this.#start();
    this.#next ??= this.#running.then(
      () => this.#start(),
      () => this.#start(),
    );
    return this.#next;
  }

  #start(): Promise<void> {
    this.#next = undefined;
    const run = this.#fsync(this.#path).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }
}

/** fsync of a directory: makes renames and unlinks in it durable. */
export async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

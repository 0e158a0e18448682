/*
 * group-commit — several committing messages share one directory fsync.
 *
 * Decides: a caller of `sync()` gets a promise that resolves after an fsync of the
 * directory that *started after* its call (so its rename is covered). While one fsync
 * runs, every new caller waits for the single next one: under load N commits cost about
 * two directory fsyncs, not N (the durability contract is unchanged: each 250 still
 * follows an fsync that covers its rename). Postfix gets the same effect from its many
 * cleanup processes sharing the file system journal. The directory's descriptor is opened
 * once and kept (an open and a close per fsync cost as much as the fsync call itself).
 * Leaves to others: the file's own fsync and the rename (spool.ts).
 * Bugs: a kept descriptor outlives a directory removed under it (fsync then syncs nothing
 * that matters: the renames into it fail first).
 */
import { close as closeDescriptor, fsync as fsyncDescriptor, open as openDescriptor } from 'node:fs';

export class DirectorySync {
  readonly #path: string;
  readonly #fsync: (path: string) => Promise<void>;
  readonly #kept: KeptDirectory | undefined;
  /** The fsync now running, if any. */
  #running: Promise<void> | undefined;
  /** The fsync that will start when the running one ends, shared by everyone waiting for it. */
  #next: Promise<void> | undefined;

  /**
   * `path`: absolute path of the directory to fsync; `fsync` is replaceable for tests
   * (default: through a descriptor kept open until close()).
   */
  constructor(path: string, fsync?: (path: string) => Promise<void>) {
    this.#path = path;
    this.#kept = fsync ? undefined : new KeptDirectory(path);
    this.#fsync = fsync ?? (() => this.#kept!.fsync());
  }

  /** Closes the kept descriptor, once no sync() is running (a later sync() opens it again). Never throws. */
  close(): void {
    this.#kept?.close();
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

/** fsync of a directory through one descriptor opened at the first fsync and kept. */
class KeptDirectory {
  readonly #path: string;
  #descriptor: Promise<number> | undefined;

  constructor(path: string) {
    this.#path = path;
  }

  /** fsync(2) of the directory; rejects with the fs error (a failed open is retried next time). */
  async fsync(): Promise<void> {
    const opening = (this.#descriptor ??= new Promise<number>((resolve, reject) => openDescriptor(this.#path, 'r', (error, fd) => (error ? reject(error) : resolve(fd)))));
    let fd: number;
    try {
      fd = await opening;
    } catch (error) {
      if (this.#descriptor === opening) this.#descriptor = undefined;
      throw error;
    }
    await new Promise<void>((resolve, reject) => fsyncDescriptor(fd, (error) => (error ? reject(error) : resolve())));
  }

  close(): void {
    const opening = this.#descriptor;
    this.#descriptor = undefined;
    opening?.then(
      (fd) => closeDescriptor(fd, () => undefined),
      () => undefined,
    );
  }
}

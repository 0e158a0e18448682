/*
 * spool — the queue directory: where queue files live and how they move.
 *
 * Decides: the layout `incoming/ active/ deferred/ hold/ corrupt/` (Postfix's queue names)
 * plus `state/` (delivery-state.ts), `control/` (queue-control.ts), `recycle/` (file-pool.ts);
 * the durable write of a new message (`incoming/<id>.tmp` taken exclusively, written in
 * 64 KiB batches — a small message is one write at commit — END record, fsync, a check
 * that the file's size is head + body + END record (anything else is a bug: logged, 451),
 * rename to `incoming/<id>` or, held by a header check, `hold/<id>`, fsync of that
 * directory shared by concurrent commits (group-commit.ts): only then may the client get
 * 250, README "Queue and delivery"); any failure on that path (ENOSPC, EIO, a write that
 * stays short) removes the file and rejects, so the client gets 452 4.3.1 or 451 4.3.0;
 * the durable write of a state file; the free-space floor (queue_minfree, 1.5 ×
 * message_size_limit): below it a new message is ENOSPC. Moves are plain renames. Small
 * messages just committed reach load() from memory. The commit path's system calls go
 * through queue-file-system.ts, so tests can fail any one of them.
 * Leaves to others: the file format (queue-file.ts), scheduling (queue-manager.ts), what
 * may be done with a file in corrupt/ (corrupt-repair.ts).
 * Role: the owner's spool (default) sweeps and counts at open, recycles, and keeps fresh
 * messages in memory for its delivery; a worker's (`role: 'writer'`, mxscreen_workers > 1)
 * only writes new messages, durably as above, and reports each queue count change
 * (`counted`) instead of setting the gauges: no sweep (a listing racing the owner's moves
 * could take a live state file for an orphan), no memory of bodies, and only files the
 * owner lends it to recycle (file-pool.ts).
 * Bugs: temporary files are swept at open only when older than an hour; one process must
 * own delivery scheduling (the memory of fresh messages and recycled files is per process).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CommitOptions, Envelope, IncomingMessage, QueueWriter } from './envelope.js';
import { bodyLengthPatch, encodeEndRecord, encodeQueueFileHead, readQueueFile, readQueueFileHead, verifyQueueFile, type LoadedQueueFile, type QueueFileHead } from './queue-file.js';
import { isQueueId, newQueueId } from './queue-id.js';
import { decodeDeliveryState, encodeDeliveryState, scheduleOfState, type DeliveryState } from './delivery-state.js';
import { MxError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { DirectorySync } from './group-commit.js';
import { FilePool, RECYCLE_DIRECTORY } from './file-pool.js';
import { NODE_QUEUE_FILE_SYSTEM, type QueueFileHandle, type QueueFileSystem } from './queue-file-system.js';
import { queueIdTime } from './queue-id.js';
import { isRepairable, restoreEndRecord, type CorruptCondition } from './corrupt-repair.js';

export { listQueue, formatQueueListing, type QueueListing } from './queue-listing.js';

/** Queue names, as Postfix spells them. */
export const QUEUE_NAMES = ['incoming', 'active', 'deferred', 'hold', 'corrupt'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
/** Directory of per-message delivery-state files. */
export const STATE_DIRECTORY = 'state';
/** Directory of queue control requests from `mxscreen queue …` (queue-control.ts). */
export const CONTROL_DIRECTORY = 'control';
/** How long a free-space reading is reused (ms): one statfs per second at most. */
const FREE_SPACE_TTL = 1000;
/** Temporary files younger than this (ms) may belong to a live writer and are kept at open. */
const STALE_TEMPORARY_AGE = 60 * 60 * 1000;
const TEMPORARY_SUFFIX = '.tmp';
/** Largest queue file load() keeps in memory whole (bytes); larger bodies stream from disk. */
const LOAD_WHOLE_LIMIT = 64 * 1024;
/** Emptied queue files kept for new messages (file-pool.ts). */
const RECYCLE_LIMIT = 256;
/** Bytes of just-committed bodies kept for load() (what delivery would read back at once). */
const RECENT_BYTES = 16 * 1024 * 1024;

export interface SpoolDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** The calls the commit path makes (queue-file-system.ts); default node:fs. Tests inject faults. */
  readonly fileSystem?: QueueFileSystem;
  /** 'owner' (default): the spool of the queue manager; 'writer': a worker's (see the file head). */
  readonly role?: 'owner' | 'writer';
  /** Writer role: a message entered (+1) or left (-1) `queue`; the owner applies it to its gauges. */
  readonly counted?: (queue: QueueName, delta: 1 | -1) => void;
  /** Writer role: ask the owner for `count` recycled files (file-pool.ts lending); answered by supplyFiles(). */
  readonly wantFiles?: (count: number) => void;
}

export class Spool implements QueueWriter {
  readonly directory: string;
  readonly #deps: SpoolDeps;
  readonly #fs: QueueFileSystem;
  readonly #incomingSync: DirectorySync;
  readonly #holdSync: DirectorySync;
  readonly #stateSync: DirectorySync;
  readonly #pool: FilePool;
  /**
   * Messages this spool committed that have no state file yet (none is written before
   * the first delivery attempt ends undelivered): their state need not be read or
   * unlinked. Only ids known here; anything else is looked up on disk.
   */
  readonly #withoutState = new Set<string>();
  /**
   * Small messages this spool just committed to incoming/, as load() would read them
   * back: delivery, kicked right after the commit, gets them without a read. Oldest
   * first; at most RECENT_BYTES of bodies; an entry leaves at load(), remove() or quarantine.
   */
  readonly #recent = new Map<string, LoadedQueueFile>();
  #recentBytes = 0;
  /**
   * Moves into or out of each queue begun or ended so far, and those begun and not yet
   * ended: countMessages() drops a reading that overlaps either (a rename done on disk
   * whose callback has not run yet is in flight, not counted).
   */
  readonly #changes = new Map<QueueName, number>();
  readonly #inFlight = new Map<QueueName, number>();
  #minimumFree = 0;
  #freeSpace: { readonly at: number; readonly bytes: number } | undefined;

  private constructor(directory: string, deps: SpoolDeps) {
    this.directory = directory;
    this.#deps = deps;
    this.#fs = deps.fileSystem ?? NODE_QUEUE_FILE_SYSTEM;
    this.#incomingSync = this.#fs.directorySync(join(directory, 'incoming'));
    this.#holdSync = this.#fs.directorySync(join(directory, 'hold'));
    this.#stateSync = new DirectorySync(join(directory, STATE_DIRECTORY));
    const recycle = join(directory, RECYCLE_DIRECTORY);
    const wantFiles = deps.wantFiles;
    this.#pool =
      deps.role === 'writer'
        ? new FilePool(recycle, 0, this.#fs, wantFiles && { wanted: wantFiles, now: () => deps.clock.now() })
        : new FilePool(recycle, RECYCLE_LIMIT, this.#fs);
  }

  /**
   * Opens (creating when missing) the queue directory at `directory` (absolute path) and
   * its subdirectories, and removes stale temporary files. Throws MxError ERR_QUEUE_IO
   * when the directories cannot be created.
   */
  static async open(directory: string, deps: SpoolDeps): Promise<Spool> {
    const spool = new Spool(directory, deps);
    try {
      for (const name of [...QUEUE_NAMES, STATE_DIRECTORY, CONTROL_DIRECTORY, RECYCLE_DIRECTORY]) await mkdir(join(directory, name), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new MxError('ERR_QUEUE_IO', `cannot create queue directory ${directory}: ${(error as Error).message}`, { cause: error });
    }
    if (deps.role === 'writer') return spool;
    await spool.#sweepTemporaryFiles('incoming');
    await spool.#sweepTemporaryFiles(STATE_DIRECTORY);
    await spool.#sweepOrphanStates();
    await spool.#pool.sweep();
    await spool.countMessages();
    return spool;
  }

  /** Path of message `id` in `queue`. */
  path(queue: QueueName, id: string): string {
    return join(this.directory, queue, id);
  }

  /**
   * Starts a new message (QueueWriter): allocates its queue id and writes its head to
   * `incoming/<id>.tmp`. Throws MxError ERR_QUEUE_IO when the file cannot be created.
   */
  async open(envelope: Envelope): Promise<IncomingMessage> {
    if (!(await this.canAccept(0))) {
      throw ioError('queue file system below queue_minfree', Object.assign(new Error('not enough free space'), { code: 'ENOSPC' }));
    }
    const id = newQueueId(this.#deps.clock.now());
    const temporary = join(this.directory, 'incoming', id + TEMPORARY_SUFFIX);
    let file: QueueFileHandle;
    let recycled = false;
    try {
      // A recycled empty file when there is one (file-pool.ts), else a new one; both exclusive.
      recycled = await this.#pool.take(temporary);
      file = await this.#fs.open(temporary, recycled ? 'r+' : 'wx');
    } catch (error) {
      if (recycled) await this.#fs.unlink(temporary).catch(() => undefined); // linked, not opened
      throw ioError(`cannot create ${temporary}`, error);
    }
    return new SpoolMessage(this, id, envelope, temporary, file, this.#deps, this.#fs);
  }

  /**
   * The free-space floor in bytes: max(queue_minfree, 1.5 × message_size_limit), as
   * Postfix smtpd applies it (postconf(5) queue_minfree). 0 disables the check.
   */
  setMinimumFree(bytes: number): void {
    this.#minimumFree = bytes;
    this.#freeSpace = undefined;
  }

  /**
   * QueueWriter.canAccept: true when the queue file system keeps the floor after a
   * message of `size` bytes (MAIL FROM SIZE=, 0 when unknown). A file system that cannot
   * be asked (statfs fails) is given the benefit of the doubt; writes fail on their own.
   */
  async canAccept(size: number): Promise<boolean> {
    if (this.#minimumFree <= 0) return true;
    const now = this.#deps.clock.now();
    if (!this.#freeSpace || now - this.#freeSpace.at >= FREE_SPACE_TTL || now < this.#freeSpace.at) {
      try {
        const info = await statfs(this.directory);
        this.#freeSpace = { at: now, bytes: Number(info.bavail) * Number(info.bsize) };
      } catch {
        return true;
      }
    }
    return this.#freeSpace.bytes - Math.max(0, size) >= this.#minimumFree;
  }

  /** Queue ids in `queue`, oldest first (temporary and foreign files are skipped). */
  async list(queue: QueueName): Promise<string[]> {
    const names = await readdir(join(this.directory, queue));
    return names.filter(isQueueId).sort();
  }

  /** The head of message `id` in `queue`. Throws ERR_QUEUE_CORRUPT, or the fs error (ENOENT). */
  readHead(queue: QueueName, id: string): Promise<QueueFileHead> {
    return readQueueFileHead(this.path(queue, id));
  }

  /**
   * What the scheduler needs of a queued message without reading its queue file: the
   * next attempt time (ms, 0 = now) and the domains of its undelivered recipients, from
   * its state file; undefined when there is none or it cannot be read.
   */
  async readSchedule(id: string): Promise<{ nextAttempt: number; domains: string[] } | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.directory, STATE_DIRECTORY, id), 'utf8');
    } catch {
      return undefined;
    }
    return scheduleOfState(text, id);
  }

  /** The head after checking the whole file (size and END record). Throws ERR_QUEUE_CORRUPT, or the fs error. */
  verify(queue: QueueName, id: string): Promise<QueueFileHead> {
    return verifyQueueFile(this.path(queue, id));
  }

  /**
   * verify() that also keeps the body of a small file in memory (queue-file.ts
   * readQueueFile): what delivery reads of a message. Throws as verify().
   */
  load(queue: QueueName, id: string): Promise<LoadedQueueFile> {
    const recent = this.#recent.get(id);
    if (recent) {
      this.#forget(id);
      return Promise.resolve(recent);
    }
    return readQueueFile(this.path(queue, id), LOAD_WHOLE_LIMIT);
  }

  /**
   * A stream of the body bytes of a verified message: `body` when load() kept it,
   * otherwise read from disk as it is consumed.
   */
  openBody(queue: QueueName, head: QueueFileHead, body?: Buffer): Readable {
    if (head.bodyLength === 0) return Readable.from([]);
    if (body) return Readable.from([body]);
    return createReadStream(this.path(queue, head.id), { start: head.bodyOffset, end: head.bodyOffset + head.bodyLength - 1 });
  }

  /** Renames message `id` from one queue to another (the queue file system's rename). Throws MxError ERR_QUEUE_IO. */
  async move(id: string, from: QueueName, to: QueueName): Promise<void> {
    this.beginChange(from);
    this.beginChange(to);
    try {
      await this.#fs.rename(this.path(from, id), this.path(to, id));
    } catch (error) {
      this.endChange(from, 0);
      this.endChange(to, 0);
      throw ioError(`cannot move ${id} from ${from} to ${to}`, error);
    }
    this.endChange(from, -1);
    this.endChange(to, 1);
  }

  /**
   * The delivery state of message `id`, or undefined when none was written yet or it
   * does not fit the envelope (delivery-state.ts invariant). Throws ERR_QUEUE_IO on I/O errors.
   */
  async readState(id: string, envelope: Envelope): Promise<DeliveryState | undefined> {
    if (this.#withoutState.has(id)) return undefined;
    let text: string;
    try {
      text = await readFile(join(this.directory, STATE_DIRECTORY, id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(`cannot read the state of ${id}`, error);
    }
    const state = decodeDeliveryState(text, id, envelope);
    if (!state) this.#deps.log.warn({ event: 'queue error', queueId: id }, `${id}: unreadable delivery state, starting over`);
    return state;
  }

  /** Writes the delivery state durably (tmp, fsync, rename, fsync state/). Throws ERR_QUEUE_IO. */
  async writeState(state: DeliveryState): Promise<void> {
    const directory = join(this.directory, STATE_DIRECTORY);
    const temporary = join(directory, state.id + TEMPORARY_SUFFIX);
    try {
      const file = await open(temporary, 'w', 0o600);
      try {
        await file.writeFile(encodeDeliveryState(state), 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      this.#withoutState.delete(state.id); // from the rename on, a state file may exist
      await rename(temporary, join(directory, state.id));
      await this.#stateSync.sync();
    } catch (error) {
      throw ioError(`cannot write the state of ${state.id}`, error);
    }
  }

  /** Removes message `id` (queue file first, then its state). Logs `removed`. Throws ERR_QUEUE_IO. */
  async remove(queue: QueueName, id: string): Promise<void> {
    this.beginChange(queue);
    try {
      await this.#pool.give(this.path(queue, id));
    } catch (error) {
      this.endChange(queue, 0);
      throw ioError(`cannot remove ${id}`, error);
    }
    this.endChange(queue, -1);
    try {
      this.#forget(id);
      if (!this.#withoutState.delete(id)) await unlink(join(this.directory, STATE_DIRECTORY, id)).catch(ignoreMissing);
    } catch (error) {
      throw ioError(`cannot remove ${id}`, error);
    }
    this.#deps.log.info({ event: 'removed', queueId: id }, `${id}: removed`);
  }

  /**
   * Moves a damaged file to corrupt/ with an error-level log line, event `corrupt` (Postfix
   * qmgr's words: `saving corrupt file "ID" from queue "active" to queue "corrupt"`, a
   * warning there; here an error, since the message is not delivered until an
   * administrator acts), and counts it in mxscreen_queue_corrupt_total{queue}. Its state
   * file stays (requeueCorrupt). Never throws: a corrupt file must not stop the queue.
   */
  async quarantine(queue: QueueName, id: string, reason: string): Promise<void> {
    this.#withoutState.delete(id);
    this.#forget(id);
    this.#deps.metrics.queueCorrupt.inc({ queue });
    this.#deps.log.error({ event: 'corrupt', queueId: id, queue, reason }, `${id}: saving corrupt file "${id}" from queue "${queue}" to queue "corrupt": ${reason}`);
    try {
      await this.move(id, queue, 'corrupt');
    } catch (error) {
      this.#deps.log.error({ event: 'queue error', queueId: id, err: error }, `${id}: cannot move to corrupt/`);
    }
  }

  /**
   * @internal SpoolMessage: fsync of the queue a commit renamed into (incoming/, or hold/
   * for a message held at commit), shared by the commits waiting at the same time (group commit).
   */
  syncQueueDirectory(queue: 'incoming' | 'hold'): Promise<void> {
    return queue === 'hold' ? this.#holdSync.sync() : this.#incomingSync.sync();
  }

  /**
   * @internal SpoolMessage (and the owner, for a worker's commit): message `id` is queued and has no state file; `loaded` is
   * what load() reads back (for a message committed to incoming/ and small enough).
   */
  committed(id: string, loaded?: LoadedQueueFile): void {
    if (this.#deps.role === 'writer') return; // the owner's spool delivers it, from disk
    this.#withoutState.add(id);
    if (!loaded?.body) return;
    this.#recent.set(id, loaded);
    this.#recentBytes += loaded.body.length;
    // Bounded by the map's size: the oldest entries go until the bodies fit again.
    for (const [oldest] of this.#recent) {
      if (this.#recentBytes <= RECENT_BYTES) break;
      this.#forget(oldest);
    }
  }

  /**
   * Owner: a message entered (+1) or left (-1) `queue` in another process (a worker's
   * commit): the queueMessages gauge moves, and a countMessages() reading that directory
   * at the same time does not overwrite it.
   */
  counted(queue: QueueName, delta: 1 | -1): void {
    this.#bump(this.#changes, queue, 1);
    this.#deps.metrics.queueMessages.inc({ queue }, delta);
  }

  /** @internal A rename or unlink in `queue` starts (endChange() follows, whatever happens). */
  beginChange(queue: QueueName): void {
    if (this.#deps.role === 'writer') return;
    this.#bump(this.#changes, queue, 1);
    this.#bump(this.#inFlight, queue, 1);
  }

  /**
   * @internal The change begun by beginChange() ended: a message entered (+1) or left (-1)
   * `queue`, or nothing changed (0, it failed). A writer tells the owner (SpoolDeps.counted).
   */
  endChange(queue: QueueName, delta: 1 | -1 | 0): void {
    if (this.#deps.role === 'writer') {
      if (delta !== 0) this.#deps.counted?.(queue, delta);
      return;
    }
    this.#bump(this.#inFlight, queue, -1);
    this.#bump(this.#changes, queue, 1);
    if (delta !== 0) this.#deps.metrics.queueMessages.inc({ queue }, delta);
  }

  #bump(counts: Map<QueueName, number>, queue: QueueName, by: number): void {
    counts.set(queue, (counts.get(queue) ?? 0) + by);
  }

  /** Owner: up to `count` recycled files for a worker's spool, by name (file-pool.ts lend()). */
  lendFiles(count: number): string[] {
    return this.#pool.lend(count);
  }

  /** Writer: the owner's answer to wantFiles (names in recycle/). */
  supplyFiles(names: readonly string[]): void {
    this.#pool.supply(names);
  }

  /** Owner: unlinks the lent files a dead worker left unused. Never throws. */
  reclaimFiles(names: readonly string[]): Promise<void> {
    return this.#pool.reclaim(names);
  }

  /** Releases what the spool keeps open (directory descriptors) and in memory. Never throws. */
  close(): void {
    for (const sync of [this.#incomingSync, this.#holdSync, this.#stateSync]) sync.close();
    this.#recent.clear();
    this.#recentBytes = 0;
  }

  #forget(id: string): void {
    const recent = this.#recent.get(id);
    if (!recent) return;
    this.#recent.delete(id);
    this.#recentBytes -= recent.body?.length ?? 0;
  }

  /**
   * Counts the files in each queue and sets the queueMessages and queueOldest gauges
   * (the oldest arrival comes from the queue id, which begins with it). Never throws.
   */
  async countMessages(): Promise<void> {
    const now = this.#deps.clock.now();
    for (const queue of QUEUE_NAMES) {
      try {
        if (this.#inFlight.get(queue)) continue;
        const changes = this.#changes.get(queue) ?? 0;
        const ids = await this.list(queue);
        // A move in flight or begun while the directory was read makes the listing stale:
        // the counts kept by endChange() are right, and the next count sets the gauge.
        if ((this.#changes.get(queue) ?? 0) !== changes) continue;
        this.#deps.metrics.queueMessages.set({ queue }, ids.length);
        this.#deps.metrics.queueOldest.set({ queue }, ids.length ? Math.max(0, (now - queueIdTime(ids[0]!)) / 1000) : 0);
      } catch {
        // An unreadable directory shows as the last count; the error surfaces where it matters.
      }
    }
  }

  /** A state file whose message is gone (removed between the two unlinks) is dropped. */
  async #sweepOrphanStates(): Promise<void> {
    const queued = new Set<string>();
    for (const queue of QUEUE_NAMES) for (const id of await this.list(queue)) queued.add(id);
    for (const name of await readdir(join(this.directory, STATE_DIRECTORY))) {
      if (isQueueId(name) && !queued.has(name)) await unlink(join(this.directory, STATE_DIRECTORY, name)).catch(() => undefined);
    }
  }

  async #sweepTemporaryFiles(subdirectory: string): Promise<void> {
    const directory = join(this.directory, subdirectory);
    const now = this.#deps.clock.now();
    for (const name of await readdir(directory)) {
      if (!name.endsWith(TEMPORARY_SUFFIX)) continue;
      const path = join(directory, name);
      try {
        if (now - (await stat(path)).mtimeMs > STALE_TEMPORARY_AGE) await unlink(path);
      } catch {
        // Gone already, or not ours to remove: the next open tries again.
      }
    }
  }

  /**
   * `queue requeue` of corrupt/<id> (corrupt-repair.ts): when its body is complete, the
   * missing END record is written and fsynced, the file renamed to incoming/ and incoming/
   * fsynced (the durability of a commit); otherwise it stays in corrupt/. Resolves the
   * condition found (isRepairable tells which happened). Throws MxError ERR_QUEUE_IO
   * (cause ENOENT when there is no such file), ERR_QUEUE_CORRUPT when the file changed
   * size during the repair.
   */
  async requeueCorrupt(id: string): Promise<CorruptCondition> {
    let condition: CorruptCondition;
    try {
      condition = await restoreEndRecord(this.path('corrupt', id), id);
      if (!isRepairable(condition)) return condition;
      await this.move(id, 'corrupt', 'incoming');
      await this.#incomingSync.sync();
    } catch (error) {
      throw error instanceof MxError ? error : ioError(`cannot requeue ${id} from corrupt/`, error);
    }
    return condition;
  }
}

/**
 * Bytes gathered before one write to the temporary file. A message up to this size
 * (head, body and END record) costs one write, at commit; a larger one a write per
 * batch, each awaited by write() (back-pressure: at most one batch is held in memory).
 */
const WRITE_BATCH = 64 * 1024;

/**
 * A message being written into incoming/ (envelope.ts IncomingMessage). Chunks are held
 * by reference until written, as stream.Writable does: a caller must not change a chunk
 * after write().
 *
 * Every byte goes through #append (which counts it) and #flush (which writes what was
 * counted, retrying short writes, one flush at a time). commit() then checks what the
 * file holds against what the message is — the file's size must be head + bodyLength +
 * END record — before the rename; a mismatch is a bug, logged, and the message is not
 * queued. Whatever fails, the temporary file is removed and commit() rejects: the client
 * gets 452 4.3.1 (ENOSPC) or 451 4.3.0, never 250.
 */
class SpoolMessage implements IncomingMessage {
  readonly id: string;
  #state: 'writing' | 'committed' | 'aborted' = 'writing';
  #bodyLength = 0;
  readonly #headLength: number;
  /** Bytes counted but not yet written (the head first, while nothing was written). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes already in the file: the position of the next write. */
  #written = 0;
  /** The flush now running: flushes never overlap (each writes at the end of the last). */
  #flushing: Promise<void> = Promise.resolve();
  /** The first write failure: the message can no longer be committed. */
  #failure: unknown;

  constructor(
    private readonly spool: Spool,
    id: string,
    private readonly envelope: Envelope,
    private readonly temporary: string,
    private readonly file: QueueFileHandle,
    private readonly deps: SpoolDeps,
    private readonly fs: QueueFileSystem,
  ) {
    this.id = id;
    const head = encodeQueueFileHead(id, envelope, 0);
    this.#headLength = head.length;
    this.#append(head);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#state !== 'writing') throw new MxError('ERR_QUEUE_IO', `${this.id}: write after ${this.#state}`);
    if (chunk.length === 0) return;
    this.#append(chunk);
    this.#bodyLength += chunk.length;
    if (this.#pendingBytes < WRITE_BATCH) return;
    try {
      await this.#flush();
    } catch (error) {
      throw ioError(`cannot write ${this.temporary}`, error);
    }
  }

  async commit(options?: CommitOptions): Promise<void> {
    if (this.#state !== 'writing') throw new MxError('ERR_QUEUE_IO', `${this.id}: commit after ${this.#state}`);
    const queue = options?.hold ? 'hold' : 'incoming';
    const destination = this.spool.path(queue, this.id);
    let loaded: LoadedQueueFile | undefined;
    let changing = false;
    let renamed = false;
    try {
      await this.#flushing; // a write() not awaited by its caller ends first
      if (this.#failure !== undefined) throw this.#failure;
      const patch = bodyLengthPatch(this.#bodyLength);
      const patchInPlace = this.#written > 0;
      if (!patchInPlace) {
        // Nothing written yet: the head in hand gets its length, and the file is one write.
        const head = this.#pending[0]!;
        patch.bytes.copy(head, patch.offset);
        if (queue === 'incoming') {
          // What load() would read back; the envelope as JSON gives it, as from disk.
          const envelope = JSON.parse(JSON.stringify(this.envelope)) as Envelope;
          const body = Buffer.concat(this.#pending.slice(1), this.#bodyLength);
          loaded = { head: { id: this.id, envelope, bodyLength: this.#bodyLength, bodyOffset: head.length }, body };
        }
      }
      const end = encodeEndRecord(this.id);
      this.#append(end);
      await this.#flush();
      if (patchInPlace) await this.#writeAll([patch.bytes], patch.offset);
      await this.file.sync();
      const expected = this.#headLength + this.#bodyLength + end.length;
      const { size } = await this.file.stat();
      if (size !== expected || this.#written !== expected) {
        this.deps.log.error(
          { event: 'queue error', queueId: this.id, bug: true, size, written: this.#written, expected },
          `${this.id}: bug: queue file is ${size} bytes (${this.#written} written), head + body + end record make ${expected}: not queued`,
        );
        throw Object.assign(new Error(`queue file size ${size} bytes, expected ${expected}`), { code: 'EIO' });
      }
      await this.file.close();
      this.spool.beginChange(queue);
      changing = true;
      await this.fs.rename(this.temporary, destination);
      renamed = true;
      await this.spool.syncQueueDirectory(queue);
    } catch (error) {
      if (changing) this.spool.endChange(queue, 0);
      // After the rename the file is queued under its final name: take it back, so that
      // what the client is told (4xx, it sends again) stays true. Gone already means the
      // queue manager took it: it will be delivered, and the client's retry is a duplicate.
      if (renamed) await this.fs.unlink(destination).catch(() => undefined);
      await this.abort();
      throw ioError(`cannot commit ${this.id}`, error);
    }
    this.#state = 'committed';
    this.spool.committed(this.id, loaded);
    this.deps.metrics.messagesQueued.inc();
    this.deps.metrics.messageBytes.inc(this.#bodyLength);
    this.spool.endChange(queue, 1);
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#flushing;
    await this.file.close().catch(() => undefined);
    await this.fs.unlink(this.temporary).catch(() => undefined);
  }

  /** Counts `bytes` as part of the file, to be written by the next flush. */
  #append(bytes: Buffer): void {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  /** Writes everything counted so far at the end of what is written, after any flush running. */
  #flush(): Promise<void> {
    const run = this.#flushing.then(() => {
      if (this.#failure !== undefined) throw this.#failure;
      const buffers = this.#pending;
      this.#pending = [];
      this.#pendingBytes = 0;
      return this.#writeAll(buffers, this.#written).then((bytes) => {
        this.#written += bytes;
      });
    });
    // The next flush waits for this one; a failure fails the message (#failure).
    this.#flushing = run.then(undefined, (error: unknown) => {
      this.#failure ??= error;
    });
    return run;
  }

  /**
   * Writes all of `buffers` at `position` and resolves with their byte count. A short
   * write is followed by a write of the rest (bounded: each pass writes at least one byte
   * or fails); a pass that writes nothing is EIO.
   */
  async #writeAll(buffers: readonly Buffer[], position: number): Promise<number> {
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    let done = 0;
    let rest = buffers;
    while (done < total) {
      const { bytesWritten } = await this.file.writev(rest, position + done);
      if (!(bytesWritten > 0)) throw Object.assign(new Error('no progress writing the queue file'), { code: 'EIO' });
      done += bytesWritten;
      rest = remainder(buffers, done);
    }
    return total;
  }
}

/** What is left of `buffers` after their first `skip` bytes (views, not copies). */
function remainder(buffers: readonly Buffer[], skip: number): Buffer[] {
  const rest: Buffer[] = [];
  let offset = skip;
  for (const buffer of buffers) {
    if (offset >= buffer.length) {
      offset -= buffer.length;
      continue;
    }
    rest.push(offset > 0 ? buffer.subarray(offset) : buffer);
    offset = 0;
  }
  return rest;
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

/** ERR_QUEUE_IO with the file system error as cause (its `code`, e.g. ENOSPC, stays readable). */
function ioError(what: string, cause: unknown): MxError {
  return new MxError('ERR_QUEUE_IO', `${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

/*
 * queue-file-system — the file system calls a new queue file is committed with.
 *
 * Decides: the narrow seam between the commit path (spool.ts SpoolMessage, file-pool.ts)
 * and the operating system: create or reopen the temporary file, positioned writes, fsync,
 * fstat, close, rename, link, unlink and the directory fsync. The default is node:fs; a
 * test passes its own to make any one of these calls fail (ENOSPC, EIO) or write short, and
 * so prove that no fault anywhere in the commit path ends in a 250 without a whole file.
 * The default handle is a plain descriptor: writes and fsync go to libuv's thread pool, but
 * fstat and close run at once on the calling thread (an fstat reads the inode in memory; a
 * close after the fsync has nothing left to write), since on a small machine each trip
 * through the pool (a thread woken, a completion queued) costs more CPU than those calls.
 * Leaves to others: what is written and in which order (spool.ts), reading queue files
 * (queue-file.ts), which is not part of the commit path.
 */
import { closeSync, fstatSync, fsync, open as openDescriptor, writev } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { DirectorySync } from './group-commit.js';

/** An open queue file: the calls of node:fs/promises FileHandle the commit path makes. */
export interface QueueFileHandle {
  /**
   * pwritev(2) of `buffers` at byte `position`. Resolves with the bytes written, which may
   * be fewer than asked (a short write: a full disk, a signal); rejects with the fs error.
   */
  writev(buffers: readonly Buffer[], position: number): Promise<{ bytesWritten: number }>;
  /** fsync(2). Rejects with the fs error (EIO, ENOSPC on delayed allocation). */
  sync(): Promise<void>;
  /** fstat(2): the file's size in bytes. */
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface QueueFileSystem {
  /**
   * Opens `path`: `wx` creates it exclusively (mode 0600), `r+` reopens a recycled empty
   * file, `w` truncates it (file-pool.ts empties a removed file). Rejects with the fs error.
   */
  open(path: string, flags: 'wx' | 'r+' | 'w'): Promise<QueueFileHandle>;
  rename(from: string, to: string): Promise<void>;
  /** link(2): rejects with EEXIST when `to` exists, ENOENT when `from` does not. */
  link(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** A group-committed fsync of directory `path` (absolute), see group-commit.ts. */
  directorySync(path: string): DirectorySync;
}

/** A queue file open on descriptor `fd` (see the file head for which calls wait for the thread pool). */
class DescriptorFile implements QueueFileHandle {
  #fd: number | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  #open(): number {
    if (this.#fd === undefined) throw Object.assign(new Error('queue file is closed'), { code: 'EBADF' });
    return this.#fd;
  }

  writev(buffers: readonly Buffer[], position: number): Promise<{ bytesWritten: number }> {
    return new Promise((resolve, reject) => {
      writev(this.#open(), buffers as Buffer[], position, (error, bytesWritten) => (error ? reject(error) : resolve({ bytesWritten })));
    });
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.#open(), (error) => (error ? reject(error) : resolve())));
  }

  async stat(): Promise<{ size: number }> {
    return { size: fstatSync(this.#open()).size };
  }

  /** Closes the descriptor; a second close does nothing (as FileHandle.close). */
  async close(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}

/** open(2) of `path` with `flags` and mode 0600, through the thread pool (a create may wait for the disk). */
function openQueueFile(path: string, flags: 'wx' | 'r+' | 'w'): Promise<QueueFileHandle> {
  return new Promise((resolve, reject) => openDescriptor(path, flags, 0o600, (error, fd) => (error ? reject(error) : resolve(new DescriptorFile(fd)))));
}

/** The operating system's calls through node:fs (directory descriptors kept open). */
export const NODE_QUEUE_FILE_SYSTEM: QueueFileSystem = {
  open: openQueueFile,
  rename,
  link,
  unlink,
  directorySync: (path) => new DirectorySync(path),
};

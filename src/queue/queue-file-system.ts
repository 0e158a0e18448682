/*
 * queue-file-system — the file system calls a new queue file is committed with (and the
 * rename that moves a message from one queue to another).
 *
 * Decides: the narrow seam between the commit path (spool.ts SpoolMessage, file-pool.ts)
 * and the operating system: create or reopen the temporary file, positioned writes, fsync,
 * fstat, close, rename, link, unlink and the directory fsync. The default is node:fs; a
 * test passes its own to make any one of these calls fail (ENOSPC, EIO) or write short, and
 * so prove that no fault anywhere in the commit path ends in a 250 without a whole file.
 * The default splits the calls by what they may wait for. Writes, fsync, creating a file and
 * emptying one (O_TRUNC frees its blocks) go to libuv's thread pool: they wait for the disk.
 * The metadata calls run at once on the calling thread: rename, link, unlink, reopening an
 * existing empty file, fstat (the inode is in memory) and close (after the fsync nothing is
 * left to write). Each takes a few to some tens of µs of kernel time, while a trip through
 * the pool costs more CPU than that on a small machine: a thread is woken, a completion is
 * queued, and the event loop is woken in turn. Measured with smtp-source on 2 cores and 2
 * workers: 59 context switches per message, most of them the pools' threads, with every
 * call through the pool; 39 with these at once (and the delivery read's, queue-file.ts).
 * These metadata calls stop the event loop only while the file system journal makes them
 * wait; Postfix's smtpd and cleanup make every one of these calls blocking.
 * Leaves to others: what is written and in which order (spool.ts), reading queue files
 * (queue-file.ts), which is not part of the commit path.
 */
import { closeSync, fstatSync, fsync, linkSync, open as openDescriptor, openSync, renameSync, unlinkSync, writev } from 'node:fs';
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

/**
 * open(2) of `path` with `flags` and mode 0600: a create (`wx`) or an emptying (`w`)
 * through the thread pool, since either may wait for the disk; a reopening (`r+`) at once.
 */
function openQueueFile(path: string, flags: 'wx' | 'r+' | 'w'): Promise<QueueFileHandle> {
  if (flags === 'r+') return atOnce(() => new DescriptorFile(openSync(path, flags, 0o600)));
  return new Promise((resolve, reject) => openDescriptor(path, flags, 0o600, (error, fd) => (error ? reject(error) : resolve(new DescriptorFile(fd)))));
}

/**
 * Runs a metadata call at once on the calling thread (see the file head) as a promise:
 * resolved with its value, or rejected with its fs error (never thrown).
 */
function atOnce<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The operating system's calls through node:fs (directory descriptors kept open). */
export const NODE_QUEUE_FILE_SYSTEM: QueueFileSystem = {
  open: openQueueFile,
  rename: (from, to) => atOnce(() => renameSync(from, to)),
  link: (from, to) => atOnce(() => linkSync(from, to)),
  unlink: (path) => atOnce(() => unlinkSync(path)),
  directorySync: (path) => new DirectorySync(path),
};

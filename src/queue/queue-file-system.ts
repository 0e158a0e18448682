/*
 * queue-file-system — the file system calls a new queue file is committed with.
 *
 * Decides: the narrow seam between the commit path (spool.ts SpoolMessage, file-pool.ts)
 * and the operating system: create or reopen the temporary file, positioned writes, fsync,
 * fstat, close, rename, link, unlink and the directory fsync. The default is node:fs; a
 * test passes its own to make any one of these calls fail (ENOSPC, EIO) or write short, and
 * so prove that no fault anywhere in the commit path ends in a 250 without a whole file.
 * Leaves to others: what is written and in which order (spool.ts), reading queue files
 * (queue-file.ts), which is not part of the commit path.
 */
import { link, open, rename, unlink } from 'node:fs/promises';
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

/** The operating system's calls through node:fs (directory descriptors kept open). */
export const NODE_QUEUE_FILE_SYSTEM: QueueFileSystem = {
  open: (path, flags) => open(path, flags, 0o600),
  rename,
  link,
  unlink,
  directorySync: (path) => new DirectorySync(path),
};

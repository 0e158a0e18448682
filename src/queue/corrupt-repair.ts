/*
 * corrupt-repair — what is wrong with a file in corrupt/, and whether it may go back.
 *
 * Decides: the condition of a damaged queue file as a typed value, against the format of
 * queue-file.ts: whole; body complete but no END record (size = head + bodyLength, what a
 * commit that stopped before its end record leaves); body short; bytes after the body
 * that are not its END record; head unreadable (or naming another message). Only a whole
 * file or one missing nothing but its END record may be requeued, after the END record is
 * written at head + bodyLength and fsynced: the message bytes are then exactly the ones
 * accepted. Everything else is refused: mxscreen never guesses at a message's bytes.
 * Leaves to others: the rename back into the queue and its directory fsync
 * (Spool.requeueCorrupt), the command (queue-control.ts), the listing (queue-listing.ts).
 */
import { open, stat } from 'node:fs/promises';
import { MxError } from '../errors.js';
import { encodeEndRecord, readQueueFileHead, type QueueFileHead } from './queue-file.js';

/** What inspectQueueFile found; `fileSize` in bytes. */
export type CorruptCondition =
  | { readonly kind: 'whole'; readonly head: QueueFileHead; readonly fileSize: number }
  | { readonly kind: 'no-end-record'; readonly head: QueueFileHead; readonly fileSize: number }
  | { readonly kind: 'short-body'; readonly head: QueueFileHead; readonly fileSize: number }
  | { readonly kind: 'bad-end'; readonly head: QueueFileHead; readonly fileSize: number }
  | { readonly kind: 'bad-head'; readonly fileSize: number; readonly reason: string };

/**
 * Reads the queue file at `path` (absolute), expected to hold message `id`, and says what
 * is wrong with it. Throws the file system error (ENOENT…) as is.
 */
export async function inspectQueueFile(path: string, id: string): Promise<CorruptCondition> {
  let head: QueueFileHead;
  try {
    head = await readQueueFileHead(path);
  } catch (error) {
    if (!(error instanceof MxError && error.code === 'ERR_QUEUE_CORRUPT')) throw error;
    const prefix = `${path}: `;
    const reason = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return { kind: 'bad-head', fileSize: (await stat(path)).size, reason };
  }
  const fileSize = (await stat(path)).size;
  if (head.id !== id) return { kind: 'bad-head', fileSize, reason: `head names message ${head.id.slice(0, 40)}` };
  const bodyEnd = head.bodyOffset + head.bodyLength;
  if (fileSize < bodyEnd) return { kind: 'short-body', head, fileSize };
  if (fileSize === bodyEnd) return { kind: 'no-end-record', head, fileSize };
  const end = encodeEndRecord(id);
  if (fileSize !== bodyEnd + end.length) return { kind: 'bad-end', head, fileSize };
  const tail = Buffer.alloc(end.length);
  const file = await open(path, 'r');
  try {
    await file.read(tail, 0, end.length, bodyEnd);
  } finally {
    await file.close();
  }
  return tail.equals(end) ? { kind: 'whole', head, fileSize } : { kind: 'bad-end', head, fileSize };
}

/** True when `queue requeue` may put the file back: its body is complete and the rest is its END record or nothing. */
export function isRepairable(condition: CorruptCondition): boolean {
  switch (condition.kind) {
    case 'whole':
    case 'no-end-record':
      return true;
    case 'short-body':
    case 'bad-end':
    case 'bad-head':
      return false;
    default: {
      const never: never = condition;
      throw new Error(`unhandled corrupt condition ${JSON.stringify(never)}`);
    }
  }
}

/** One line for the operator: what is wrong (for `queue list` and the `queue requeue` reply). */
export function describeCondition(condition: CorruptCondition): string {
  switch (condition.kind) {
    case 'whole':
      return 'no damage found';
    case 'no-end-record':
      return `no end record, body complete (${condition.head.bodyLength} bytes)`;
    case 'short-body':
      return `body short: ${condition.fileSize - condition.head.bodyOffset} of ${condition.head.bodyLength} bytes`;
    case 'bad-end':
      return `${condition.fileSize - condition.head.bodyOffset - condition.head.bodyLength} bytes after the body are not its end record`;
    case 'bad-head':
      return `unreadable head (${condition.reason}), file ${condition.fileSize} bytes`;
    default: {
      const never: never = condition;
      throw new Error(`unhandled corrupt condition ${JSON.stringify(never)}`);
    }
  }
}

/**
 * inspectQueueFile, then, for a file missing only its END record, writes that record at
 * head + bodyLength and fsyncs the file: afterwards the file is whole (queue-file.ts).
 * Resolves the condition found before the repair. Throws the file system error as is,
 * MxError ERR_QUEUE_CORRUPT when the file changed size meanwhile.
 */
export async function restoreEndRecord(path: string, id: string): Promise<CorruptCondition> {
  const condition = await inspectQueueFile(path, id);
  if (condition.kind !== 'no-end-record') return condition;
  const file = await open(path, 'r+');
  try {
    if ((await file.stat()).size !== condition.fileSize) throw new MxError('ERR_QUEUE_CORRUPT', `${path}: changed while being repaired`);
    const end = encodeEndRecord(id);
    await file.write(end, 0, end.length, condition.fileSize);
    await file.sync();
  } finally {
    await file.close();
  }
  return condition;
}

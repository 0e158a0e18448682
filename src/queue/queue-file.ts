/*
 * queue-file — the queue file format: the contract between the policy stage and delivery.
 *
 * Decides: the bytes of a queue file (Postfix mail_stream.c / cleanup's end record idea):
 *   line 1  `MXSCREEN-QUEUE 1\n`                             magic and format version
 *   line 2  `{"bodyLength":<15 wide>,"id":…,"envelope":…}\n` JSON head; bodyLength is the
 *           first member, space-padded to a fixed width so commit can fill it in place
 *   body    exactly bodyLength bytes, the message as the policy stage wrote it
 *   end     `END <id>\n`                                     the explicit end record
 * A file is whole only when its size is head + bodyLength + end and it ends with the end
 * record of its own id; anything else is ERR_QUEUE_CORRUPT.
 * Leaves to others: where files live and how they are written durably (spool.ts).
 * Bugs: bodyLength is limited to 15 decimal digits (about 1 PB), which is no limit.
 */
import { closeSync, fstatSync, openSync, read } from 'node:fs';
import type { Envelope } from './envelope.js';
import { MxError } from '../errors.js';

/** First line of every queue file (without its newline). */
export const QUEUE_FILE_MAGIC = 'MXSCREEN-QUEUE 1';
/** Width of the space-padded bodyLength number in the head line. */
const BODY_LENGTH_WIDTH = 15;
/** Longest head we read before calling a file corrupt (bytes): 1000 recipients fit easily. */
const MAX_HEAD_BYTES = 4 * 1024 * 1024;
const HEAD_PREFIX = `${QUEUE_FILE_MAGIC}\n{"bodyLength":`;

/** What a queue file says about its message, without the body. */
export interface QueueFileHead {
  readonly id: string;
  readonly envelope: Envelope;
  /** Body size in bytes. */
  readonly bodyLength: number;
  /** Byte offset of the first body byte in the file. */
  readonly bodyOffset: number;
}

/**
 * The head bytes (magic line and JSON line) for a new queue file, with `bodyLength`
 * filled in (pass 0 while the body is still unknown; `bodyLengthPatch` rewrites it).
 */
export function encodeQueueFileHead(id: string, envelope: Envelope, bodyLength: number): Buffer {
  const rest = JSON.stringify({ id, envelope });
  return Buffer.from(`${HEAD_PREFIX}${padLength(bodyLength)},${rest.slice(1)}\n`, 'utf8');
}

/**
 * The in-place patch of the bodyLength field: write `bytes` at byte `offset` of a file
 * whose head came from encodeQueueFileHead.
 */
export function bodyLengthPatch(bodyLength: number): { offset: number; bytes: Buffer } {
  return { offset: Buffer.byteLength(HEAD_PREFIX), bytes: Buffer.from(padLength(bodyLength), 'latin1') };
}

/** The end record that closes the file of message `id`. */
export function encodeEndRecord(id: string): Buffer {
  return Buffer.from(`END ${id}\n`, 'latin1');
}

function padLength(bodyLength: number): string {
  if (!Number.isSafeInteger(bodyLength) || bodyLength < 0 || String(bodyLength).length > BODY_LENGTH_WIDTH) {
    throw new MxError('ERR_QUEUE_IO', `body length ${bodyLength} does not fit a queue file`);
  }
  return String(bodyLength).padStart(BODY_LENGTH_WIDTH, ' ');
}

/**
 * Reads and checks only the head of the queue file at `path` (for listing and
 * scheduling). Throws MxError ERR_QUEUE_CORRUPT for a bad magic, head or JSON, and the
 * file system error (ENOENT…) as is when the file cannot be opened.
 */
export async function readQueueFileHead(path: string): Promise<QueueFileHead> {
  const file = new QueueFileRead(openSync(path, 'r'));
  try {
    return await readHead(file, path);
  } finally {
    file.close();
  }
}

/**
 * Reads the head and checks that the file is whole: its size matches the head and it
 * ends with its end record. Throws ERR_QUEUE_CORRUPT otherwise (truncated file, wrong
 * length, missing END); file system errors as is.
 */
export async function verifyQueueFile(path: string): Promise<QueueFileHead> {
  return (await readQueueFile(path, 0)).head;
}

/** A verified queue file: its head, and its body bytes when the file was read whole. */
export interface LoadedQueueFile {
  readonly head: QueueFileHead;
  /** The body, when the whole file fit in `wholeLimit` bytes; otherwise read it from disk. */
  readonly body: Buffer | undefined;
}

/** First read of a file not read whole (bytes): most heads fit in it. */
const HEAD_READ = 4096;

/**
 * verifyQueueFile that also keeps the body when the whole file is at most `wholeLimit`
 * bytes (0: never). Such a file is read in one read into a buffer of its size (fstat
 * first): a larger buffer would be external memory that V8 counts, and runs mark-compact
 * collections for, at every message delivered. The buffer is its own (allocUnsafeSlow):
 * a slice of Buffer's pool would hold the whole slab while the body waits for its
 * delivery (Buffer.poolSize is 64 KiB on Node 24). A larger file costs a read of its first
 * HEAD_READ bytes (more for a longer head) and one of its end record. Throws as
 * verifyQueueFile: ERR_QUEUE_CORRUPT, or the file system error.
 */
export async function readQueueFile(path: string, wholeLimit: number): Promise<LoadedQueueFile> {
  const file = new QueueFileRead(openSync(path, 'r'));
  try {
    const size = file.size();
    const whole = size <= wholeLimit;
    const first = Buffer.allocUnsafeSlow(whole ? size : Math.min(size, HEAD_READ));
    const { bytesRead } = await file.read(first, 0, first.length, 0);
    const start = first.subarray(0, bytesRead);
    const head = await readHead(file, path, start);
    const end = encodeEndRecord(head.id);
    const want = head.bodyOffset + head.bodyLength + end.length;
    if (size !== want) throw corrupt(path, `size ${size} bytes, head says ${want}`);
    const inHand = bytesRead === size;
    let tail: Buffer;
    if (inHand) tail = start.subarray(size - end.length);
    else {
      tail = Buffer.alloc(end.length);
      await file.read(tail, 0, end.length, head.bodyOffset + head.bodyLength);
    }
    if (!tail.equals(end)) throw corrupt(path, 'no end record');
    return { head, body: whole && inHand ? start.subarray(head.bodyOffset, head.bodyOffset + head.bodyLength) : undefined };
  } finally {
    file.close();
  }
}

/**
 * A queue file open for reading (the head, or the whole file for delivery): open(2),
 * fstat(2) and close(2) at once on the calling thread (metadata, as queue-file-system.ts
 * runs them), reads through the thread pool (a file no longer in the page cache waits for
 * the disk).
 */
class QueueFileRead {
  readonly #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return new Promise((resolve, reject) => read(this.#fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve({ bytesRead }))));
  }

  /** The file's size in bytes. */
  size(): number {
    return fstatSync(this.#fd).size;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** The head, from `start` (the file's first bytes, if already read) and further reads. */
async function readHead(file: QueueFileRead, path: string, start?: Buffer): Promise<QueueFileHead> {
  const chunks: Buffer[] = [];
  let length = 0;
  let newlines: number[] = [];
  let eof = false;
  const scan = (chunk: Buffer): void => {
    for (let i = 0; i < chunk.length && newlines.length < 2; i += 1) {
      if (chunk[i] === 0x0a) newlines.push(length + i);
    }
    chunks.push(chunk);
    length += chunk.length;
  };
  if (start) {
    scan(start);
    eof = start.length === 0;
  }
  // Bounded: at most MAX_HEAD_BYTES / 64 KiB reads.
  while (!eof && newlines.length < 2 && length < MAX_HEAD_BYTES) {
    const chunk = Buffer.alloc(length === 0 ? 4096 : 64 * 1024); // most heads fit the first 4 KiB
    const { bytesRead } = await file.read(chunk, 0, chunk.length, length);
    if (bytesRead === 0) break;
    scan(chunk.subarray(0, bytesRead));
  }
  if (newlines.length < 2) throw corrupt(path, 'no complete head');
  const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
  const magic = all.subarray(0, newlines[0]).toString('latin1');
  if (magic !== QUEUE_FILE_MAGIC) throw corrupt(path, `bad magic "${magic.slice(0, 40)}"`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(all.subarray(newlines[0]! + 1, newlines[1]).toString('utf8'));
  } catch (error) {
    throw corrupt(path, 'head is not JSON', error);
  }
  const head = parsed as { id?: unknown; bodyLength?: unknown; envelope?: Partial<Envelope> };
  const envelope = head.envelope;
  if (
    typeof head.id !== 'string' ||
    typeof head.bodyLength !== 'number' ||
    !Number.isSafeInteger(head.bodyLength) ||
    head.bodyLength < 0 ||
    !envelope ||
    typeof envelope.sender !== 'string' ||
    !Array.isArray(envelope.recipients) ||
    typeof envelope.arrivalTime !== 'number'
  ) {
    throw corrupt(path, 'head lacks id, bodyLength or envelope');
  }
  newlines = newlines.slice(0, 2);
  return { id: head.id, bodyLength: head.bodyLength, envelope: envelope as Envelope, bodyOffset: newlines[1]! + 1 };
}

function corrupt(path: string, why: string, cause?: unknown): MxError {
  return new MxError('ERR_QUEUE_CORRUPT', `${path}: ${why}`, { cause });
}

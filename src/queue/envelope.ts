/*
 * envelope — what the policy stage hands to the queue with each message.
 *
 * Decides: the `QueueWriter` seam through which the policy stage streams a message in,
 * with its envelope. The durability contract (README "Design") belongs to
 * `IncomingMessage.commit()`: when it resolves, the message and its envelope are fsynced
 * and renamed into incoming/.
 * Leaves to others: the envelope's shape (message/envelope.ts, shared with delivery/;
 * re-exported here for the policy stage), the file format (queue-file.ts), the spool
 * directories (spool.ts).
 */
import type { Envelope } from '../message/envelope.js';
export type { Envelope, QueueRecipient } from '../message/envelope.js';

/** How a message is committed. */
export interface CommitOptions {
  /**
   * Commit into hold/ instead of incoming/ (a header_checks HOLD, cleanup(8)): the queue
   * manager never sees it in incoming/, `queue release` lets it go.
   */
  readonly hold?: boolean;
}

/** A message being written into incoming/. */
export interface IncomingMessage {
  /** Queue id, known before the body so the Received: header can name it. */
  readonly id: string;
  /** Appends body bytes; resolves when the chunk is written (back-pressure). */
  write(chunk: Buffer): Promise<void>;
  /**
   * Writes the end record, fsyncs, renames into incoming/ (hold/ with `hold`) and fsyncs
   * that directory. Only after this resolves may the client get 250. Rejects with MxError
   * ERR_QUEUE_IO (the client then gets 451 4.3.0, or 452 4.3.1 when out of space).
   */
  commit(options?: CommitOptions): Promise<void>;
  /** Discards the partial file (client went away, message rejected). Never throws. */
  abort(): Promise<void>;
}

/** The policy stage's view of the queue. */
export interface QueueWriter {
  /**
   * Starts a message. Rejects with MxError ERR_QUEUE_IO; its cause has code ENOSPC when
   * the queue file system is below queue_minfree (the client gets 452 4.3.1).
   */
  open(envelope: Envelope): Promise<IncomingMessage>;
  /**
   * Whether the queue takes a message of `size` bytes now (MAIL FROM SIZE=, 0 when not
   * given): false when free space would fall below max(queue_minfree, 1.5 ×
   * message_size_limit) — the policy stage then answers MAIL with `452 4.3.1
   * Insufficient system storage` (Postfix smtpd, postconf(5) queue_minfree). Never rejects.
   */
  canAccept?(size: number): Promise<boolean>;
}

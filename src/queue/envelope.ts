/*
 * envelope — what the policy stage hands to the queue with each message.
 *
 * Decides: the envelope recorded in a queue file (RFC 5321 §2.3.1: reverse-path and
 * forward-paths, plus the client facts a Received: header and a DSN need) and the
 * `QueueWriter` seam through which the policy stage streams a message in. The
 * durability contract (README "Design") belongs to `IncomingMessage.commit()`: when it
 * resolves, the message and its envelope are fsynced and renamed into incoming/.
 * Leaves to others: the file format (queue-file.ts), the spool directories (spool.ts).
 */

export interface QueueRecipient {
  /** RFC 5321 forward-path without angle brackets, e.g. `joe@example.com`. */
  readonly address: string;
  /**
   * RFC 3461 ORCPT as the client gave it, its address decoded from xtext
   * (`rfc822;joe+x@example.com` for `ORCPT=rfc822;joe+2Bx@example.com`); absent when it gave none.
   */
  readonly orcpt?: string;
  /** RFC 3461 NOTIFY values, upper case (`SUCCESS`, `FAILURE`, `DELAY`, or `NEVER` alone); absent when the client gave none. */
  readonly notify?: readonly string[];
}

export interface Envelope {
  /** RFC 5321 reverse-path without angle brackets; empty string for the null sender `<>`. */
  readonly sender: string;
  readonly recipients: readonly QueueRecipient[];
  /** When the client sent DATA's final dot, ms since the epoch. */
  readonly arrivalTime: number;
  readonly client: {
    readonly address: string;
    readonly port: number;
    /** HELO/EHLO argument, if any. */
    readonly helo?: string;
  };
  /** Session id of the SMTP session that brought the message, for log correlation. */
  readonly sessionId: string;
  /** RFC 3461 ENVID (decoded from xtext) and RET, when the client gave them. */
  readonly dsn?: { readonly envid?: string; readonly ret?: 'FULL' | 'HDRS' };
}

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

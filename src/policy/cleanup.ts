/*
 * cleanup — moves one message from the DATA stream into the queue (Postfix cleanup(8)).
 *
 * Decides: the order of writing (queue file opened, Received: header naming the queue id,
 * then the body chunk by chunk with back-pressure, never held whole), the stages every
 * message goes through (DATA → content-limits.ts → content-inspection.ts when checks are
 * configured → queue), the size limit (message_size_limit on the bytes received after
 * dot-unstuffing: `552 5.3.4`, the rest read and discarded, the file aborted), then a
 * safety limit's refusal (content-limits.ts: its permanent reply, the file aborted), then
 * the content checks' verdict at the end of DATA (content-inspection.ts: REJECT aborts the
 * file with the rule's reply, DISCARD aborts it and says 250, HOLD commits it into hold/ so
 * delivery never sees it), and the typed outcome with its reply (cleanupReply). A queue
 * failure aborts the file; ENOSPC in the cause chain is `452 4.3.1`, other queue errors
 * `451 4.3.0`. Whatever the outcome, DATA is read to its end (the reply follows the dot).
 * Leaves to others: the queue file and its durability (queue/), when the reply is sent
 * (smtp-server, after the final dot), the limits and their replies (content-limits.ts),
 * logging (end-of-message.ts).
 * Bugs: the envelope's arrivalTime is the start of DATA (the Received: header needs the id).
 */
import type { Readable } from 'node:stream';
import { hasErrno, type SmtpReply } from '../errors.js';
import type { Logger } from '../ops/log.js';
import type { Envelope, IncomingMessage, QueueWriter } from '../queue/envelope.js';
import { inspectContent, type ContentMatch, type ContentSettings } from './content-inspection.js';
import { applyContentLimits, DEFAULT_CONTENT_LIMITS, type ContentLimits, type LimitNotice, type LimitRefusal } from './content-limits.js';

export type CleanupOutcome =
  /**
   * commit() resolved: the message is durable. `size` counts header and body bytes queued.
   * `hold` is set when a header check said HOLD: the message was committed into hold/.
   * `notices` (absent when none): safety limits that changed the message (a header cut).
   */
  | {
      readonly kind: 'queued';
      readonly id: string;
      readonly size: number;
      readonly bodyBytes: number;
      readonly hold?: { readonly text: string; readonly match: ContentMatch };
      readonly notices?: readonly LimitNotice[];
    }
  /** A safety limit refused the message (content-limits.ts); nothing was queued. */
  | { readonly kind: 'limit-exceeded'; readonly refusal: LimitRefusal }
  /** A header check (or blocked attachment type) said REJECT; nothing was queued. */
  | { readonly kind: 'content-rejected'; readonly reply: SmtpReply; readonly match: ContentMatch }
  /** A header check said DISCARD: the client is told it was queued, nothing was. */
  | { readonly kind: 'discarded'; readonly id: string; readonly text: string; readonly match: ContentMatch }
  /** The client sent more than the limit (`bodyBytes`: bytes received); nothing was queued. */
  | { readonly kind: 'too-big'; readonly bodyBytes: number; readonly limit: number }
  /** The queue refused (open, write or commit failed); nothing was queued. */
  | { readonly kind: 'queue-error'; readonly error: unknown; readonly noSpace: boolean }
  /** The DATA stream broke (client went away) before the final dot; nothing was queued. */
  | { readonly kind: 'client-gone'; readonly error: unknown };

export interface CleanupRequest {
  readonly queue: QueueWriter;
  readonly envelope: Envelope;
  /** message_size_limit in bytes; 0 means no limit (postconf(5)). */
  readonly sizeLimit: number;
  /** The Received: header (with CRLF) for the queue id the queue chose. */
  readonly receivedHeader: (queueId: string) => string;
  /** Header and MIME checks to apply while the message streams in; absent: none. */
  readonly content?: { readonly settings: ContentSettings; readonly log: Logger };
  /** Safety limits applied to every message (content-limits.ts); absent: DEFAULT_CONTENT_LIMITS. */
  readonly limits?: ContentLimits;
}


/**
 * Reads `data` (the DATA stream: unstuffed message bytes, CRLF lines) to its end and
 * returns what became of the message. Never throws; always consumes the whole stream
 * unless the stream itself fails. Source: Postfix cleanup(8), smtpd(8) DATA handling.
 */
export async function receiveMessage(data: Readable, request: CleanupRequest): Promise<CleanupOutcome> {
  let message: IncomingMessage | undefined;
  let failure: { error: unknown } | undefined;
  let tooBig = false;
  let bodyBytes = 0;
  let headerBytes = 0;

  const abort = async (): Promise<void> => {
    const open = message;
    message = undefined;
    if (open) await open.abort();
  };

  // The stream may fail while the queue file is being opened, before the loop below
  // listens; without a listener that error would be thrown at the process. The loop
  // still sees it (the stream stays errored).
  data.on('error', () => undefined);
  try {
    message = await request.queue.open(request.envelope);
    const header = Buffer.from(request.receivedHeader(message.id), 'utf8');
    headerBytes = header.length;
    await message.write(header);
  } catch (error) {
    failure = { error };
    await abort();
  }

  const limits = request.limits ?? DEFAULT_CONTENT_LIMITS;
  const limited = applyContentLimits(data, limits);
  const inspection = request.content ? inspectContent(limited.output, request.content.settings, request.content.log, limits) : undefined;
  const source = inspection ? inspection.output : limited.output;
  const overSize = (): boolean => request.sizeLimit > 0 && limited.received() > request.sizeLimit;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      bodyBytes += chunk.length;
      if (failure || tooBig || !message) continue; // discard: read on to the final dot
      if (overSize()) {
        tooBig = true;
        await abort();
        continue;
      }
      try {
        await message.write(chunk);
      } catch (error) {
        failure = { error };
        await abort();
      }
    }
  } catch (error) {
    await abort();
    return { kind: 'client-gone', error };
  }

  // A cut header can make the queued bytes fewer than the received ones: the limit counts these.
  if (tooBig || overSize()) {
    await abort();
    return { kind: 'too-big', bodyBytes: limited.received(), limit: request.sizeLimit };
  }
  // The limits stage refuses first: after its refusal the inspection saw only a part.
  const refusal = limited.refusal();
  if (refusal) {
    await abort();
    return { kind: 'limit-exceeded', refusal };
  }
  const verdict = inspection?.verdict() ?? { kind: 'accept' as const };
  switch (verdict.kind) {
    case 'limit':
      await abort();
      return { kind: 'limit-exceeded', refusal: verdict.refusal };
    case 'reject':
      await abort();
      return { kind: 'content-rejected', reply: verdict.reply, match: verdict.match };
    case 'discard': {
      const id = message?.id ?? '';
      await abort();
      return { kind: 'discarded', id, text: verdict.text, match: verdict.match };
    }
    case 'hold':
    case 'accept':
      break;
    default: {
      const never: never = verdict;
      throw new Error(`unhandled content verdict ${JSON.stringify(never)}`);
    }
  }
  if (failure || !message) {
    const error = failure?.error;
    return { kind: 'queue-error', error, noSpace: hasErrno(error, 'ENOSPC') };
  }
  const committing = message;
  try {
    await committing.commit(verdict.kind === 'hold' ? { hold: true } : undefined);
  } catch (error) {
    await committing.abort();
    return { kind: 'queue-error', error, noSpace: hasErrno(error, 'ENOSPC') };
  }
  const notices = limited.notices();
  return {
    kind: 'queued',
    id: committing.id,
    size: headerBytes + bodyBytes,
    bodyBytes,
    ...(verdict.kind === 'hold' ? { hold: { text: verdict.text, match: verdict.match } } : {}),
    ...(notices.length > 0 ? { notices } : {}),
  };
}

/** Postfix's reply for each outcome (smtpd(8) after cleanup(8) status). */
export function cleanupReply(outcome: CleanupOutcome): SmtpReply {
  switch (outcome.kind) {
    case 'queued':
      return { code: 250, enhanced: '2.0.0', text: `Ok: queued as ${outcome.id}` };
    case 'too-big':
      return messageTooBig();
    case 'queue-error':
      return outcome.noSpace
        ? { code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' }
        : { code: 451, enhanced: '4.3.0', text: 'Error: queue file write error' };
    case 'client-gone':
      return { code: 451, enhanced: '4.3.0', text: 'Error: queue file write error' };
    case 'content-rejected':
      return outcome.reply;
    case 'limit-exceeded':
      return outcome.refusal.reply;
    case 'discarded':
      // Postfix tells the client its message was queued (DISCARD is silent by design).
      return { code: 250, enhanced: '2.0.0', text: `Ok: queued as ${outcome.id}` };
    default: {
      const never: never = outcome;
      throw new Error(`unhandled cleanup outcome ${JSON.stringify(never)}`);
    }
  }
}

/** `552 5.3.4 Message size exceeds fixed limit` (Postfix smtpd, message_size_limit). */
export function messageTooBig(): SmtpReply {
  return { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed limit' };
}

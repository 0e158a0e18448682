/*
 * queue-show — what `mxscreen queue show ID` prints (Postfix postcat -q, headers only).
 *
 * Decides: the view of one queued message: which queue holds it, its envelope (sender,
 * client, RFC 3461 ENVID/RET, each recipient with ORCPT, NOTIFY, delivery status,
 * attempts and last reply), the next attempt, and the header section of the message
 * (never the body). Text in postcat's `*** … ***` sections, or the same as JSON.
 * Leaves to others: the files (queue-file.ts, delivery-state.ts), the listing of all
 * messages (queue-listing.ts).
 * Bugs: reads without locks; a message that moves while it is read is looked up again
 * once per queue only.
 */
import { readFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { readQueueFileHead } from './queue-file.js';
import { decodeDeliveryState, initialDeliveryState, type RecipientStatus } from './delivery-state.js';
import { headerSection } from './bounce.js';

/** Longest header section shown, bytes. */
const HEADER_LIMIT = 256 * 1024;
const SHOWN_QUEUES = ['incoming', 'active', 'deferred', 'hold', 'corrupt'] as const;

export interface QueueMessageView {
  readonly id: string;
  readonly queue: (typeof SHOWN_QUEUES)[number];
  /** ISO 8601. */
  readonly arrivalTime: string;
  /** Body size, bytes. */
  readonly size: number;
  readonly sender: string;
  readonly client: string;
  readonly helo?: string | undefined;
  readonly envid?: string | undefined;
  readonly ret?: string | undefined;
  readonly recipients: readonly {
    readonly address: string;
    readonly orcpt?: string | undefined;
    readonly notify?: readonly string[] | undefined;
    readonly status: RecipientStatus;
    readonly attempts: number;
    readonly lastError?: string | undefined;
  }[];
  readonly attempts: number;
  /** ISO 8601, when the queue manager will try it next (deferred only). */
  readonly nextAttempt?: string | undefined;
  /** The message's header section. */
  readonly headers: string;
}

/**
 * Reads message `id` from the queue directory (absolute path). Resolves undefined when
 * no queue holds it; throws ERR_QUEUE_CORRUPT for a damaged file, fs errors as is.
 */
export async function showQueuedMessage(directory: string, id: string): Promise<QueueMessageView | undefined> {
  for (const queue of SHOWN_QUEUES) {
    const path = join(directory, queue, id);
    let head;
    try {
      head = await readQueueFileHead(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const stateText = await readFile(join(directory, 'state', id), 'utf8').catch(() => undefined);
    const state = (stateText !== undefined ? decodeDeliveryState(stateText, id, head.envelope) : undefined) ?? initialDeliveryState(id, head.envelope);
    const headers = await readHeaders(path, head.bodyOffset, Math.min(head.bodyLength, HEADER_LIMIT));
    const { envelope } = head;
    return {
      id,
      queue,
      arrivalTime: new Date(envelope.arrivalTime).toISOString(),
      size: head.bodyLength,
      sender: envelope.sender,
      client: `[${envelope.client.address}]:${envelope.client.port}`,
      helo: envelope.client.helo,
      envid: envelope.dsn?.envid,
      ret: envelope.dsn?.ret,
      recipients: state.recipients.map((r, index) => ({
        address: r.address,
        orcpt: envelope.recipients[index]?.orcpt,
        notify: envelope.recipients[index]?.notify,
        status: r.status,
        attempts: r.attempts,
        lastError: r.lastError,
      })),
      attempts: state.attempts,
      nextAttempt: queue === 'deferred' && state.nextAttempt ? new Date(state.nextAttempt).toISOString() : undefined,
      headers,
    };
  }
  return undefined;
}

/** The text `mxscreen queue show ID` prints. */
export function formatQueueMessage(view: QueueMessageView): string {
  const lines = [
    `*** ENVELOPE RECORDS ${view.queue}/${view.id} ***`,
    `message_size: ${view.size}`,
    `message_arrival_time: ${view.arrivalTime}`,
    `sender: <${view.sender}>`,
    `client: ${view.client}${view.helo ? ` helo=${view.helo}` : ''}`,
    ...(view.envid ? [`envid: ${view.envid}`] : []),
    ...(view.ret ? [`ret: ${view.ret}`] : []),
    ...view.recipients.map(
      (r) =>
        `recipient: <${r.address}> status=${r.status} attempts=${r.attempts}` +
        (r.orcpt ? ` orcpt=${r.orcpt}` : '') +
        (r.notify ? ` notify=${r.notify.join(',')}` : '') +
        (r.lastError ? `\n  last: ${r.lastError}` : ''),
    ),
    `attempts: ${view.attempts}`,
    ...(view.nextAttempt ? [`next_attempt: ${view.nextAttempt}`] : []),
    '*** MESSAGE CONTENTS (header section) ***',
    view.headers.replace(/\r\n/g, '\n').replace(/\n+$/, ''),
    '*** END OF MESSAGE ***',
  ];
  return `${lines.join('\n')}\n`;
}

async function readHeaders(path: string, offset: number, length: number): Promise<string> {
  if (length <= 0) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(path, { start: offset, end: offset + length - 1 })) chunks.push(chunk as Buffer);
  return headerSection(Buffer.concat(chunks)).toString('utf8');
}

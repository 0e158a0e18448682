/*
 * queue-listing — what `mxscreen queue list` shows (Postfix postqueue -p, one line each).
 *
 * Decides: the fields of a listing entry (id, queue, arrival time, size in bytes, sender,
 * each recipient with its delivery status, last error, next attempt; for corrupt/ what is
 * wrong and whether requeue can repair it) and the text form: one tab-separated line per
 * message, oldest first within incoming, active, deferred, hold, corrupt, and nothing else
 * (no postqueue header or footer, so scripts can count lines); an empty or not yet
 * created queue directory prints nothing. postqueue -p never shows corrupt/; here every
 * file there is shown, marked `(corrupt: …)` in the last field, even one whose head
 * cannot be read (its file name, arrival from its queue id, file size, sender `-`).
 * Leaves to others: the files themselves (queue-file.ts, delivery-state.ts, spool.ts),
 * what is wrong with a corrupt file (corrupt-repair.ts).
 * Bugs: reads without locks while mxscreen runs; a message that moves between queues
 * during the listing can be missed or shown twice.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readQueueFileHead, type QueueFileHead } from './queue-file.js';
import { isQueueId, queueIdTime } from './queue-id.js';
import { describeCondition, inspectQueueFile, isRepairable } from './corrupt-repair.js';
import { decodeDeliveryState, initialDeliveryState, type RecipientStatus } from './delivery-state.js';

export interface QueueListing {
  readonly id: string;
  readonly queue: (typeof LISTED_QUEUES)[number];
  /** ISO 8601 arrival time (from the queue id when a corrupt file's head cannot be read). */
  readonly arrivalTime: string;
  /** Body size in bytes; the file's size when a corrupt file's head cannot be read. */
  readonly size: number;
  /** Envelope sender; empty for the null sender; null when a corrupt file's head cannot be read. */
  readonly sender: string | null;
  readonly recipients: readonly { readonly address: string; readonly status: RecipientStatus; readonly lastError?: string }[];
  /** The most recent error of any recipient still to be delivered, if any. */
  readonly lastError?: string;
  /** ISO 8601 time of the next delivery attempt, for deferred messages. */
  readonly nextAttempt?: string;
  /** corrupt/ only: what is wrong (corrupt-repair.ts) and whether `queue requeue` can put it back. */
  readonly corrupt?: { readonly reason: string; readonly requeueable: boolean; readonly fileSize: number };
}

const LISTED_QUEUES = ['incoming', 'active', 'deferred', 'hold', 'corrupt'] as const;

/**
 * Reads the queue directory (absolute path) and returns one entry per queued message.
 * Files that vanish or cannot be read while listing are skipped. Throws the fs error
 * when a queue subdirectory cannot be read; a missing one is empty (mxscreen never ran).
 */
export async function listQueue(directory: string): Promise<QueueListing[]> {
  const entries: QueueListing[] = [];
  for (const queue of LISTED_QUEUES) {
    const ids = (await readdir(join(directory, queue)).catch(emptyWhenMissing)).filter(isQueueId).sort();
    for (const id of ids) {
      const path = join(directory, queue, id);
      let head: QueueFileHead | undefined;
      let corrupt: QueueListing['corrupt'];
      try {
        if (queue === 'corrupt') {
          const condition = await inspectQueueFile(path, id);
          corrupt = { reason: describeCondition(condition), requeueable: isRepairable(condition), fileSize: condition.fileSize };
          head = condition.kind === 'bad-head' ? undefined : condition.head;
        } else head = await readQueueFileHead(path);
      } catch {
        continue; // moved on, or corrupt: the queue manager deals with it
      }
      if (!head) {
        const fileSize = corrupt?.fileSize ?? 0;
        entries.push({ id, queue, arrivalTime: new Date(queueIdTime(id)).toISOString(), size: fileSize, sender: null, recipients: [], ...(corrupt ? { corrupt } : {}) });
        continue;
      }
      let stateText: string | undefined;
      try {
        stateText = await readFile(join(directory, 'state', id), 'utf8');
      } catch {
        stateText = undefined;
      }
      const state =
        (stateText !== undefined ? decodeDeliveryState(stateText, id, head.envelope) : undefined) ??
        initialDeliveryState(id, head.envelope);
      const undelivered = state.recipients.filter((r) => (r.status === 'pending' || r.status === 'deferred') && r.lastError);
      entries.push({
        id,
        queue,
        arrivalTime: new Date(head.envelope.arrivalTime).toISOString(),
        size: head.bodyLength,
        sender: head.envelope.sender,
        recipients: state.recipients.map((r) => ({ address: r.address, status: r.status, ...(r.lastError ? { lastError: r.lastError } : {}) })),
        ...(undelivered.length ? { lastError: undelivered[undelivered.length - 1]!.lastError! } : {}),
        ...(queue === 'deferred' && state.nextAttempt ? { nextAttempt: new Date(state.nextAttempt).toISOString() } : {}),
        ...(corrupt ? { corrupt } : {}),
      });
    }
  }
  return entries;
}

/**
 * The text `mxscreen queue list` prints: per message one line
 * `id<TAB>queue<TAB>arrival<TAB>size<TAB><sender><TAB><rcpt>=status,…<TAB>(last error)`;
 * for corrupt/ the last field is `(corrupt: what is wrong; mxscreen queue requeue delivers it|cannot be requeued)`,
 * and sender and recipients are `-` when the head cannot be read.
 */
export function formatQueueListing(entries: readonly QueueListing[]): string {
  if (entries.length === 0) return '';
  const lines = entries.map((entry) =>
    [
      entry.id,
      entry.queue,
      entry.arrivalTime,
      String(entry.size),
      entry.sender === null ? '-' : `<${entry.sender}>`,
      entry.recipients.map((r) => `<${r.address}>=${r.status}`).join(',') || '-',
      entry.corrupt
        ? `(corrupt: ${entry.corrupt.reason}; ${entry.corrupt.requeueable ? 'mxscreen queue requeue delivers it' : 'cannot be requeued'})`
        : entry.lastError
          ? `(${entry.lastError.replace(/\s+/g, ' ')})`
          : '-',
    ].join('\t'),
  );
  return `${lines.join('\n')}\n`;
}

function emptyWhenMissing(error: unknown): string[] {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
  throw error;
}

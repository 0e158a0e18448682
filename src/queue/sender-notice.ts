/*
 * sender-notice — notices to the sender about its mail (Postfix bounce(8) as qmgr(8)
 * asks for it: non-delivery, delay and success notifications).
 *
 * Decides: how much of the original goes back (the whole message for a bounce up to
 * bounce_size_limit unless RET=HDRS, else its header section); the notice as a new
 * queued message from <> to the sender; the log line `sender non-delivery|delay|delivery
 * status notification: NOTICEID`.
 * Leaves to others: the DSN text (bounce.ts), which recipients failed, were relayed or
 * are due a delay notice (delivery-outcome.ts), when notices are queued relative to the
 * state (queue-manager.ts), the move of the notice's file (spool.ts).
 * Bugs: a crash between queuing a notice and writing the state that records it repeats
 * the notice (never loses it).
 */
import type { Logger } from '../ops/log.js';
import type { Spool } from './spool.js';
import type { QueueFileHead } from './queue-file.js';
import type { Envelope } from './envelope.js';
import { composeDsn, headerSection, type DsnAction, type DsnRecipient } from './bounce.js';

/** What a notice needs from the queue settings (postconf(5) names in queue-settings.ts). */
export interface NoticeSettings {
  /** reporting MTA and HELO of the notice (myhostname). */
  readonly myhostname: string;
  /** Largest message returned whole in a bounce, bytes. */
  readonly bounceSizeLimit?: number;
  /** ms; a delay notice says until when delivery is tried. */
  readonly maximalQueueLifetime: number;
}

/**
 * Queues a DSN (bounce.ts) about `recipients` of `head` (in active/; `body` its bytes
 * when loaded) to its sender, from <>, durably in incoming/, and logs it Postfix style.
 * Resolves the notice's queue id. Throws MxError ERR_QUEUE_IO (spool.ts) on I/O errors;
 * nothing is left in incoming/ then.
 */
export async function queueSenderNotice(
  deps: { readonly spool: Spool; readonly log: Logger },
  settings: NoticeSettings,
  head: QueueFileHead,
  body: Buffer | undefined,
  action: DsnAction,
  recipients: readonly DsnRecipient[],
  now: number,
): Promise<string> {
  const { spool, log } = deps;
  const limit = settings.bounceSizeLimit ?? 50_000;
  const whole = action === 'failed' && head.envelope.dsn?.ret !== 'HDRS' && head.bodyLength <= limit;
  const original = await readBody(spool.openBody('active', head, body), whole ? head.bodyLength : Math.min(head.bodyLength, limit));
  const message = await composeDsn({
    action,
    reportingMta: settings.myhostname,
    queueId: head.id,
    envelope: head.envelope,
    recipients,
    original: whole ? original : headerSection(original),
    originalComplete: whole,
    now,
    ...(action === 'delayed' ? { retryUntil: head.envelope.arrivalTime + settings.maximalQueueLifetime } : {}),
  });
  const envelope: Envelope = {
    sender: '',
    recipients: [{ address: head.envelope.sender }],
    arrivalTime: now,
    client: { address: '127.0.0.1', port: 0, helo: settings.myhostname },
    sessionId: `notice:${head.id}`,
  };
  const incoming = await spool.open(envelope);
  try {
    await incoming.write(message);
    await incoming.commit();
  } catch (error) {
    await incoming.abort();
    throw error;
  }
  const event = NOTICE_EVENTS[action];
  log.info({ event, queueId: head.id, noticeId: incoming.id, to: head.envelope.sender }, `${head.id}: ${event}: ${incoming.id}`);
  return incoming.id;
}

const NOTICE_EVENTS = {
  failed: 'sender non-delivery notification',
  delayed: 'sender delay notification',
  relayed: 'sender delivery status notification',
} as const satisfies Record<DsnAction, string>;

/** At most `limit` bytes of a body stream. */
async function readBody(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= limit) break;
  }
  return Buffer.concat(chunks, length).subarray(0, limit);
}

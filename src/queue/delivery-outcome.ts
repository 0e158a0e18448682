/*
 * delivery-outcome — what one delivery attempt's results mean for the message (qmgr(8)
 * when the delivery agent reports back), decided as values, without I/O.
 *
 * Decides: each tried recipient's next state (its status, one attempt more, its last
 * reply and RFC 3463 status; a recipient not tried keeps its state); that a deferral of
 * a message older than maximal_queue_lifetime (bounce_queue_lifetime for mail from <>)
 * is a bounce, `message expired after …`, unless the attempt was stopped; that a bounce's
 * status is a 5.x.x one (5.4.7 when the result had none); the next attempt time
 * (backoff.ts); the notices the sender gets, in order: a bounce naming the recipients
 * with NOTIFY=FAILURE or none, a success notice for NOTIFY=SUCCESS delivered to a server
 * without DSN (RFC 3461 §5.2.2), one delay notice at delay_warning_time for the
 * undelivered ones with NOTIFY=DELAY or none — never to <>, none while stopping; the log
 * line of each tried recipient (delivery-log.ts); and, after the notices, where the
 * message goes: removed when finished or deleted meanwhile, left in active/ while
 * stopping (state written only when a recipient was settled or a notice sent), requeued,
 * held, or deferred.
 * Leaves to others: the attempt itself (the delivery agent, delivery-request.ts), queuing
 * notices, writing state and moving files (queue-manager.ts, sender-notice.ts, spool.ts).
 */
import type { RecipientDelivery, RecipientResult } from '../delivery-request.js';
import { backoffDelay } from './backoff.js';
import { wantsNotice, type DsnAction, type DsnRecipient } from './bounce.js';
import { isFinished, isUndelivered, type DeliveryState, type RecipientState } from './delivery-state.js';
import { deliveryLogLine, type DeliveryLogLine } from './delivery-log.js';
import type { ControlCommand } from './queue-control.js';
import type { QueueFileHead } from './queue-file.js';
import type { QueueSettings } from './queue-settings.js';

/** Why a recipient bounced (the mxscreen_bounces_total label). */
export type BounceReason = RecipientDelivery['reason'] | 'expired';

/** What control asked for a message while it sat in active/: applied after its attempt. */
export type PendingControl = Exclude<ControlCommand, 'flush' | 'release'>;

export type OutcomeSettings = Pick<QueueSettings, 'maximalQueueLifetime' | 'bounceQueueLifetime' | 'delayWarningTime' | 'minimalBackoffTime' | 'maximalBackoffTime'>;

/** One attempt of message `head` as the queue manager saw it. */
export interface Attempt {
  readonly head: QueueFileHead;
  /** The state before the attempt. */
  readonly state: DeliveryState;
  /** The delivery agent's results by envelope recipient index; an index without one was not tried. */
  readonly results: ReadonlyMap<number, RecipientDelivery>;
  /** When the attempt ended, ms since the epoch. */
  readonly now: number;
  /** The attempt was stopped (stop's grace time ran out, or control deleted the message). */
  readonly aborted: boolean;
}

export interface Notice {
  readonly action: DsnAction;
  readonly recipients: readonly DsnRecipient[];
}

export interface DeliveryOutcome {
  /** The state after the attempt; `delayWarned` when a delay notice is among `notices`. */
  readonly state: DeliveryState;
  /** The reason of each recipient that bounced, in envelope order. */
  readonly bounces: readonly BounceReason[];
  /** Notices to queue before `state` is written (a crash in between repeats one, never loses one). */
  readonly notices: readonly Notice[];
  /** One line per tried recipient, in envelope order. */
  readonly logLines: readonly DeliveryLogLine[];
}

/** Where the message goes after its attempt and notices. */
export type AttemptEnding =
  /** Every recipient sent or bounced, or deleted meanwhile: no state write first (a crash before the unlink re-delivers). */
  | { readonly kind: 'remove' }
  /** Stopping: it stays in active/ (back to incoming/ at the next start, tried at once), after `state` when there is one. */
  | { readonly kind: 'keep'; readonly state: DeliveryState | undefined }
  /** `state` first, then to incoming/ (requeue), hold/ or deferred/. */
  | { readonly kind: 'requeue' | 'hold' | 'defer'; readonly state: DeliveryState };

/** The next state, bounces, notices and log lines of an attempt. Pure. */
export function deliveryOutcome(attempt: Attempt, settings: OutcomeSettings): DeliveryOutcome {
  const { head, state, results, now, aborted } = attempt;
  const fromNullSender = head.envelope.sender === '';
  const expiry = aborted ? undefined : expiryOf(head, now, settings);
  const bounces: BounceReason[] = [];
  const failed: DsnRecipient[] = [];
  const relayed: DsnRecipient[] = [];
  const logLines: DeliveryLogLine[] = [];
  const recipients = state.recipients.map((recipient, index): RecipientState => {
    const result = results.get(index);
    if (!result) return recipient;
    const { outcome, reason } = settle(result, expiry);
    const queued = head.envelope.recipients[index]!;
    const notice = { address: recipient.address, orcpt: queued.orcpt, status: outcome.dsn };
    if (outcome.status === 'bounced') {
      bounces.push(reason);
      if (!fromNullSender && wantsNotice(queued, 'failed')) failed.push({ ...notice, text: outcome.text });
    }
    if (outcome.status === 'sent' && result.relayedWithoutDsn && !fromNullSender && wantsNotice(queued, 'relayed')) {
      relayed.push({ ...notice, text: `delivery via ${result.relay}: ${outcome.text}` });
    }
    logLines.push(deliveryLogLine(head, outcome, result.relay, result.nexthop, now));
    return { address: recipient.address, status: outcome.status, attempts: recipient.attempts + 1, lastError: outcome.text, dsn: outcome.dsn };
  });
  const attempts = state.attempts + 1;
  const after: DeliveryState = {
    id: state.id,
    attempts,
    nextAttempt: now + backoffDelay(attempts, settings.minimalBackoffTime, settings.maximalBackoffTime),
    recipients,
    ...(state.delayWarned ? { delayWarned: true } : {}),
  };
  if (aborted) return { state: after, bounces, notices: [], logLines };
  const notices: Notice[] = [];
  if (failed.length) notices.push({ action: 'failed', recipients: failed });
  if (relayed.length) notices.push({ action: 'relayed', recipients: relayed });
  const delayed = delayNoticeRecipients(head, after, now, settings.delayWarningTime ?? 0);
  if (!delayed.length) return { state: after, bounces, notices, logLines };
  notices.push({ action: 'delayed', recipients: delayed });
  return { state: { ...after, delayWarned: true }, bounces, notices, logLines };
}

/**
 * Where the message goes once its notices are queued: `before` and `after` are the states
 * around the attempt, `pending` what control asked meanwhile, `aborted` whether the
 * attempt was stopped (read now, after the notices). Pure.
 */
export function attemptEnding(before: DeliveryState, after: DeliveryState, pending: PendingControl | undefined, aborted: boolean): AttemptEnding {
  if (isFinished(after) || pending === 'delete') return { kind: 'remove' };
  if (aborted) {
    const settled = after.recipients.some((r, i) => r.status !== before.recipients[i]!.status && !isUndelivered(r));
    const changed = settled || after.delayWarned !== before.delayWarned;
    // The attempt does not count, and the next start tries it at once.
    return { kind: 'keep', state: changed ? { ...after, attempts: before.attempts, nextAttempt: 0 } : undefined };
  }
  switch (pending) {
    case 'requeue':
      return { kind: 'requeue', state: { ...after, nextAttempt: 0 } };
    case 'hold':
      return { kind: 'hold', state: after };
    case undefined:
      return { kind: 'defer', state: after };
    default: {
      const never: never = pending;
      throw new Error(`unhandled pending control ${String(never)}`);
    }
  }
}

/**
 * Recipients of `head` due a delay notice at `now` (ms since the epoch) after the
 * attempt that left `after`: none when `delayWarningTime` (ms) is 0, the notice was sent,
 * the sender is <>, or the message is younger (delay_warning_time, RFC 3461 NOTIFY=DELAY).
 */
function delayNoticeRecipients(head: QueueFileHead, after: DeliveryState, now: number, delayWarningTime: number): DsnRecipient[] {
  if (delayWarningTime <= 0 || after.delayWarned || head.envelope.sender === '' || now - head.envelope.arrivalTime < delayWarningTime) return [];
  return after.recipients.flatMap((recipient, index) => {
    const queued = head.envelope.recipients[index]!;
    if (!isUndelivered(recipient) || !wantsNotice(queued, 'delayed')) return [];
    return [{ address: recipient.address, orcpt: queued.orcpt, status: recipient.dsn ?? '4.0.0', text: recipient.lastError ?? 'delivery deferred' }];
  });
}

/** The parameter whose lifetime message `head` has outlived at `now`, if it has. */
function expiryOf(head: QueueFileHead, now: number, settings: OutcomeSettings): 'maximal_queue_lifetime' | 'bounce_queue_lifetime' | undefined {
  const fromNullSender = head.envelope.sender === '';
  const lifetime = fromNullSender ? (settings.bounceQueueLifetime ?? settings.maximalQueueLifetime) : settings.maximalQueueLifetime;
  if (now - head.envelope.arrivalTime < lifetime) return undefined;
  return fromNullSender ? 'bounce_queue_lifetime' : 'maximal_queue_lifetime';
}

/** A result as the queue keeps it: an expired deferral bounces; a bounce has a 5.x.x status. */
function settle(result: RecipientDelivery, expiry: string | undefined): { outcome: RecipientResult; reason: BounceReason } {
  const { outcome } = result;
  if (outcome.status === 'deferred' && expiry !== undefined) {
    return { outcome: { ...outcome, status: 'bounced', dsn: bounceStatus(outcome.dsn), text: `message expired after ${expiry}: ${outcome.text}` }, reason: 'expired' };
  }
  if (outcome.status === 'bounced') return { outcome: { ...outcome, dsn: bounceStatus(outcome.dsn) }, reason: result.reason };
  return { outcome, reason: result.reason };
}

function bounceStatus(dsn: string): string {
  return dsn.startsWith('5') ? dsn : '5.4.7';
}

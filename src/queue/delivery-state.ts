/*
 * delivery-state — what the queue manager remembers about each recipient of a message.
 *
 * Decides: the per-message state record (qmgr(8) keeps this in the queue file itself;
 * we keep a small JSON file `state/<id>` next to it so a large body is never rewritten):
 * per recipient its status (pending | sent | deferred | bounced), attempts and last
 * reply, and per message the attempt count and the next attempt time. Recipients are
 * kept in envelope order, one entry per envelope recipient.
 * Invariant: a missing state file means "every recipient pending, no attempt yet"; a
 * recipient only leaves pending/deferred after the state saying so is durable, and the
 * queue file is removed only after a state in which every recipient is sent or bounced.
 * Leaves to others: writing it durably (spool.ts), when to change it (queue-manager.ts).
 */
import type { Envelope } from './envelope.js';
import { recipientDomain } from '../message/envelope.js';

export const RECIPIENT_STATUSES = ['pending', 'sent', 'deferred', 'bounced'] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

export interface RecipientState {
  readonly address: string;
  readonly status: RecipientStatus;
  /** Delivery attempts made for this recipient. */
  readonly attempts: number;
  /** Last reply or error text, Postfix style: `host[ip] said: 451 4.3.0 … (in reply to RCPT TO command)`. */
  readonly lastError?: string;
  /** RFC 3463 status of the last attempt, e.g. `4.4.1`. */
  readonly dsn?: string;
}

export interface DeliveryState {
  readonly id: string;
  /** Delivery attempts of the message (each queue run that tried it counts once). */
  readonly attempts: number;
  /** Earliest time of the next attempt, ms since the epoch; 0 = as soon as possible. */
  readonly nextAttempt: number;
  readonly recipients: readonly RecipientState[];
  /** A delay notice (delay_warning_time) went to the sender; it is sent once. */
  readonly delayWarned?: boolean;
}

/** The state of a message nobody has tried yet (what a missing state file means). */
export function initialDeliveryState(id: string, envelope: Envelope): DeliveryState {
  return {
    id,
    attempts: 0,
    nextAttempt: 0,
    recipients: envelope.recipients.map((recipient) => ({ address: recipient.address, status: 'pending', attempts: 0 })),
  };
}

/** True when a recipient still needs delivery. */
export function isUndelivered(recipient: RecipientState): boolean {
  switch (recipient.status) {
    case 'pending':
    case 'deferred':
      return true;
    case 'sent':
    case 'bounced':
      return false;
    default: {
      const never: never = recipient.status;
      throw new Error(`unhandled recipient status ${String(never)}`);
    }
  }
}

/** True when the message may be removed: every recipient is sent or bounced. */
export function isFinished(state: DeliveryState): boolean {
  return !state.recipients.some(isUndelivered);
}

/**
 * The shape check of a state file's text, without an envelope to hold it against: a
 * state of message `id` whose recipients have an address, a known status and a count.
 * undefined for anything else. Never throws.
 */
function parseDeliveryState(text: string, id: string): DeliveryState | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const state = value as Partial<DeliveryState> | null;
  if (state === null || typeof state !== 'object' || state.id !== id || typeof state.attempts !== 'number' || typeof state.nextAttempt !== 'number') return undefined;
  if (!Array.isArray(state.recipients)) return undefined;
  const ok = state.recipients.every(
    (recipient: Partial<RecipientState> | null) =>
      recipient !== null && typeof recipient === 'object' && typeof recipient.address === 'string' && (RECIPIENT_STATUSES as readonly string[]).includes(recipient.status ?? '') && typeof recipient.attempts === 'number',
  );
  return ok ? (state as DeliveryState) : undefined;
}

/**
 * Reads a state file's text. Returns undefined when it is not a state of message `id`
 * with the envelope's recipients (the caller then starts over from the initial state:
 * at-least-once, a duplicate is allowed, a loss is not).
 */
export function decodeDeliveryState(text: string, id: string, envelope: Envelope): DeliveryState | undefined {
  const state = parseDeliveryState(text, id);
  if (!state || state.recipients.length !== envelope.recipients.length) return undefined;
  return state.recipients.every((recipient, index) => recipient.address === envelope.recipients[index]!.address) ? state : undefined;
}

/**
 * What the scheduler needs of a state file's text without the queue file (spool.ts
 * readSchedule): the next attempt time (ms, 0 = now) and the lower-case domains of the
 * recipients still undelivered. undefined when the text is not a state of `id`.
 */
export function scheduleOfState(text: string, id: string): { nextAttempt: number; domains: string[] } | undefined {
  const state = parseDeliveryState(text, id);
  return state ? { nextAttempt: state.nextAttempt, domains: undeliveredDomains(state) } : undefined;
}

/** The lower-case domains of the recipients of `state` still undelivered, each once. */
export function undeliveredDomains(state: DeliveryState): string[] {
  return [...new Set(state.recipients.filter(isUndelivered).map((recipient) => recipientDomain(recipient.address)))];
}

/** The state file's text. */
export function encodeDeliveryState(state: DeliveryState): string {
  return `${JSON.stringify(state)}\n`;
}

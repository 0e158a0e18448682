/*
 * delivery-log — the one log line per recipient and attempt (Postfix log_adhoc(): what
 * qmgr(8)/smtp(8) write as `to=<…>, relay=…, delay=…, dsn=…, status=…`).
 *
 * Decides: the line's wording, Postfix's (`QUEUEID: to=<rcpt>, relay=host[ip]:port,
 * delay=1.2, dsn=4.4.1, status=deferred (reply)`), the delay's form (one decimal under
 * 10 s, whole seconds above), the event `status=sent|deferred|bounced`, as a value; and,
 * when the line is written, the mxscreen_deliveries_total count by status and nexthop.
 * Leaves to others: the outcome itself (delivery/, delivery-outcome.ts), when the line is
 * written (queue-manager.ts).
 * Bugs: no `delays=a/b/c/d` breakdown, no `orig_to=`.
 */
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { RecipientOutcome, RecipientResult } from '../delivery-request.js';
import type { QueueFileHead } from './queue-file.js';

/** One recipient's line of one attempt: pino fields and message, and the nexthop to count it by. */
export interface DeliveryLogLine {
  readonly fields: {
    readonly event: `status=${RecipientOutcome}`;
    readonly queueId: string;
    readonly session: string;
    readonly to: string;
    readonly relay: string;
    /** Since arrival, s. */
    readonly delay: number;
    readonly dsn: string;
    readonly status: RecipientOutcome;
    readonly reply: string;
  };
  readonly message: string;
  /** The formatNexthop label: mxscreen_deliveries_total's nexthop. */
  readonly nexthop: string;
}

/**
 * The line of one recipient's outcome of an attempt of message `head`. `relay` is
 * Postfix's relay= (`none` without a connection), `nexthop` the formatNexthop label,
 * `now` ms since the epoch; the delay is since arrival, in s.
 */
export function deliveryLogLine(head: QueueFileHead, outcome: RecipientResult, relay: string, nexthop: string, now: number): DeliveryLogLine {
  const delay = Math.max(0, (now - head.envelope.arrivalTime) / 1000);
  const delayText = delay < 10 ? delay.toFixed(1) : String(Math.round(delay));
  return {
    fields: {
      event: `status=${outcome.status}`,
      queueId: head.id,
      session: head.envelope.sessionId,
      to: outcome.address,
      relay,
      delay,
      dsn: outcome.dsn,
      status: outcome.status,
      reply: outcome.text,
    },
    message: `${head.id}: to=<${outcome.address}>, relay=${relay}, delay=${delayText}, dsn=${outcome.dsn}, status=${outcome.status} (${outcome.text})`,
    nexthop,
  };
}

/** Counts `line` in mxscreen_deliveries_total and writes it at info level. */
export function logDelivery(deps: { readonly log: Logger; readonly metrics: Metrics }, line: DeliveryLogLine): void {
  deps.metrics.deliveries.inc({ status: line.fields.status, nexthop: line.nexthop });
  deps.log.info(line.fields, line.message);
}

/*
 * delivery-log — the one log line per recipient and attempt (Postfix log_adhoc(): what
 * qmgr(8)/smtp(8) write as `to=<…>, relay=…, delay=…, dsn=…, status=…`).
 *
 * Decides: the line's wording, Postfix's (`QUEUEID: to=<rcpt>, relay=host[ip]:port,
 * delay=1.2, dsn=4.4.1, status=deferred (reply)`), the delay's form (one decimal under
 * 10 s, whole seconds above), the event `status=sent|deferred|bounced`, and the
 * mxscreen_deliveries_total count by status and nexthop.
 * Leaves to others: the outcome itself (smtp-delivery.ts, queue-manager.ts).
 * Bugs: no `delays=a/b/c/d` breakdown, no `orig_to=`.
 */
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { QueueFileHead } from './queue-file.js';
import type { RecipientResult } from '../delivery/smtp-delivery.js';

/**
 * Logs and counts one recipient's outcome of an attempt of message `head`. `relay` is
 * Postfix's relay= (`none` without a connection), `nexthop` the formatNexthop label,
 * `now` ms since the epoch; the delay is since arrival, in s.
 */
export function logDelivery(
  deps: { readonly log: Logger; readonly metrics: Metrics },
  head: QueueFileHead,
  outcome: RecipientResult,
  relay: string,
  nexthop: string,
  now: number,
): void {
  const delay = Math.max(0, (now - head.envelope.arrivalTime) / 1000);
  const delayText = delay < 10 ? delay.toFixed(1) : String(Math.round(delay));
  deps.metrics.deliveries.inc({ status: outcome.status, nexthop });
  deps.log.info(
    {
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
    `${head.id}: to=<${outcome.address}>, relay=${relay}, delay=${delayText}, dsn=${outcome.dsn}, status=${outcome.status} (${outcome.text})`,
  );
}

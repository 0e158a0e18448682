/*
 * received-header — the trace header prepended to every message we queue.
 *
 * Decides: the text of the `Received:` header as Postfix's smtpd writes it (RFC 5321
 * §4.4 time stamp line, RFC 5322 §3.6.7 trace field):
 *   Received: from HELO (NAME [ADDR])
 *   \tby MYHOSTNAME (MAIL_NAME) with ESMTP id QUEUEID
 *   \tfor <RCPT>; DATE
 * The `for` clause only with exactly one recipient (Postfix: more would leak the list);
 * otherwise the `by` line ends with `;` and the date goes on its own line. Protocol is
 * SMTP/ESMTP, with S appended under TLS (RFC 3848). DATE is RFC 5322 §3.3 local time
 * with a numeric zone: `Tue, 3 Mar 2020 10:00:00 +0100`. Leaves to others: cleanup.ts writes it.
 * Bugs: no TLS cipher comment (Postfix smtpd_tls_received_header) and no `(CET)` zone
 * comment after the date; NAME is `unknown` unless the caller knows a verified name.
 */
import { isIPv6 } from 'node:net';

export interface ReceivedInput {
  /** HELO/EHLO argument; undefined when the client never said HELO. */
  readonly helo?: string;
  /** Verified reverse name of the client, or undefined (written as `unknown`). */
  readonly clientName?: string;
  /** Client IP address (IPv4 or IPv6 text). */
  readonly clientAddress: string;
  /** Our host name (myhostname). */
  readonly myhostname: string;
  /** mail_name, in parentheses after myhostname. */
  readonly mailName: string;
  /** True after EHLO (ESMTP), false after HELO (SMTP). */
  readonly esmtp: boolean;
  /** True when the session runs over TLS (ESMTPS). */
  readonly tls: boolean;
  /** Queue id of the message. */
  readonly queueId: string;
  /** Envelope recipients (addresses without angle brackets). */
  readonly recipients: readonly string[];
  /** Arrival time, ms since the epoch. */
  readonly time: number;
  /** Offset of local time from UTC in minutes, east positive (+60 for CET). */
  readonly utcOffsetMinutes: number;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * RFC 5322 §3.3 date-time: `Tue, 3 Mar 2020 10:00:00 +0100`.
 * `time` in ms since the epoch; `utcOffsetMinutes` east of UTC positive.
 */
export function formatRfc5322Date(time: number, utcOffsetMinutes: number): string {
  const local = new Date(time + utcOffsetMinutes * 60_000);
  const sign = utcOffsetMinutes < 0 ? '-' : '+';
  const offset = Math.abs(utcOffsetMinutes);
  const zone = `${sign}${pad2(Math.floor(offset / 60))}${pad2(offset % 60)}`;
  return (
    `${DAYS[local.getUTCDay()]}, ${local.getUTCDate()} ${MONTHS[local.getUTCMonth()]} ${local.getUTCFullYear()} ` +
    `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())} ${zone}`
  );
}

/** The local UTC offset at `time` in minutes, east positive (Postfix writes local time). */
export function localUtcOffsetMinutes(time: number): number {
  return -new Date(time).getTimezoneOffset();
}

/** RFC 5321 §4.1.3 address literal as Postfix writes it: `1.2.3.4` or `IPv6:2001:db8::1`. */
function addressLiteral(address: string): string {
  return isIPv6(address) ? `IPv6:${address}` : address;
}

/**
 * The complete header field, folded as Postfix folds it, ending in CRLF:
 * `Received: from …\r\n\tby …\r\n\tfor <…>; date\r\n`. Pure.
 */
export function formatReceivedHeader(input: ReceivedInput): string {
  const name = input.clientName ?? 'unknown';
  const from = input.helo ?? name;
  const protocol = `${input.esmtp ? 'ESMTP' : 'SMTP'}${input.tls ? 'S' : ''}`;
  const date = formatRfc5322Date(input.time, input.utcOffsetMinutes);
  const by = `by ${input.myhostname} (${input.mailName}) with ${protocol} id ${input.queueId}`;
  const lines = [`Received: from ${from} (${name} [${addressLiteral(input.clientAddress)}])`];
  if (input.recipients.length === 1) {
    lines.push(`\t${by}`, `\tfor <${input.recipients[0]}>; ${date}`);
  } else {
    lines.push(`\t${by};`, `\t${date}`);
  }
  return lines.join('\r\n') + '\r\n';
}

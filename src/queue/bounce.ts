/*
 * bounce — the delivery status notification a sender gets (Postfix bounce(8), RFC 3464).
 *
 * Decides: the DSN message: multipart/report; report-type=delivery-status with a human
 * part in Postfix's words, a message/delivery-status part (per-message fields, then one
 * block per recipient: Final-Recipient, Original-Recipient from ORCPT, Action
 * failed|delayed|relayed, Status, Remote-MTA, Diagnostic-Code, Will-Retry-Until), and the
 * original message (message/rfc822) or only its headers (text/rfc822-headers) when RET=HDRS,
 * when it is larger than bounce_size_limit, and for delay and success notices. Which
 * recipients get a notice (RFC 3461 NOTIFY) is `wantsNotice`. Built with nodemailer's
 * MailComposer. From: MAILER-DAEMON@myhostname; the envelope sender is <> (sender-notice.ts).
 * Leaves to others: when a notice is due (delivery-outcome.ts) and queueing it (sender-notice.ts).
 * Bugs: no double bounce to postmaster for a failed bounce; no notify_classes copies.
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Envelope, QueueRecipient } from './envelope.js';

export const DSN_ACTIONS = ['failed', 'delayed', 'relayed'] as const;
export type DsnAction = (typeof DSN_ACTIONS)[number];

export interface DsnRecipient {
  readonly address: string;
  /** RFC 3461 ORCPT as the queue keeps it (`rfc822;joe@example.com`, decoded): the Original-Recipient field. */
  readonly orcpt?: string | undefined;
  /** RFC 3463 status, e.g. `5.1.1`. */
  readonly status: string;
  /** The reason, as the log shows it (`host[ip] said: 550 … (in reply to RCPT TO command)`). */
  readonly text: string;
}

export interface DsnRequest {
  readonly action: DsnAction;
  /** myhostname: Reporting-MTA and the MAILER-DAEMON address. */
  readonly reportingMta: string;
  readonly queueId: string;
  /** The original message's envelope (sender, arrival, ENVID, RET). */
  readonly envelope: Envelope;
  readonly recipients: readonly DsnRecipient[];
  /** The original message: the whole of it, or at least its header section. */
  readonly original: Buffer;
  /** True when `original` is the whole message and may be returned whole. */
  readonly originalComplete: boolean;
  /** Now, ms since the epoch: Date: header and Message-ID. */
  readonly now: number;
  /** For `delayed`: until when the message is retried, ms since the epoch. */
  readonly retryUntil?: number;
}

/** True when `recipient` asked for a notice of `action` (RFC 3461 §4.1: no NOTIFY = FAILURE,DELAY). */
export function wantsNotice(recipient: QueueRecipient, action: DsnAction): boolean {
  const notify = recipient.notify?.map((value) => value.toUpperCase());
  switch (action) {
    case 'failed':
      return notify === undefined || notify.includes('FAILURE');
    case 'delayed':
      return notify === undefined || notify.includes('DELAY');
    case 'relayed':
      return notify !== undefined && notify.includes('SUCCESS');
    default: {
      const never: never = action;
      throw new Error(`unhandled DSN action ${String(never)}`);
    }
  }
}

/** The DSN message bytes (CRLF lines), ready to be queued with the null sender. */
export async function composeDsn(request: DsnRequest): Promise<Buffer> {
  const headersOnly = request.action !== 'failed' || request.envelope.dsn?.ret === 'HDRS' || !request.originalComplete;
  const returned = headersOnly ? headerSection(request.original) : request.original;
  const composer = new MailComposer({
    from: { name: 'Mail Delivery System', address: `MAILER-DAEMON@${request.reportingMta}` },
    to: request.envelope.sender,
    subject: SUBJECTS[request.action],
    date: new Date(request.now),
    messageId: `<${request.queueId}.${request.now}.${request.action}@${request.reportingMta}>`,
    headers: { 'Auto-Submitted': 'auto-replied' },
    text: humanPart(request).replace(/\n/g, '\r\n'),
    attachments: [
      { contentType: 'message/delivery-status', content: deliveryStatus(request), contentDisposition: 'inline', contentTransferEncoding: '7bit' },
      // Raw, so the returned bytes go out as they are (no encoding, no file name).
      {
        raw: Buffer.concat([
          Buffer.from(`Content-Type: ${headersOnly ? 'text/rfc822-headers' : 'message/rfc822'}\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition: inline\r\n\r\n`),
          returned,
        ]),
      },
    ],
  });
  const root = composer.compile();
  // MailComposer makes the root multipart/mixed; RFC 3462 wants multipart/report.
  root.setHeader('Content-Type', 'multipart/report; report-type=delivery-status');
  return root.build();
}

const SUBJECTS: Readonly<Record<DsnAction, string>> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  relayed: 'Successful Mail Delivery Report',
};

function humanPart(request: DsnRequest): string {
  const intro = `This is the mail system at host ${request.reportingMta}.\n\n`;
  let body: string;
  switch (request.action) {
    case 'failed':
      body =
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\n" +
        'For further assistance, please send mail to postmaster.\n\n' +
        'If you do so, please include this problem report. You can\ndelete your own text from the attached returned message.\n';
      break;
    case 'delayed': {
      const hours = Math.max(0, Math.round((request.now - request.envelope.arrivalTime) / 3_600_000));
      const days = request.retryUntil !== undefined ? Math.max(0, Math.round((request.retryUntil - request.envelope.arrivalTime) / 86_400_000)) : undefined;
      body =
        '####################################################################\n' +
        '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n' +
        '####################################################################\n\n' +
        `Your message could not be delivered for more than ${hours} hour(s).\n` +
        (days !== undefined ? `It will be retried until it is ${days} day(s) old.\n` : '');
      break;
    }
    case 'relayed':
      body =
        'Your message was successfully delivered to the destination(s)\nlisted below. If the message was delivered to mailbox you will\n' +
        'receive no further notifications. Otherwise you may still receive\nnotifications of mail delivery errors from other systems.\n';
      break;
    default: {
      const never: never = request.action;
      throw new Error(`unknown DSN action ${String(never)}`);
    }
  }
  const reasons = request.recipients.map((r) => `<${r.address}>: ${r.text}`).join('\n');
  return `${intro}${body}\n                   The mail system\n\n${reasons}\n`;
}

/** The message/delivery-status body (RFC 3464 §2.2, §2.3). */
function deliveryStatus(request: DsnRequest): string {
  const { envelope } = request;
  const perMessage = [
    `Reporting-MTA: dns; ${request.reportingMta}`,
    `X-Mxscreen-Queue-ID: ${request.queueId}`,
    `X-Mxscreen-Sender: rfc822; ${envelope.sender}`,
    ...(envelope.dsn?.envid ? [`Original-Envelope-Id: ${envelope.dsn.envid}`] : []),
    `Arrival-Date: ${rfc5322Date(envelope.arrivalTime)}`,
  ];
  const blocks = request.recipients.map((recipient) => {
    const remote = /^(\S+)\[[^\]]*\] said: (.*?)(?: \(in reply to [^)]*\))?$/.exec(recipient.text);
    return [
      `Final-Recipient: rfc822; ${recipient.address}`,
      ...(recipient.orcpt ? [`Original-Recipient: ${recipient.orcpt}`] : []),
      `Action: ${request.action}`,
      `Status: ${recipient.status}`,
      ...(remote ? [`Remote-MTA: dns; ${remote[1]}`, `Diagnostic-Code: smtp; ${remote[2]}`] : [`Diagnostic-Code: X-Mxscreen; ${recipient.text}`]),
      ...(request.action === 'delayed' && request.retryUntil !== undefined ? [`Will-Retry-Until: ${rfc5322Date(request.retryUntil)}`] : []),
    ].join('\r\n');
  });
  return `${[perMessage.join('\r\n'), ...blocks].join('\r\n\r\n')}\r\n`;
}

/** The header section of a message: everything up to and including the empty line. */
export function headerSection(message: Buffer): Buffer {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : message.length;
  return message.subarray(0, end);
}

function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

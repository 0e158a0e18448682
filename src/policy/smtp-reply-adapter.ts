/*
 * smtp-reply-adapter — the one place where our SmtpReply becomes what smtp-server sends,
 * and where the policy stage counts the replies it writes.
 *
 * Decides: how a reply `{ code, enhanced, text }` (errors.ts) is handed to smtp-server so
 * that the client reads exactly formatReply(reply), `code enhanced text`. smtp-server
 * writes `responseCode [its own enhanced code] message`; its own enhanced code comes from a
 * fixed table by reply code (554 → 5.6.0, 552 → 5.2.2) and is added only when the server
 * option `hideENHANCEDSTATUSCODES` is false. So the policy stage runs smtp-server with that
 * option left true (SMTPD_SERVER_REPLY_OPTIONS) and gives it errors.ts replyText(), our
 * RFC 3463 code at the head of the text: as a handler callback's error
 * (toSmtpServerError) or written by the session (sendReply). Counts replies in
 * `metrics.smtpReplies` (countReply).
 * Leaves to others: which reply to give (relay-control, recipient-check, smtpd).
 * Bugs: ENHANCEDSTATUSCODES is not advertised in EHLO (smtp-server ties the keyword to its
 * own code table), and replies smtp-server composes itself (250 Accepted, 503, its 501 for
 * a duplicate or valueless parameter; the MAIL/RCPT checks smtpd-connection.ts makes first
 * carry ours) have no enhanced code. Postfix advertises it and always sends one.
 */
import { replyText, type SmtpReply } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';

/**
 * smtp-server options this adapter relies on: smtp-server must not add an enhanced code of
 * its own, or the client would see two (`554 5.6.0 5.7.1 …`).
 */
export const SMTPD_SERVER_REPLY_OPTIONS = { hideENHANCEDSTATUSCODES: true } as const;

/** What smtp-server reads from an error passed to a handler callback (`responseCode`). */
export interface SmtpServerReplyError extends Error {
  responseCode: number;
  /** Our stable code, kept so logs and tests can tell the error apart. */
  code: string;
  /** The reply this error carries, unchanged. */
  reply: SmtpReply;
}

/**
 * Turns a reply into the Error object smtp-server's handler callbacks read:
 * `responseCode` = reply code, `message` = replyText(reply) (enhanced code + text).
 * Never throws. smtp-server reads `responseCode`, not `statusCode`.
 */
export function toSmtpServerError(reply: SmtpReply): SmtpServerReplyError {
  const err = new Error(replyText(reply)) as SmtpServerReplyError;
  err.responseCode = reply.code;
  err.code = 'ERR_SMTP_REPLY';
  err.reply = reply;
  return err;
}

/** The part of smtp-server's connection that writes a reply: `send(code, text, context)`. */
export interface ReplyWriter {
  send(code: number, data?: string | string[] | null, context?: string | false): void;
}

/**
 * Writes `reply` through smtp-server's send() (on a PolicyConnection: counted, and held
 * during the tarpit), context `false`: no enhanced code of smtp-server's own.
 */
export function sendReply(connection: ReplyWriter, reply: SmtpReply): void {
  connection.send(reply.code, replyText(reply), false);
}

/**
 * Counts one reply by its code in `mxscreen_smtp_replies_total{code}`.
 *
 * The policy stage calls it for every reply written to a client: each session reports
 * what smtp-server's send() writes (smtpd-connection.ts onReply: ours and smtp-server's
 * own, EHLO, QUIT, 500/501/503, the idle-timeout 421), smtpd.ts the 421 it writes
 * itself to a handover during shutdown, and smtpd-client-limits.ts its 421 instead of
 * the greeting. The screen stage counts its own replies.
 */
export function countReply(metrics: Metrics, code: number): void {
  metrics.smtpReplies.inc({ code: String(code) });
}

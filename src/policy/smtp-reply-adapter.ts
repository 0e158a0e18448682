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
 * `metrics.smtpReplies` (countReply). The replies smtp-server composes itself for a
 * successful command (MAIL, RCPT, NOOP, RSET, QUIT, STARTTLS), for command order (503)
 * and HELO/EHLO syntax, and its idle timeout are rewritten in smtpd(8)'s words
 * (postfixWording): `250 2.1.0 Ok`, `221 2.0.0 Bye`, `503 5.5.1 Error: need MAIL command`, ….
 * Leaves to others: which reply to give (relay-control, recipient-check, smtpd).
 * ENHANCEDSTATUSCODES is offered in EHLO by smtpd-connection.ts (smtp-server ties the
 * keyword to its own code table, which stays off).
 * Bugs: smtp-server's remaining own replies that postfixWording does not know (its 421 at
 * shutdown, its 501 for a duplicate or valueless parameter: the MAIL/RCPT checks
 * smtpd-connection.ts makes first carry ours) have no enhanced code.
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

/** One reply as smtp-server's send() takes it: code, text (lines), context. */
export interface ServerReply {
  readonly code: number;
  readonly data: string | string[] | null | undefined;
  readonly context: string | false | undefined;
}

/**
 * smtp-server's own success replies and idle-timeout reply in smtpd(8)'s words
 * (Postfix smtpd.c: mail_cmd "2.1.0 Ok", rcpt_cmd "2.1.5 Ok", noop_cmd/rset_cmd "2.0.0 Ok",
 * quit_cmd "2.0.0 Bye", starttls "2.0.0 Ready to start TLS", smtpd_timeout "4.4.2 HOST
 * Error: timeout exceeded"), each with its RFC 3463 code; its 503s for command order
 * ("5.5.1 Error: need MAIL command", "need RCPT command", "nested MAIL command") and its
 * HELO/EHLO syntax 501 as Postfix 3.7 words them (`501 Syntax: HELO hostname`, no enhanced
 * code there). `hostname` is myhostname.
 * Any other reply comes back unchanged; context `false` then stops smtp-server from adding
 * an enhanced code of its own. Matched on smtp-server 3.21.6's exact texts (the version is
 * pinned), so a reply it rewords stays as it is rather than being guessed at.
 */
export function postfixWording(reply: ServerReply, hostname: string): ServerReply {
  const { code, data, context } = reply;
  const reworded = (text: string): ServerReply => ({ code, data: text, context: false });
  if (code === 250 && data === 'Accepted' && context === 'MAIL_FROM_OK') return reworded('2.1.0 Ok');
  if (code === 250 && data === 'Accepted' && context === 'RCPT_TO_OK') return reworded('2.1.5 Ok');
  if (code === 250 && (data === 'OK' || data === 'Flushed') && context === undefined) return reworded('2.0.0 Ok');
  if (code === 221 && data === 'Bye') return reworded('2.0.0 Bye');
  if (code === 220 && data === 'Ready to start TLS') return reworded('2.0.0 Ready to start TLS');
  if (code === 421 && data === 'Timeout - closing connection') return reworded(`4.4.2 ${hostname} Error: timeout exceeded`);
  if (code === 503 && (data === 'Error: need MAIL command' || data === 'Error: need RCPT command' || data === 'Error: nested MAIL command')) return reworded(`5.5.1 ${data}`);
  // Postfix 3.7 answers these two without an enhanced code.
  if (code === 501 && data === 'Error: Syntax: HELO hostname') return reworded('Syntax: HELO hostname');
  if (code === 501 && data === 'Error: syntax: EHLO hostname') return reworded('Syntax: EHLO hostname');
  return reply;
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

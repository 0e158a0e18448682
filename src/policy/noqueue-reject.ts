/*
 * noqueue-reject — the smtpd(8) log line for a command refused before a queue file exists.
 *
 * Decides: the wording, `NOQUEUE: reject: CMD from [ip]:port: 550 5.7.1 text; from=<s>
 * to=<r> proto=ESMTP helo=<h>` (to= only for RCPT), and its structured fields (event
 * `NOQUEUE: reject`, reason, code, from, to); and that a failed deep protocol test
 * (postscreen(8) "after 220" tests) is logged this way, with reason `postscreen <test>`.
 * Leaves to others: the decision to refuse and the reply sent (smtpd.ts, rcpt-decision.ts,
 * the restrictions), the log level of special cases (queue_minfree logs at warn).
 * Bugs: no `NOQUEUE: reject_warning:` form, as warn_if_reject is not implemented (restriction.ts).
 */
import type { SMTPServerSession } from 'smtp-server';
import { formatReply, type SmtpReply } from '../errors.js';
import { heloName, type SessionState } from './smtpd-session.js';

/** What one `NOQUEUE: reject` line names; `to` undefined leaves out ` to=<…>`. */
export interface NoqueueReject {
  /** The SMTP command refused: MAIL, RCPT, DATA, ETRN. */
  readonly command: string;
  /** `[ip]:port` */
  readonly client: string;
  readonly reply: SmtpReply;
  readonly from: string;
  readonly to: string | undefined;
  /** smtp-server's transmissionType: SMTP, ESMTP, ESMTPS… */
  readonly proto: string;
  readonly helo: string;
}

/** The text of the smtpd(8) `NOQUEUE: reject: …` line (Postfix smtpd_check.c log_whatsup wording). */
export function noqueueRejectText(line: NoqueueReject): string {
  return (
    `NOQUEUE: reject: ${line.command} from ${line.client}: ${formatReply(line.reply)}; ` +
    `from=<${line.from}>${line.to !== undefined ? ` to=<${line.to}>` : ''} proto=${line.proto} helo=<${line.helo}>`
  );
}

/**
 * Logs (info) that `command` got `reply` in this session because of `reason` (a
 * restriction name, `postscreen`, `queue_minfree`…); `to` is the RCPT address or undefined.
 */
export function logNoqueueReject(state: SessionState, session: SMTPServerSession, command: string, reply: SmtpReply, reason: string, to: string | undefined): void {
  const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  state.log.info(
    { event: 'NOQUEUE: reject', reason, code: reply.code, from: sender, ...(to !== undefined ? { to } : {}) },
    noqueueRejectText({ command, client: state.client, reply, from: sender, to, proto: session.transmissionType, helo: heloName(state, session) }),
  );
}

/**
 * The deep protocol test failure (postscreen(8) "after 220" tests) of the session's verdict,
 * if any, logged as a NOQUEUE reject of `command`; undefined when no test failed.
 */
export function deepTestFailure(state: SessionState, session: SMTPServerSession, command: string, to: string): SmtpReply | undefined {
  const failure = state.verdict.deepTests?.failure();
  if (failure === undefined) return undefined;
  logNoqueueReject(state, session, command, failure.reply, `postscreen ${failure.test}`, to);
  return failure.reply;
}

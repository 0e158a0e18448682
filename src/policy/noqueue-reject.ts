/*
 * noqueue-reject — the smtpd(8) log line for a command refused before a queue file exists.
 *
 * Decides: the wording, `NOQUEUE: reject: CMD from [ip]:port: 550 5.7.1 text; from=<s>
 * to=<r> proto=ESMTP helo=<h>`, and its structured fields (event `NOQUEUE: reject`, reason,
 * code, from, to); what from= and to= name for each command (refusedEnvelope: MAIL its
 * sender; DATA, a restriction's refusal or a deep test's alike, the transaction's only
 * recipient and none when it has several); and that a failed deep protocol test
 * (postscreen(8) "after 220" tests) is logged this way, with reason `postscreen <test>`.
 * Leaves to others: the decision to refuse and the reply sent (smtpd.ts, rcpt-decision.ts,
 * the restrictions), the log level of special cases (queue_minfree logs at warn).
 * Bugs: no `NOQUEUE: reject_warning:` form, as warn_if_reject is not implemented (restriction.ts).
 * ETRN lines say `from=<>` where Postfix, outside a transaction, leaves from= out.
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
 * The command refused, with what the line's envelope fields come from: MAIL its sender (not
 * in the session's envelope yet), RCPT the recipient refused.
 */
export type RefusedCommand =
  | { readonly name: 'MAIL'; readonly sender: string }
  | { readonly name: 'RCPT'; readonly recipient: string }
  | { readonly name: 'DATA' }
  | { readonly name: 'ETRN' };

/**
 * The `from=<…>` and `to=<…>` of a `NOQUEUE: reject` of `command` (Postfix smtpd_check.c
 * log_whatsup prints state->sender and state->recipient when set); `to` undefined leaves
 * out ` to=<…>`. MAIL: its sender, no recipient yet. RCPT: the transaction's sender and the
 * recipient refused. DATA: the sender and the transaction's first accepted recipient when
 * it is the only one, none when there are several (smtpd_check_data: "logging only one of
 * them would be misleading"). ETRN: outside a transaction, `from=<>` and no recipient.
 */
export function refusedEnvelope(state: SessionState, session: SMTPServerSession, command: RefusedCommand): { readonly from: string; readonly to: string | undefined } {
  const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  switch (command.name) {
    case 'MAIL':
      return { from: command.sender, to: undefined };
    case 'RCPT':
      return { from, to: command.recipient };
    case 'DATA':
      return { from, to: state.transaction.recipients === 1 ? session.envelope.rcptTo[0]?.address : undefined };
    case 'ETRN':
      return { from, to: undefined };
    default: {
      const never: never = command;
      throw new Error(`unhandled refused command ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Logs (info) that `command` got `reply` in this session because of `reason` (a
 * restriction name, `postscreen <test>`, `fast_flush_domains`…); from= and to= as
 * refusedEnvelope says.
 */
export function logNoqueueReject(state: SessionState, session: SMTPServerSession, command: RefusedCommand, reply: SmtpReply, reason: string): void {
  const { from, to } = refusedEnvelope(state, session, command);
  state.log.info(
    { event: 'NOQUEUE: reject', reason, code: reply.code, from, ...(to !== undefined ? { to } : {}) },
    noqueueRejectText({ command: command.name, client: state.client, reply, from, to, proto: session.transmissionType, helo: heloName(state, session) }),
  );
}

/**
 * The deep protocol test failure (postscreen(8) "after 220" tests) of the session's verdict,
 * if any, logged as a NOQUEUE reject of `command` (MAIL or DATA; RCPT decides in
 * rcpt-decision.ts); undefined when no test failed.
 */
export function deepTestFailure(state: SessionState, session: SMTPServerSession, command: RefusedCommand & { readonly name: 'MAIL' | 'DATA' }): SmtpReply | undefined {
  const failure = state.verdict.deepTests?.failure();
  if (failure === undefined) return undefined;
  logNoqueueReject(state, session, command, failure.reply, `postscreen ${failure.test}`);
  return failure.reply;
}

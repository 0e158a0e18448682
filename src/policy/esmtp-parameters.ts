/*
 * esmtp-parameters — which MAIL FROM and RCPT TO parameters smtpd takes, and when an
 * address may be non-ASCII.
 *
 * Decides, for a command whose address already parsed, in Postfix smtpd's order (mail_cmd,
 * rcpt_cmd): each parameter in turn, the first bad one answers: one we do not know, or that
 * belongs to an extension the EHLO reply does not offer, gets `555 5.5.4 Unsupported option:
 * PARAM` (RFC 5321 §4.1.1.11; Postfix's wording, PARAM as the client wrote it). MAIL takes
 * SIZE=digits (else `501 5.5.4 Bad message size syntax`), BODY=7BIT or BODY=8BITMIME with
 * 8BITMIME, SMTPUTF8 (no value) with SMTPUTF8, RET= and ENVID= with DSN; RCPT takes NOTIFY=
 * and ORCPT= with DSN. Then MAIL's SIZE above message_size_limit gets `552 5.3.4 Message
 * size exceeds fixed limit` (RFC 1870 §6.1), and an address with non-ASCII characters in a
 * transaction without SMTPUTF8 gets `553 5.6.7 Must declare SMTPUTF8 to send unicode
 * address` (RFC 6531 §3.4; Postfix with strict_smtputf8 = yes). The address is judged as
 * the client wrote it: smtp-server turns an `xn--` domain into Unicode, which is no reason
 * to refuse. None of these replies is logged, as Postfix logs none of them.
 * Leaves to others: the line's bytes (command-line.ts), the address syntax, duplicate
 * parameters, the values of RET/ENVID/NOTIFY/ORCPT and what the parameters do (smtp-server),
 * calling this at the right moment (smtpd-connection.ts).
 * Bugs: with DSN not offered, Postfix answers RET/ENVID/NOTIFY/ORCPT with `501 5.7.1 DSN
 * support is disabled`; we answer 555 5.5.4 like any parameter of an extension not offered.
 * Postfix ≥ 3.0 refuses a non-ASCII domain without SMTPUTF8 as bad address syntax (501);
 * here any non-ASCII address gets the 553.
 */
import type { SmtpReply } from '../errors.js';

/** What the EHLO reply offers that MAIL and RCPT parameters depend on. */
export interface EsmtpOffer {
  /** 8BITMIME (RFC 6152): BODY= */
  readonly eightBitMime: boolean;
  /** SMTPUTF8 (RFC 6531) */
  readonly smtputf8: boolean;
  /** DSN (RFC 3461): RET=, ENVID= on MAIL; NOTIFY=, ORCPT= on RCPT */
  readonly dsn: boolean;
}

/** A MAIL FROM / RCPT TO line split as smtp-server splits it: the `<address>` token and the parameters after it. */
export interface AddressCommand {
  /** The path as written, brackets included: `<jöe@example.com>`. */
  readonly path: string;
  readonly parameters: readonly string[];
}

/** Splits `MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME` after its first colon, at white space (smtp-server's _parseAddressCommand). */
export function splitAddressCommand(line: string): AddressCommand {
  const colon = line.indexOf(':');
  const words = (colon < 0 ? '' : line.slice(colon + 1)).trim().split(/\s+/);
  return { path: words[0] ?? '', parameters: words.slice(1) };
}

const MESSAGE_TOO_BIG: SmtpReply = { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed limit' };
const BAD_SIZE: SmtpReply = { code: 501, enhanced: '5.5.4', text: 'Bad message size syntax' };
const MUST_DECLARE_SMTPUTF8: SmtpReply = { code: 553, enhanced: '5.6.7', text: 'Must declare SMTPUTF8 to send unicode address' };

function unsupported(parameter: string): SmtpReply {
  // The line is valid UTF-8 without CR (command-line.ts); other control characters are not echoed.
  return { code: 555, enhanced: '5.5.4', text: `Unsupported option: ${parameter.replace(/[\x00-\x1f\x7f]/g, '?')}` };
}

function isUnicode(path: string): boolean {
  return /[^\x00-\x7f]/.test(path);
}

/**
 * The refusal of a MAIL FROM with `command` (its address parsed), or undefined to go on.
 * `sizeLimit` is message_size_limit in bytes, 0 for none. Source: Postfix smtpd.c mail_cmd.
 */
export function mailFromFault(command: AddressCommand, offer: EsmtpOffer, sizeLimit: number): SmtpReply | undefined {
  let smtputf8 = false;
  let size = 0;
  for (const parameter of command.parameters) {
    const upper = parameter.toUpperCase();
    if ((upper === 'BODY=8BITMIME' || upper === 'BODY=7BIT') && offer.eightBitMime) continue;
    if (upper === 'SMTPUTF8' && offer.smtputf8) {
      smtputf8 = true;
    } else if (upper.startsWith('SIZE=')) {
      const value = parameter.slice('SIZE='.length);
      if (!/^\d+$/.test(value)) return BAD_SIZE;
      size = Number(value);
    } else if (!((upper.startsWith('RET=') || upper.startsWith('ENVID=')) && offer.dsn)) {
      return unsupported(parameter);
    }
  }
  if (sizeLimit > 0 && size > sizeLimit) return MESSAGE_TOO_BIG;
  if (isUnicode(command.path) && !smtputf8) return MUST_DECLARE_SMTPUTF8;
  return undefined;
}

/**
 * The refusal of a RCPT TO with `command` (its address parsed) in a transaction whose MAIL
 * FROM did (`smtputf8` true) or did not declare SMTPUTF8, or undefined to go on.
 * Source: Postfix smtpd.c rcpt_cmd.
 */
export function rcptToFault(command: AddressCommand, offer: EsmtpOffer, smtputf8: boolean): SmtpReply | undefined {
  for (const parameter of command.parameters) {
    const upper = parameter.toUpperCase();
    if (!((upper.startsWith('NOTIFY=') || upper.startsWith('ORCPT=')) && offer.dsn)) return unsupported(parameter);
  }
  if (isUnicode(command.path) && !smtputf8) return MUST_DECLARE_SMTPUTF8;
  return undefined;
}

/*
 * esmtp-parameters — which MAIL FROM and RCPT TO parameters smtpd takes, and when an
 * address may be non-ASCII. The one place for the rules of ESMTP parameters.
 *
 * Decides, for a command whose address already parsed, in Postfix smtpd's order (mail_cmd,
 * rcpt_cmd): each parameter in turn, the first bad one answers: one we do not know gets
 * `555 5.5.4 Unsupported option: PARAM` (RFC 5321 §4.1.1.11; Postfix's wording, PARAM as
 * the client wrote it), and so does BODY= without 8BITMIME and SMTPUTF8 without SMTPUTF8 in
 * the EHLO reply. MAIL takes SIZE=digits (else `501 5.5.4 Bad message size syntax`),
 * BODY=7BIT or BODY=8BITMIME, SMTPUTF8 (no value), and with DSN (RFC 3461) RET=FULL|HDRS
 * once (else `501 5.5.4 Bad RET parameter syntax`) and ENVID=xtext once whose value is
 * printable ASCII (§4.4; else `501 5.5.4 Bad ENVID parameter syntax`). RCPT takes, with
 * DSN, NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY, once (§4.1; else `501 5.5.4
 * Error: Bad NOTIFY parameter syntax`) and ORCPT=addr-type;xtext once, with an addr-type
 * and a printable ASCII address (§4.2; else `501 5.5.4 Error: Bad ORCPT parameter
 * syntax`). Without DSN offered those four get Postfix's `501 5.7.1 DSN support is
 * disabled`. Keywords and NOTIFY/RET values in any case. Then MAIL's SIZE above
 * message_size_limit gets `552 5.3.4 Message size exceeds fixed limit` (RFC 1870 §6.1), and
 * an address with non-ASCII characters in a transaction without SMTPUTF8 gets `553 5.6.7
 * Must declare SMTPUTF8 to send unicode address` (RFC 6531 §3.4; Postfix with
 * strict_smtputf8 = yes). The address is judged as the client wrote it: smtp-server turns an
 * `xn--` domain into Unicode, which is no reason to refuse. None of these replies is logged,
 * as Postfix logs none of them. What passes here smtp-server also takes, and it decodes the
 * DSN values the same way (xtext.ts): end-of-message.ts reads them from its envelope.
 * Leaves to others: the line's bytes (command-line.ts), the address syntax, duplicates of
 * SIZE/BODY/SMTPUTF8 (smtp-server), what the parameters do (end-of-message.ts, queue/,
 * delivery/), calling this at the right moment (smtpd-connection.ts).
 * Bugs: Postfix ≥ 3.0 refuses a non-ASCII domain without SMTPUTF8 as bad address syntax
 * (501); here any non-ASCII address gets the 553. The xtext is RFC 3461's, stricter than
 * Postfix's (xtext.ts); ENVID and ORCPT lengths (100 and 500 characters) are not checked,
 * as Postfix does not check them.
 */
import type { SmtpReply } from '../errors.js';
import { decodeXtext } from '../delivery/xtext.js';

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
const BAD_RET: SmtpReply = { code: 501, enhanced: '5.5.4', text: 'Bad RET parameter syntax' };
const BAD_ENVID: SmtpReply = { code: 501, enhanced: '5.5.4', text: 'Bad ENVID parameter syntax' };
const BAD_NOTIFY: SmtpReply = { code: 501, enhanced: '5.5.4', text: 'Error: Bad NOTIFY parameter syntax' };
const BAD_ORCPT: SmtpReply = { code: 501, enhanced: '5.5.4', text: 'Error: Bad ORCPT parameter syntax' };
const DSN_DISABLED: SmtpReply = { code: 501, enhanced: '5.7.1', text: 'DSN support is disabled' };

function unsupported(parameter: string): SmtpReply {
  // The line is valid UTF-8 without CR (command-line.ts); other control characters are not echoed.
  return { code: 555, enhanced: '5.5.4', text: `Unsupported option: ${parameter.replace(/[\x00-\x1f\x7f]/g, '?')}` };
}

function isUnicode(path: string): boolean {
  return /[^\x00-\x7f]/.test(path);
}

/** Printable US-ASCII and not empty (RFC 3461 §4.2, §4.4; Postfix allprint()). */
function isPrintable(value: string | undefined): value is string {
  return value !== undefined && /^[\x20-\x7e]+$/.test(value);
}

/** RFC 3461 §4.1 NOTIFY value, any case: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY. */
function isNotifyValue(value: string): boolean {
  const items = value.toUpperCase().split(',');
  if (items.length === 1 && items[0] === 'NEVER') return true;
  return items.every((item) => item === 'SUCCESS' || item === 'FAILURE' || item === 'DELAY');
}

/**
 * RFC 3461 §4.2 ORCPT value `addr-type;xtext`: an addr-type (an atom; "+" and "=" are left
 * out so that smtp-server's decoding of the whole value keeps it) and an xtext address
 * whose value is printable ASCII.
 */
function isOrcptValue(value: string): boolean {
  const semicolon = value.indexOf(';');
  if (semicolon <= 0 || !/^[A-Za-z0-9!#$%&'*/?^_`{|}~-]+$/.test(value.slice(0, semicolon))) return false;
  return isPrintable(decodeXtext(value.slice(semicolon + 1)));
}

/** RFC 3461 §4.4 ENVID value: xtext whose value is printable ASCII. */
function isEnvidValue(value: string): boolean {
  return isPrintable(decodeXtext(value));
}

/** The DSN parameters (RFC 3461 §4) of MAIL (`mail`) or RCPT, by keyword with its `=`. */
const DSN_KEYWORDS = {
  mail: { 'RET=': { valid: (value: string) => /^(FULL|HDRS)$/i.test(value), bad: BAD_RET }, 'ENVID=': { valid: isEnvidValue, bad: BAD_ENVID } },
  rcpt: { 'NOTIFY=': { valid: isNotifyValue, bad: BAD_NOTIFY }, 'ORCPT=': { valid: isOrcptValue, bad: BAD_ORCPT } },
} as const;

/**
 * When `parameter` is a DSN parameter of `command`: its refusal, or null when it is good
 * and not in `seen` (which it joins). undefined when it is not a DSN parameter.
 */
function dsnParameterFault(command: keyof typeof DSN_KEYWORDS, parameter: string, offer: EsmtpOffer, seen: Set<string>): SmtpReply | null | undefined {
  const upper = parameter.toUpperCase();
  for (const [keyword, rule] of Object.entries(DSN_KEYWORDS[command])) {
    if (!upper.startsWith(keyword)) continue;
    if (!offer.dsn) return DSN_DISABLED;
    if (seen.has(keyword) || !rule.valid(parameter.slice(keyword.length))) return rule.bad;
    seen.add(keyword);
    return null;
  }
  return undefined;
}

/**
 * The refusal of a MAIL FROM with `command` (its address parsed), or undefined to go on.
 * `sizeLimit` is message_size_limit in bytes, 0 for none. Source: Postfix smtpd.c mail_cmd.
 */
export function mailFromFault(command: AddressCommand, offer: EsmtpOffer, sizeLimit: number): SmtpReply | undefined {
  let smtputf8 = false;
  let size = 0;
  const seen = new Set<string>();
  for (const parameter of command.parameters) {
    const upper = parameter.toUpperCase();
    if ((upper === 'BODY=8BITMIME' || upper === 'BODY=7BIT') && offer.eightBitMime) continue;
    if (upper === 'SMTPUTF8' && offer.smtputf8) {
      smtputf8 = true;
    } else if (upper.startsWith('SIZE=')) {
      const value = parameter.slice('SIZE='.length);
      if (!/^\d+$/.test(value)) return BAD_SIZE;
      size = Number(value);
    } else {
      const dsn = dsnParameterFault('mail', parameter, offer, seen);
      if (dsn === undefined) return unsupported(parameter);
      if (dsn) return dsn;
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
  const seen = new Set<string>();
  for (const parameter of command.parameters) {
    const dsn = dsnParameterFault('rcpt', parameter, offer, seen);
    if (dsn === undefined) return unsupported(parameter);
    if (dsn) return dsn;
  }
  if (isUnicode(command.path) && !smtputf8) return MUST_DECLARE_SMTPUTF8;
  return undefined;
}

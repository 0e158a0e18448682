/*
 * command-line — whether the bytes of one SMTP command line may be parsed at all.
 *
 * Decides: a command line that is not valid UTF-8 gets `500 5.5.2 Error: bad UTF-8 syntax`
 * (Postfix smtpd with smtputf8_enable = yes checks every line before it looks at the
 * command; we advertise SMTPUTF8), and one with a bare CR gets `501 5.5.2 Error: bare <CR>
 * received` (RFC 5321 §2.3.8: CR only as part of CRLF). The check reads the raw bytes,
 * because smtp-server decodes the line as UTF-8 (invalid bytes become U+FFFD, which a
 * client may also send as valid UTF-8) and splits parameters on any white space, CR too.
 * Neither reply is logged, as Postfix logs neither; both count as errors (smtpd-connection).
 * Leaves to others: the line terminator (smtp-server's stream takes CRLF or a bare LF off),
 * what the command means (smtpd-connection.ts, esmtp-parameters.ts, smtp-server).
 * Bugs: Postfix's tokenizer treats a bare CR as white space and so accepts it; refusing it
 * is ours (RFC 5321 §2.3.8), worded after Postfix 3.9's "bare <LF> received".
 */
import { isUtf8 } from 'node:buffer';
import type { SmtpReply } from '../errors.js';

const BAD_UTF8: SmtpReply = { code: 500, enhanced: '5.5.2', text: 'Error: bad UTF-8 syntax' };
const BARE_CR: SmtpReply = { code: 501, enhanced: '5.5.2', text: 'Error: bare <CR> received' };
const CR = 0x0d;

/**
 * The refusal of command `line` (its bytes without the CRLF or LF that ended it), or
 * undefined when it may be parsed: invalid UTF-8 (RFC 3629) first, as Postfix checks that
 * before anything else, then a CR anywhere in the line.
 */
export function commandLineFault(line: Uint8Array): SmtpReply | undefined {
  if (!isUtf8(line)) return BAD_UTF8;
  if (line.includes(CR)) return BARE_CR;
  return undefined;
}

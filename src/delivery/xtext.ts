/*
 * xtext — the encoding of the DSN parameters ENVID and ORCPT on the SMTP wire (RFC 3461 §4).
 *
 * Decides: what is xtext (`xchar`: "!" to "~" except "+" and "="; `hexchar`: "+" and two
 * UPPER CASE hex digits, as the RFC's grammar says), how it decodes (bytes, one character
 * each), and how a decoded value is encoded again for the nexthop (every byte of its UTF-8
 * outside xchar as `+XX`). The queue keeps values decoded (envelope.ts).
 * Leaves to others: which decoded values are acceptable (esmtp-parameters.ts), which
 * parameters are sent (smtp-delivery.ts).
 * Bugs: Postfix's xtext_unquote() also takes lower case hex digits and a raw "="; here they
 * make the value bad syntax (501). No RFC 6533 utf-8-addr-xtext (`\x{…}`).
 */

/** The value of xtext `text` (RFC 3461 §4), each `+XX` one character U+0000…U+00FF; undefined when `text` is not xtext. */
export function decodeXtext(text: string): string | undefined {
  if (!/^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/.test(text)) return undefined;
  return text.replace(/\+([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** `value` as xtext (RFC 3461 §4): its UTF-8 bytes outside "!"…"~", and "+" and "=", as `+XX`. */
export function encodeXtext(value: string): string {
  let text = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    text += byte > 0x20 && byte < 0x7f && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return text;
}

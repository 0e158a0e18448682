/*
 * header-field — what a header line is (RFC 5322 §2.2, §3.6.8).
 *
 * Decides: a header field starts with a field name of printable US-ASCII characters
 * other than the colon (33–57, 59–126), then `:`. Used wherever a line must be told to be
 * a header: a PREPEND action's text (header_checks(5), access(5)) and postscreen's
 * non-SMTP command test, which refuses a header line sent as a command.
 * Leaves to others: unfolding, decoding and matching headers (policy/content-inspection.ts).
 */

/** True when `text` begins with a header field name and its colon (`Subject:`, `X-Foo:bar`): Postfix is_header(). */
export function isHeaderLine(text: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+:/.test(text);
}

/*
 * errors — the one error base of mxscreen, with stable codes.
 *
 * Decides: the shape of every error the code throws on purpose. `MxError` carries a
 * stable `code` (tests assert it, never the message text); `ConfigError` carries every
 * `file:line: message` found while loading configuration. Also the SMTP reply value
 * `{ code, enhanced, text }` (RFC 5321 §4.2, RFC 3463 enhanced status codes) and its one
 * wire format (formatReply, replyText).
 * Leaves to others: handing a reply to smtp-server (policy/smtp-reply-adapter.ts) and logging.
 */

/** Stable error codes. Add a code here before throwing it. */
export const ERROR_CODES = [
  'ERR_CONFIG',
  'ERR_SMTP_REPLY',
  'ERR_QUEUE_CORRUPT',
  'ERR_QUEUE_IO',
  'ERR_DNS',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base of every deliberate error: a stable `code` plus a human message. */
export class MxError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An SMTP reply: three-digit `code` (RFC 5321 §4.2), `enhanced` status code
 * `class.subject.detail` (RFC 3463; empty string for replies that carry none, such as
 * the 220 greeting), and `text` without code prefixes.
 */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

/** Formats a reply as it goes on the wire, without CRLF: `550 5.7.1 text`. */
export function formatReply(reply: SmtpReply): string {
  return `${reply.code} ${replyText(reply)}`;
}

/**
 * What follows the code on the wire: `5.7.1 text`, or `text` for a reply without an
 * enhanced code (RFC 3463 §2: the enhanced code precedes the text).
 */
export function replyText(reply: SmtpReply): string {
  return reply.enhanced ? `${reply.enhanced} ${reply.text}` : reply.text;
}

/**
 * True when `error` or an error in its `cause` chain carries errno `code` (ENOSPC,
 * ENOENT): an MxError ERR_QUEUE_IO wraps the file system error that caused it. Bounded
 * walk (8 levels).
 */
export function hasErrno(error: unknown, code: string): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth += 1) {
    if ((current as { code?: unknown }).code === code) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Where a configuration problem was found: `file:line`. Line 0 means "the file itself". */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** Formats a problem as check-config prints it: `file:line: message`. */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

/** One or more configuration problems; start-up stops, a reload keeps the last good config. */
export class ConfigError extends MxError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super('ERR_CONFIG', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/*
 * screen-verdict — what the screen stage tells the policy stage about a client.
 *
 * Decides: the typed `ScreenVerdict` handed over with the socket (README "Design": the
 * screen → policy seam is a socket plus a verdict). It lives beside both stages, as
 * delivery-request.ts does for queue → delivery, so policy/ imports nothing from screen/. An `enforce` verdict means a
 * postscreen test failed with action enforce: the policy stage lets the session go on
 * and answers every RCPT TO with `reply`, logging helo/sender/recipient (postscreen(8),
 * "enforce").
 * Leaves to others: how the verdict was reached (screen/screener.ts) and how it is
 * applied (policy/smtpd.ts).
 */
import type { SmtpReply } from './errors.js';

/**
 * postscreen tests, in the order postscreen(8) runs them: before the greeting (access,
 * pregreet, dnsbl), then on the live session (deep-tests.ts); `command_limit` stands for
 * the command count, time and length limits of that phase.
 */
export const SCREEN_TESTS = ['access', 'pregreet', 'dnsbl', 'pipelining', 'non_smtp_command', 'bare_newline', 'command_limit'] as const;
export type ScreenTest = (typeof SCREEN_TESTS)[number];

export type ScreenOutcome =
  /** postscreen_access_list permitted the client: no tests, not cached. */
  | 'allowlisted'
  /** every test passed now (logged PASS NEW, result cached). */
  | 'pass-new'
  /** every test was still valid in the verdict cache (logged PASS OLD). */
  | 'pass-old'
  /** a test failed with action enforce: every RCPT gets `enforce.reply`. */
  | 'enforce'
  /** a test failed with action ignore: logged, then treated as passed (not cached). */
  | 'ignored-failure';

export interface ScreenVerdict {
  /** Session id shared by every log line of this connection. */
  readonly sessionId: string;
  /** The client as screened: address (IPv4 dotted or IPv6) and port. */
  readonly client: { readonly address: string; readonly port: number };
  /** The local end the client connected to. */
  readonly local: { readonly address: string; readonly port: number };
  readonly outcome: ScreenOutcome;
  /** Set when outcome is 'enforce': the failed test and the reply for every RCPT. */
  readonly enforce?: { readonly test: ScreenTest; readonly reply: SmtpReply };
  /** DNSBL rank computed for this connection; undefined when no query ran (cache, allowlist). */
  readonly dnsblRank?: number;
  /** When the screener accepted the TCP connection, ms since the epoch. */
  readonly connectedAt: number;
  /**
   * The deep protocol tests (pipelining, non-SMTP command, bare newline) that go on
   * watching the live session after the handover; absent when none is enabled or the
   * verdict cache says they are still valid. See `DeepTestMonitor`.
   */
  readonly deepTests?: DeepTestMonitor;
}

/**
 * Live results of the "after 220" tests that postscreen(8) runs in its own dummy SMTP
 * engine, here run on the real session (screen/ owns the monitor, policy/ asks it).
 * The policy stage asks `failure()` at every MAIL FROM, RCPT TO and at DATA (before it
 * sends 354) and, when it returns a failure, answers with its `reply` and logs
 * `NOQUEUE: reject`, so no message from a failing client is queued. A `drop` failure
 * (or a command limit) closes the connection from the monitor itself (521/421); commands
 * the client had already pipelined behind it may still reach the policy stage, so
 * failure() reports it too and they are refused.
 */
export interface DeepTestMonitor {
  /** The first failure whose action is enforce, or the drop/limit that is closing the connection; undefined while the client is clean. */
  failure(): { readonly test: ScreenTest; readonly reply: SmtpReply } | undefined;
}

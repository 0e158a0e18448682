/*
 * verdict — what the screen stage tells the policy stage about a client.
 *
 * Decides: the typed `ScreenVerdict` handed over with the socket (DESIGN.md: the
 * screen → policy seam is a socket plus a verdict). An `enforce` verdict means a
 * postscreen test failed with action enforce: the policy stage lets the session go on
 * and answers every RCPT TO with `reply`, logging helo/sender/recipient (postscreen(8),
 * "enforce").
 * Leaves to others: how the verdict was reached (screener.ts) and how it is applied
 * (policy/smtpd.ts).
 */
import type { SmtpReply } from '../errors.js';

/** postscreen tests, in the order postscreen(8) runs them. */
export const SCREEN_TESTS = ['access', 'pregreet', 'dnsbl'] as const;
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
}

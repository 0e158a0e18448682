/*
 * screen-decision — what a test before the greeting decided, as a value, and what the
 * session's test states add up to.
 *
 * Decides (postscreen.c, postscreen_early.c, postscreen_tests.c): a test's result is a
 * `ScreenDecision` { test, outcome, action, reply }. A pass carries how long it is valid
 * (the verdict cache expiry). A failure carries the test's postscreen_*_action and the reply
 * of that action: drop 521, enforce 550, with the access list's `5.3.2 Service currently
 * unavailable`, the pregreet test's `5.5.1 Protocol error`, the DNSBL test's `5.7.1 Service
 * unavailable; client [ip] blocked using site`. Each test of a session has one state, todo
 * | pass | fail (postscreen_tests.c: a flag set and an expiry stamp per test). From the
 * states: the failure the verdict carries (the last one under enforce:
 * PSC_ENFORCE_SESSION_STATE), whether any test failed, the passes to cache (none when a
 * failure is enforced: psc_conclude) and the outcome of the handover.
 * Leaves to others: running the tests (access-list.ts, early-tests.ts) and applying a
 * decision (screener.ts: the one switch over drop / enforce / ignore).
 */
import type { Action } from '../config/value.js';
import type { SmtpReply } from '../errors.js';
import { CACHED_TESTS, type CachedTest } from './verdict-cache.js';
import type { ScreenOutcome } from '../screen-verdict.js';

/** The tests decided before the greeting, in the order they run (and fail). */
export const DECIDED_TESTS = ['access', 'pregreet', 'dnsbl'] as const;
export type DecidedTest = (typeof DECIDED_TESTS)[number];

export type ScreenDecision =
  /**
   * The test passed. `until`: expiry of the pass, ms since the epoch; undefined for the
   * access list, which is not cached. `everyTest`: a DNSWL rank reached
   * postscreen_dnsbl_allowlist_threshold, so every test passes until `until`.
   */
  | { readonly test: DecidedTest; readonly outcome: 'pass'; readonly until: number | undefined; readonly everyTest?: true }
  | FailDecision;

/**
 * The test failed. `reply`: what drop sends before it closes (521), or what enforce gives
 * every RCPT TO (550); under ignore the 550, never sent.
 */
export interface FailDecision {
  readonly test: DecidedTest;
  readonly outcome: 'fail';
  readonly action: Action;
  readonly reply: SmtpReply;
}

/** A test's state in one session. */
export type TestState =
  | { readonly status: 'todo' }
  /** `until`: expiry of the pass, ms since the epoch; undefined: not cached. */
  | { readonly status: 'pass'; readonly until: number | undefined }
  | { readonly status: 'fail'; readonly decision: FailDecision };

/** The session's tests: the access list and the cached tests (deep ones only by the DNSWL rule); absent until due or decided. */
export type TestStates = { -readonly [T in 'access' | CachedTest]?: TestState };

/** A failure's two replies: drop's 521 and enforce's 550 (postscreen.c, postscreen_early.c). */
interface FailureReplies {
  readonly drop: SmtpReply;
  readonly enforce: SmtpReply;
}

/** The replies of the access list and pregreet failures. */
export const SCREEN_REPLIES = {
  access: {
    drop: { code: 521, enhanced: '5.3.2', text: 'Service currently unavailable' },
    enforce: { code: 550, enhanced: '5.3.2', text: 'Service currently unavailable' },
  },
  pregreet: {
    drop: { code: 521, enhanced: '5.5.1', text: 'Protocol error' },
    enforce: { code: 550, enhanced: '5.5.1', text: 'Protocol error' },
  },
} as const satisfies Record<string, FailureReplies>;

/** The DNSBL reply: `521|550 5.7.1 Service unavailable; client [ip] blocked using site`. */
export function dnsblReply(code: 521 | 550, address: string, site: string): SmtpReply {
  return { code, enhanced: '5.7.1', text: `Service unavailable; client [${address}] blocked using ${site}` };
}

/** `test` failed under `action`: the decision, with the reply of that action. */
export function failure(test: DecidedTest, action: Action, replies: FailureReplies): FailDecision {
  return { test, outcome: 'fail', action, reply: action === 'drop' ? replies.drop : replies.enforce };
}

/** The DNSBL test failed for the client `address`, listed by `site` (its display name). */
export function dnsblFailure(action: Action, address: string, site: string): FailDecision {
  return failure('dnsbl', action, { drop: dnsblReply(521, address, site), enforce: dnsblReply(550, address, site) });
}

/** The failure the verdict carries: the last under enforce, in test order (the order in which they fail). */
export function enforcedFailure(tests: TestStates): FailDecision | undefined {
  let enforced: FailDecision | undefined;
  for (const test of DECIDED_TESTS) {
    const state = tests[test];
    if (state?.status === 'fail' && state.decision.action === 'enforce') enforced = state.decision;
  }
  return enforced;
}

/** True when some test failed in this session (an ignored access list failure does not count: it is un-failed). */
export function anyFailure(tests: TestStates): boolean {
  return Object.values(tests).some((state) => state.status === 'fail');
}

/** The passes of this session to cache, by test; none when a failure is enforced (psc_conclude). */
export function passesToCache(tests: TestStates): Partial<Record<CachedTest, number>> {
  const passes: { -readonly [T in CachedTest]?: number } = {};
  if (enforcedFailure(tests)) return passes;
  for (const test of CACHED_TESTS) {
    const state = tests[test];
    if (state?.status === 'pass' && state.until !== undefined) passes[test] = state.until;
  }
  return passes;
}

/** The outcome of a session that passed the tests before the greeting, or failed one of them without drop. */
export function screenOutcome(tests: TestStates, cached: boolean): Exclude<ScreenOutcome, 'allowlisted'> {
  if (enforcedFailure(tests)) return 'enforce';
  if (anyFailure(tests)) return 'ignored-failure';
  return cached ? 'pass-old' : 'pass-new';
}

/**
 * The states after `decision` passed (`tests` changed in place): its test passes; with
 * `everyTest`, also pregreet, dnsbl and `deepTests`, each until the later of its own pass in
 * this session and `until` (postscreen_dnsbl_allowlist_threshold).
 */
export function recordPass(tests: TestStates, decision: Extract<ScreenDecision, { outcome: 'pass' }>, deepTests: Iterable<CachedTest>): void {
  if (!decision.everyTest) {
    tests[decision.test] = { status: 'pass', until: decision.until };
    return;
  }
  for (const test of ['pregreet', 'dnsbl', ...deepTests] as const) {
    const state = tests[test];
    const own = state?.status === 'pass' ? (state.until ?? 0) : 0;
    tests[test] = { status: 'pass', until: Math.max(own, decision.until ?? 0) };
  }
}

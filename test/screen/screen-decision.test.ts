// The screen's decisions as values (screen-decision.ts): the reply of each failure under
// each action, and what a session's test states add up to (the enforced failure, the
// passes to cache, the outcome), as tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../../src/config/value.js';
import { SCREEN_REPLIES, dnsblFailure, enforcedFailure, failure, passesToCache, recordPass, screenOutcome, type TestStates } from '../../src/screen/screen-decision.js';

test('a failure carries the reply of its action: drop 521, enforce 550 (and ignore the 550, never sent)', () => {
  const cases: [ReturnType<typeof failure>, number, string, string][] = [
    [failure('access', 'drop', SCREEN_REPLIES.access), 521, '5.3.2', 'Service currently unavailable'],
    [failure('access', 'enforce', SCREEN_REPLIES.access), 550, '5.3.2', 'Service currently unavailable'],
    [failure('pregreet', 'drop', SCREEN_REPLIES.pregreet), 521, '5.5.1', 'Protocol error'],
    [failure('pregreet', 'enforce', SCREEN_REPLIES.pregreet), 550, '5.5.1', 'Protocol error'],
    [failure('pregreet', 'ignore', SCREEN_REPLIES.pregreet), 550, '5.5.1', 'Protocol error'],
    [dnsblFailure('drop', '192.0.2.1', 'zen.dnsbl.test'), 521, '5.7.1', 'Service unavailable; client [192.0.2.1] blocked using zen.dnsbl.test'],
    [dnsblFailure('enforce', '192.0.2.1', 'zen.dnsbl.test'), 550, '5.7.1', 'Service unavailable; client [192.0.2.1] blocked using zen.dnsbl.test'],
  ];
  for (const [decision, code, enhanced, text] of cases) {
    assert.equal(decision.outcome, 'fail');
    assert.deepEqual(decision.reply, { code, enhanced, text }, `${decision.test} ${decision.action}`);
  }
});

const fail = (test: 'access' | 'pregreet' | 'dnsbl', action: Action) => ({ status: 'fail', decision: failure(test, action, SCREEN_REPLIES.pregreet) }) as const;

test('the states add up to the enforced failure (the last under enforce), the passes to cache and the outcome', () => {
  const cases: { name: string; tests: TestStates; cached: boolean; enforced: string | undefined; passes: object; outcome: string }[] = [
    { name: 'nothing due, cached', tests: {}, cached: true, enforced: undefined, passes: {}, outcome: 'pass-old' },
    { name: 'both passed', tests: { pregreet: { status: 'pass', until: 10 }, dnsbl: { status: 'pass', until: 20 } }, cached: false, enforced: undefined, passes: { pregreet: 10, dnsbl: 20 }, outcome: 'pass-new' },
    { name: 'access list dunno or un-failed: not cached', tests: { access: { status: 'pass', until: undefined }, pregreet: { status: 'pass', until: 10 } }, cached: false, enforced: undefined, passes: { pregreet: 10 }, outcome: 'pass-new' },
    { name: 'pregreet ignored: the DNSBL pass is still cached', tests: { pregreet: fail('pregreet', 'ignore'), dnsbl: { status: 'pass', until: 20 } }, cached: true, enforced: undefined, passes: { dnsbl: 20 }, outcome: 'ignored-failure' },
    { name: 'an enforce failure voids the passes', tests: { pregreet: fail('pregreet', 'enforce'), dnsbl: { status: 'pass', until: 20 } }, cached: false, enforced: 'pregreet', passes: {}, outcome: 'enforce' },
    { name: 'the last enforce failure wins', tests: { access: fail('access', 'enforce'), pregreet: fail('pregreet', 'ignore'), dnsbl: fail('dnsbl', 'enforce') }, cached: false, enforced: 'dnsbl', passes: {}, outcome: 'enforce' },
    { name: 'enforce beats ignore', tests: { access: fail('access', 'enforce'), pregreet: fail('pregreet', 'ignore') }, cached: false, enforced: 'access', passes: {}, outcome: 'enforce' },
  ];
  for (const { name, tests, cached, enforced, passes, outcome } of cases) {
    assert.equal(enforcedFailure(tests)?.test, enforced, name);
    assert.deepEqual(passesToCache(tests), passes, name);
    assert.equal(screenOutcome(tests, cached), outcome, name);
  }
});

test('a DNSWL pass (everyTest) passes pregreet, dnsbl and the deep tests until the later of their own pass and its own', () => {
  const tests: TestStates = { pregreet: { status: 'pass', until: 500 }, dnsbl: { status: 'todo' } };
  recordPass(tests, { test: 'dnsbl', outcome: 'pass', until: 100, everyTest: true }, ['pipelining']);
  assert.deepEqual(tests, { pregreet: { status: 'pass', until: 500 }, dnsbl: { status: 'pass', until: 100 }, pipelining: { status: 'pass', until: 100 } });
  const plain: TestStates = { dnsbl: { status: 'todo' } };
  recordPass(plain, { test: 'dnsbl', outcome: 'pass', until: 100 }, ['pipelining']);
  assert.deepEqual(plain, { dnsbl: { status: 'pass', until: 100 } });
});

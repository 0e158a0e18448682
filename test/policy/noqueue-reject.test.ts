// The `NOQUEUE: reject` line's `to=<…>` (Postfix smtpd_check.c log_whatsup, smtpd_check_data):
// RCPT names the refused recipient; every DATA refusal, a restriction's or a deep test's,
// names the transaction's recipient when it has exactly one and none when it has several;
// MAIL names the sender it refuses and no recipient. Read back from the policy stage on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeepTestMonitor } from '../../src/screen-verdict.js';
import { refusedEnvelope, type RefusedCommand } from '../../src/policy/noqueue-reject.js';
import { runTranscript, startPolicy, type LogLine, type PolicyUnderTest } from './transcript.js';

const BASE = 'relay_domains = example.com\n';
const DATA_REJECTED = '554 5.7.1 <DATA>: Data command rejected: Access denied';
const DEEP_REPLY = { code: 450, enhanced: '4.3.2', text: 'Service currently unavailable' };

/** A deep-test monitor that reports a failure from its `failAfter`+1th question on. */
function failingAfter(failAfter: number): DeepTestMonitor {
  let asked = 0;
  return { failure: () => (++asked > failAfter ? { test: 'pipelining', reply: DEEP_REPLY } : undefined) };
}

/** The one `NOQUEUE: reject` line of the run. */
function refusal(policy: PolicyUnderTest): LogLine {
  const lines = policy.logs.filter((line) => line.event === 'NOQUEUE: reject');
  assert.equal(lines.length, 1, `one NOQUEUE: reject line, got ${JSON.stringify(lines)}`);
  return lines[0]!;
}

/** Runs one transaction to `recipients` whose DATA gets `reply`; the one NOQUEUE line it logged. */
async function refusedData(options: Parameters<typeof startPolicy>[0], recipients: readonly string[], reply: string): Promise<LogLine> {
  const policy = await startPolicy(options);
  try {
    const rcpts = recipients.flatMap((to) => [`C: RCPT TO:<${to}>`, 'S: 250']);
    await runTranscript(policy, ['C: EHLO client.example', 'S: 250', 'C: MAIL FROM:<s@sender.example>', 'S: 250', ...rcpts, 'C: DATA', `S: ${reply}`].join('\n'));
    return refusal(policy);
  } finally {
    await policy.close();
  }
}

const RESTRICTION = { mainCf: `${BASE}smtpd_data_restrictions = reject` };
const DEEP_REPLY_TEXT = '450 4.3.2 Service currently unavailable';
const ONE = ['joe@example.com'];
const TWO = ['joe@example.com', 'ann@example.com'];
const TAIL_WITH_TO = '; from=<s@sender.example> to=<joe@example.com> proto=ESMTP helo=<client.example>';
const TAIL_WITHOUT_TO = '; from=<s@sender.example> proto=ESMTP helo=<client.example>';

// Every DATA refusal, a restriction's or a deep test's (asked at MAIL, each RCPT, then DATA), alike.
const DATA_CASES = [
  { name: 'smtpd_data_restrictions, one recipient: names it', options: RESTRICTION, recipients: ONE, reply: DATA_REJECTED, reason: 'reject', tail: TAIL_WITH_TO },
  { name: 'smtpd_data_restrictions, two recipients: names none', options: RESTRICTION, recipients: TWO, reply: DATA_REJECTED, reason: 'reject', tail: TAIL_WITHOUT_TO },
  { name: 'a deep test, one recipient: names it, never to=<>', options: { mainCf: BASE, verdict: { deepTests: failingAfter(2) } }, recipients: ONE, reply: DEEP_REPLY_TEXT, reason: 'postscreen pipelining', tail: TAIL_WITH_TO },
  { name: 'a deep test, two recipients: names none', options: { mainCf: BASE, verdict: { deepTests: failingAfter(3) } }, recipients: TWO, reply: DEEP_REPLY_TEXT, reason: 'postscreen pipelining', tail: TAIL_WITHOUT_TO },
];

for (const { name, options, recipients, reply, reason, tail } of DATA_CASES) {
  test(`NOQUEUE: reject: DATA, ${name}`, async () => {
    const line = await refusedData(options, recipients, reply);
    const text = String(line.msg);
    assert.match(text, /^NOQUEUE: reject: DATA from \[127\.0\.0\.2\]:\d+: /);
    assert.equal(text.slice(text.indexOf(': ', 'NOQUEUE: reject: DATA from '.length) + 2), `${reply}${tail}`);
    assert.equal(line.reason, reason);
    assert.equal(line.to, tail === TAIL_WITH_TO ? 'joe@example.com' : undefined);
  });
}

test('a deep test failing at MAIL FROM: the MAIL line names the sender refused and no recipient (no to=<>)', async () => {
  const policy = await startPolicy({ mainCf: BASE, verdict: { deepTests: failingAfter(0) } });
  try {
    await runTranscript(policy, 'C: EHLO client.example\nS: 250\nC: MAIL FROM:<s@sender.example>\nS: 450 4.3.2 Service currently unavailable');
    const line = refusal(policy);
    assert.match(String(line.msg), /^NOQUEUE: reject: MAIL from \[127\.0\.0\.2\]:\d+: 450 4\.3\.2 Service currently unavailable; from=<s@sender\.example> proto=ESMTP helo=<client\.example>$/);
    assert.equal('to' in line, false, 'no to field');
  } finally {
    await policy.close();
  }
});

test('refusedEnvelope: a command its switch does not know throws (a missed case is loud, not undefined)', () => {
  const state = { transaction: { recipients: 0 } } as unknown as Parameters<typeof refusedEnvelope>[0];
  const session = { envelope: { mailFrom: false, rcptTo: [] } } as unknown as Parameters<typeof refusedEnvelope>[1];
  assert.throws(() => refusedEnvelope(state, session, { name: 'VRFY' } as unknown as RefusedCommand), /^Error: unhandled refused command \{"name":"VRFY"\}$/);
});

// delivery-outcome: what an attempt's results mean for the message, as a table of cases
// (no I/O: the queue manager applies the value; queue-manager.test.ts and
// queue-delivery-features.test.ts show it applied end to end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attemptEnding, deliveryOutcome, type Attempt, type DeliveryOutcome, type OutcomeSettings, type PendingControl } from '../../src/queue/delivery-outcome.js';
import type { RecipientDelivery, RecipientOutcome } from '../../src/delivery-request.js';
import type { Envelope, QueueRecipient } from '../../src/message/envelope.js';
import type { DeliveryState, RecipientState } from '../../src/queue/delivery-state.js';
import type { QueueFileHead } from '../../src/queue/queue-file.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const ARRIVAL = Date.UTC(2024, 0, 1);
const SETTINGS: OutcomeSettings = { maximalQueueLifetime: 5 * DAY, minimalBackoffTime: 5 * MINUTE, maximalBackoffTime: 60 * MINUTE };
const RELAY = 'mail.example.com[192.0.2.1]:25';

function head(recipients: readonly QueueRecipient[], sender = 'alice@example.org'): QueueFileHead {
  const envelope: Envelope = { sender, recipients, arrivalTime: ARRIVAL, client: { address: '127.0.0.9', port: 40000 }, sessionId: 'S1' };
  return { id: 'Q1', envelope, bodyLength: 100, bodyOffset: 0 };
}

function pending(address: string, attempts = 0): RecipientState {
  return attempts ? { address, status: 'deferred', attempts, lastError: 'earlier', dsn: '4.4.1' } : { address, status: 'pending', attempts: 0 };
}

function result(address: string, status: RecipientOutcome, dsn: string, text: string, extra: Partial<RecipientDelivery> = {}): RecipientDelivery {
  return { outcome: { address, status, dsn, text }, relay: RELAY, nexthop: '[mail.example.com]:25', reason: 'rejected', relayedWithoutDsn: false, ...extra };
}

interface Case {
  readonly name: string;
  readonly recipients: readonly QueueRecipient[];
  readonly sender?: string;
  /** Recipient states before; default: each pending. */
  readonly before?: readonly RecipientState[];
  readonly delayWarned?: boolean;
  readonly results: readonly (RecipientDelivery | undefined)[];
  /** ms after arrival; default one minute. */
  readonly age?: number;
  readonly aborted?: boolean;
  readonly settings?: Partial<OutcomeSettings>;
  readonly want: {
    readonly recipients: readonly Partial<RecipientState>[];
    readonly bounces?: DeliveryOutcome['bounces'];
    /** action: addresses with status (text checked separately where it matters). */
    readonly notices?: readonly string[];
    readonly delayWarned?: boolean;
    readonly lines?: readonly string[];
    readonly nextAttemptIn?: number;
  };
}

const gone = 'mail.example.com[192.0.2.1] said: 550 5.1.1 <gone@example.com>: User unknown (in reply to RCPT TO command)';
const busy = 'mail.example.com[192.0.2.1] said: 451 4.3.0 Try again later (in reply to RCPT TO command)';
const ok = '250 2.0.0 Ok: queued as X1';

const CASES: readonly Case[] = [
  {
    name: 'sent: the recipient is sent, one attempt, its reply kept; no notice',
    recipients: [{ address: 'bob@example.com' }],
    results: [result('bob@example.com', 'sent', '2.0.0', ok)],
    want: {
      recipients: [{ status: 'sent', attempts: 1, dsn: '2.0.0', lastError: ok }],
      bounces: [],
      notices: [],
      lines: [`Q1: to=<bob@example.com>, relay=${RELAY}, delay=60, dsn=2.0.0, status=sent (${ok})`],
    },
  },
  {
    name: 'deferred: a 4xx defers, next attempt after minimal_backoff_time',
    recipients: [{ address: 'bob@example.com' }],
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred', attempts: 1, dsn: '4.3.0', lastError: busy }], bounces: [], notices: [], nextAttemptIn: 5 * MINUTE },
  },
  {
    name: 'deferred again: the backoff doubles with the attempts of the message',
    recipients: [{ address: 'bob@example.com' }],
    before: [pending('bob@example.com', 2)],
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred', attempts: 3 }], nextAttemptIn: 20 * MINUTE },
  },
  {
    name: 'bounced 5xx: a bounce to the sender naming the recipient, reason rejected',
    recipients: [{ address: 'gone@example.com', orcpt: 'rfc822;gone@example.com' }, { address: 'bob@example.com' }],
    results: [result('gone@example.com', 'bounced', '5.1.1', gone), result('bob@example.com', 'sent', '2.0.0', ok)],
    want: {
      recipients: [{ status: 'bounced', dsn: '5.1.1', lastError: gone }, { status: 'sent' }],
      bounces: ['rejected'],
      notices: ['failed: gone@example.com 5.1.1'],
    },
  },
  {
    name: 'bounced without a 5.x.x status: the status becomes 5.4.7',
    recipients: [{ address: 'bob@example.com' }],
    results: [result('bob@example.com', 'bounced', '4.4.7', 'odd', { relay: 'none', reason: 'transport' })],
    want: { recipients: [{ status: 'bounced', dsn: '5.4.7' }], bounces: ['transport'], notices: ['failed: bob@example.com 5.4.7'] },
  },
  {
    name: 'expired deferral: past maximal_queue_lifetime a deferral bounces with 5.4.7, reason expired',
    recipients: [{ address: 'bob@example.com' }],
    age: 5 * DAY,
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: {
      recipients: [{ status: 'bounced', dsn: '5.4.7', lastError: `message expired after maximal_queue_lifetime: ${busy}` }],
      bounces: ['expired'],
      notices: ['failed: bob@example.com 5.4.7'],
      lines: [`Q1: to=<bob@example.com>, relay=${RELAY}, delay=432000, dsn=5.4.7, status=bounced (message expired after maximal_queue_lifetime: ${busy})`],
    },
  },
  {
    name: 'expired deferral: a 5xx past the lifetime keeps its own status and reason',
    recipients: [{ address: 'gone@example.com' }],
    age: 6 * DAY,
    results: [result('gone@example.com', 'bounced', '5.1.1', gone)],
    want: { recipients: [{ status: 'bounced', dsn: '5.1.1', lastError: gone }], bounces: ['rejected'] },
  },
  {
    name: 'expired deferral: a sent recipient of an old message is sent',
    recipients: [{ address: 'bob@example.com' }],
    age: 6 * DAY,
    results: [result('bob@example.com', 'sent', '2.0.0', ok)],
    want: { recipients: [{ status: 'sent' }], bounces: [], notices: [] },
  },
  {
    name: 'expired deferral: not while the attempt was stopped',
    recipients: [{ address: 'bob@example.com' }],
    age: 6 * DAY,
    aborted: true,
    results: [result('bob@example.com', 'deferred', '4.3.2', 'delivery stopped')],
    want: { recipients: [{ status: 'deferred', dsn: '4.3.2' }], bounces: [], notices: [] },
  },
  {
    name: 'expired deferral from <>: bounce_queue_lifetime, dropped without a notice',
    recipients: [{ address: 'bob@example.com' }],
    sender: '',
    age: 2 * DAY,
    settings: { bounceQueueLifetime: 2 * DAY },
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'bounced', dsn: '5.4.7', lastError: `message expired after bounce_queue_lifetime: ${busy}` }], bounces: ['expired'], notices: [] },
  },
  {
    name: 'not expired from <>: younger than bounce_queue_lifetime',
    recipients: [{ address: 'bob@example.com' }],
    sender: '',
    age: 2 * DAY - 1,
    settings: { bounceQueueLifetime: 2 * DAY },
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred' }], bounces: [] },
  },
  {
    name: 'NOTIFY=NEVER: a bounce without a notice',
    recipients: [{ address: 'gone@example.com', notify: ['NEVER'] }],
    results: [result('gone@example.com', 'bounced', '5.1.1', gone)],
    want: { recipients: [{ status: 'bounced' }], bounces: ['rejected'], notices: [] },
  },
  {
    name: 'NOTIFY=DELAY only: a bounce without a notice',
    recipients: [{ address: 'gone@example.com', notify: ['DELAY'] }],
    results: [result('gone@example.com', 'bounced', '5.1.1', gone)],
    want: { recipients: [{ status: 'bounced' }], notices: [] },
  },
  {
    name: 'NOTIFY=SUCCESS relayed without DSN: a success notice, delivery via the relay',
    recipients: [{ address: 'bob@example.com', notify: ['SUCCESS'], orcpt: 'rfc822;bob@example.com' }],
    results: [result('bob@example.com', 'sent', '2.0.0', ok, { relayedWithoutDsn: true })],
    want: { recipients: [{ status: 'sent' }], notices: ['relayed: bob@example.com 2.0.0'] },
  },
  {
    name: 'NOTIFY=SUCCESS to a server with DSN: the server reports, no notice from us',
    recipients: [{ address: 'bob@example.com', notify: ['SUCCESS'] }],
    results: [result('bob@example.com', 'sent', '2.0.0', ok)],
    want: { recipients: [{ status: 'sent' }], notices: [] },
  },
  {
    name: 'relayed without DSN and no NOTIFY: no success notice (RFC 3461 default FAILURE,DELAY)',
    recipients: [{ address: 'bob@example.com' }],
    results: [result('bob@example.com', 'sent', '2.0.0', ok, { relayedWithoutDsn: true })],
    want: { recipients: [{ status: 'sent' }], notices: [] },
  },
  {
    name: 'delay warning: past delay_warning_time the deferred recipients get one delay notice',
    recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com', notify: ['DELAY'] }, { address: 'dave@example.com', notify: ['FAILURE'] }],
    age: 4 * 60 * MINUTE,
    settings: { delayWarningTime: 4 * 60 * MINUTE },
    results: [result('bob@example.com', 'deferred', '4.3.0', busy), result('carol@example.com', 'deferred', '4.3.0', busy), result('dave@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred' }, { status: 'deferred' }, { status: 'deferred' }], notices: ['delayed: bob@example.com 4.3.0, carol@example.com 4.3.0'], delayWarned: true },
  },
  {
    name: 'delay warning: once; a message already warned gets no second one',
    recipients: [{ address: 'bob@example.com' }],
    delayWarned: true,
    age: 8 * 60 * MINUTE,
    settings: { delayWarningTime: 4 * 60 * MINUTE },
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred' }], notices: [], delayWarned: true },
  },
  {
    name: 'delay warning: not before delay_warning_time',
    recipients: [{ address: 'bob@example.com' }],
    age: 4 * 60 * MINUTE - 1,
    settings: { delayWarningTime: 4 * 60 * MINUTE },
    results: [result('bob@example.com', 'deferred', '4.3.0', busy)],
    want: { recipients: [{ status: 'deferred' }], notices: [] },
  },
  {
    name: 'delay warning: a recipient still deferred from before but not tried now is named too',
    recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com' }],
    before: [pending('bob@example.com', 1), pending('carol@example.com', 1)],
    age: 4 * 60 * MINUTE,
    settings: { delayWarningTime: 4 * 60 * MINUTE },
    results: [result('bob@example.com', 'sent', '2.0.0', ok), undefined],
    want: { recipients: [{ status: 'sent', attempts: 2 }, { status: 'deferred', attempts: 1, lastError: 'earlier' }], notices: ['delayed: carol@example.com 4.4.1'], delayWarned: true },
  },
  {
    name: 'null sender: never notified, neither bounce nor delay nor success',
    recipients: [{ address: 'gone@example.com' }, { address: 'bob@example.com' }, { address: 'carol@example.com', notify: ['SUCCESS'] }],
    sender: '',
    age: 4 * 60 * MINUTE,
    settings: { delayWarningTime: MINUTE },
    results: [result('gone@example.com', 'bounced', '5.1.1', gone), result('bob@example.com', 'deferred', '4.3.0', busy), result('carol@example.com', 'sent', '2.0.0', ok, { relayedWithoutDsn: true })],
    want: { recipients: [{ status: 'bounced' }, { status: 'deferred' }, { status: 'sent' }], bounces: ['rejected'], notices: [] },
  },
  {
    name: 'stopped: a 5xx still bounces and is counted, but notices wait for the next attempt',
    recipients: [{ address: 'gone@example.com' }],
    aborted: true,
    settings: { delayWarningTime: 1 },
    results: [result('gone@example.com', 'bounced', '5.1.1', gone)],
    want: { recipients: [{ status: 'bounced' }], bounces: ['rejected'], notices: [] },
  },
  {
    name: 'not tried: a recipient without a result keeps its state and gets no log line',
    recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com' }],
    before: [{ address: 'bob@example.com', status: 'sent', attempts: 1, dsn: '2.0.0', lastError: ok }, pending('carol@example.com')],
    aborted: true,
    results: [undefined, undefined],
    want: { recipients: [{ status: 'sent', attempts: 1 }, { status: 'pending', attempts: 0 }], bounces: [], notices: [], lines: [] },
  },
  {
    name: 'error: transport: relay=none, status from the table text, in the log line',
    recipients: [{ address: 'x@bounce.test' }],
    results: [result('x@bounce.test', 'bounced', '5.1.1', '5.1.1 no such domain here', { relay: 'none', nexthop: 'error', reason: 'transport' })],
    want: {
      recipients: [{ status: 'bounced', dsn: '5.1.1' }],
      bounces: ['transport'],
      lines: ['Q1: to=<x@bounce.test>, relay=none, delay=60, dsn=5.1.1, status=bounced (5.1.1 no such domain here)'],
    },
  },
];

function run(c: Case): DeliveryOutcome {
  const message = head(c.recipients, c.sender);
  const state: DeliveryState = {
    id: 'Q1',
    attempts: Math.max(0, ...(c.before ?? []).map((r) => r.attempts)),
    nextAttempt: 0,
    recipients: c.before ?? c.recipients.map(({ address }) => pending(address)),
    ...(c.delayWarned ? { delayWarned: true } : {}),
  };
  const results = new Map(c.results.flatMap((r, index) => (r ? [[index, r] as const] : [])));
  const attempt: Attempt = { head: message, state, results, now: ARRIVAL + (c.age ?? MINUTE), aborted: c.aborted ?? false };
  return deliveryOutcome(attempt, { ...SETTINGS, ...c.settings });
}

for (const c of CASES) {
  test(`delivery outcome: ${c.name}`, () => {
    const outcome = run(c);
    const now = ARRIVAL + (c.age ?? MINUTE);
    assert.equal(outcome.state.recipients.length, c.want.recipients.length);
    c.want.recipients.forEach((want, i) => {
      const got = outcome.state.recipients[i]!;
      for (const [key, value] of Object.entries(want)) assert.deepEqual(got[key as keyof RecipientState], value, `recipient ${i} ${key}`);
    });
    if (c.want.bounces) assert.deepEqual(outcome.bounces, c.want.bounces);
    if (c.want.notices) {
      assert.deepEqual(
        outcome.notices.map((n) => `${n.action}: ${n.recipients.map((r) => `${r.address} ${r.status}`).join(', ')}`),
        c.want.notices,
      );
    }
    assert.equal(outcome.state.delayWarned ?? false, c.want.delayWarned ?? false, 'delayWarned');
    if (c.want.lines) assert.deepEqual(outcome.logLines.map((l) => l.message), c.want.lines);
    if (c.want.nextAttemptIn !== undefined) assert.equal(outcome.state.nextAttempt, now + c.want.nextAttemptIn);
    // Every tried recipient has exactly one line, with the event of its status.
    assert.deepEqual(
      outcome.logLines.map((l) => l.fields.event),
      c.results.flatMap((r, i) => (r ? [`status=${outcome.state.recipients[i]!.status}`] : [])),
    );
  });
}

test('delivery outcome: notice texts (the bounce text is the log text, the success text names the relay) and ORCPT', () => {
  const failed = run(CASES.find((c) => c.name.startsWith('bounced 5xx'))!).notices[0]!;
  assert.deepEqual(failed.recipients, [{ address: 'gone@example.com', orcpt: 'rfc822;gone@example.com', status: '5.1.1', text: gone }]);
  const relayed = run(CASES.find((c) => c.name.startsWith('NOTIFY=SUCCESS relayed'))!).notices[0]!;
  assert.deepEqual(relayed.recipients, [{ address: 'bob@example.com', orcpt: 'rfc822;bob@example.com', status: '2.0.0', text: `delivery via ${RELAY}: ${ok}` }]);
  const expired = run(CASES.find((c) => c.name.startsWith('expired deferral: past'))!).notices[0]!;
  assert.equal(expired.recipients[0]!.text, `message expired after maximal_queue_lifetime: ${busy}`);
});

test('delivery outcome: the log line carries the fields and the nexthop the metric counts by', () => {
  const [line] = run(CASES[0]!).logLines;
  assert.deepEqual(line, {
    fields: { event: 'status=sent', queueId: 'Q1', session: 'S1', to: 'bob@example.com', relay: RELAY, delay: 60, dsn: '2.0.0', status: 'sent', reply: ok },
    message: `Q1: to=<bob@example.com>, relay=${RELAY}, delay=60, dsn=2.0.0, status=sent (${ok})`,
    nexthop: '[mail.example.com]:25',
  });
});

const BEFORE: DeliveryState = { id: 'Q1', attempts: 2, nextAttempt: 5, recipients: [pending('bob@example.com', 2), pending('carol@example.com', 2)] };
const deferred = (patch: Partial<DeliveryState> = {}): DeliveryState => ({ ...BEFORE, attempts: 3, nextAttempt: 99, recipients: [pending('bob@example.com', 3), pending('carol@example.com', 3)], ...patch });
const oneBounced = deferred({ recipients: [{ address: 'bob@example.com', status: 'bounced', attempts: 3 }, pending('carol@example.com', 3)] });
const finished = deferred({ recipients: [{ address: 'bob@example.com', status: 'bounced', attempts: 3 }, { address: 'carol@example.com', status: 'sent', attempts: 3 }] });

const ENDINGS: readonly { name: string; before?: DeliveryState; after: DeliveryState; pending?: PendingControl; aborted?: boolean; want: ReturnType<typeof attemptEnding> }[] = [
  { name: 'finished: removed, no state written first', after: finished, want: { kind: 'remove' } },
  { name: 'finished while stopping: removed', after: finished, aborted: true, want: { kind: 'remove' } },
  { name: 'deleted meanwhile: removed although undelivered', after: deferred(), pending: 'delete', aborted: true, want: { kind: 'remove' } },
  { name: 'undelivered: deferred with its backoff', after: deferred(), want: { kind: 'defer', state: deferred() } },
  { name: 'requeued meanwhile: to incoming/, due now', after: deferred(), pending: 'requeue', want: { kind: 'requeue', state: deferred({ nextAttempt: 0 }) } },
  { name: 'held meanwhile: to hold/ with its state', after: deferred(), pending: 'hold', want: { kind: 'hold', state: deferred() } },
  { name: 'stopping, nothing settled: kept in active/, state untouched', after: deferred(), aborted: true, want: { kind: 'keep', state: undefined } },
  {
    name: 'stopping, a recipient settled: kept, state written without counting the attempt, due at once',
    after: oneBounced,
    aborted: true,
    want: { kind: 'keep', state: { ...oneBounced, attempts: 2, nextAttempt: 0 } },
  },
  {
    name: 'stopping after a delay notice: kept, the notice recorded',
    after: deferred({ delayWarned: true }),
    aborted: true,
    want: { kind: 'keep', state: deferred({ delayWarned: true, attempts: 2, nextAttempt: 0 }) },
  },
  {
    name: 'stopping, a pending recipient now deferred: kept, state untouched (only a settled recipient is worth the write)',
    before: { ...BEFORE, attempts: 0, recipients: [pending('bob@example.com'), pending('carol@example.com')] },
    after: deferred(),
    aborted: true,
    want: { kind: 'keep', state: undefined },
  },
  { name: 'stopping wins over requeue and hold', after: deferred(), pending: 'hold', aborted: true, want: { kind: 'keep', state: undefined } },
];

for (const c of ENDINGS) {
  test(`attempt ending: ${c.name}`, () => {
    assert.deepEqual(attemptEnding(c.before ?? BEFORE, c.after, c.pending, c.aborted ?? false), c.want);
  });
}

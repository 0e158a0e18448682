// The delivery agent on its own: the one call the queue manager makes, against a mailbox
// server on loopback (the queue tests show the same through the queue manager).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { SmtpDeliveryAgent } from '../../src/delivery/delivery-agent.js';
import type { DeliverySettings, OutboundMessage, RecipientDelivery } from '../../src/delivery-request.js';
import type { QueueRecipient } from '../../src/message/envelope.js';
import type { LookupTable } from '../../src/tables/lookup-table.js';
import { Metrics } from '../../src/ops/metrics.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { noDns } from '../fakes/no-dns.js';
import { ManualClock } from '../queue/manual-clock.js';
import { captureLog, type LogCapture } from '../queue/log-capture.js';

const MINUTE = 60_000;
const body = Buffer.from('Subject: agent\r\n\r\nhello\r\n');

interface Bench {
  readonly agent: SmtpDeliveryAgent;
  readonly mailbox: MailboxServer;
  readonly clock: ManualClock;
  readonly capture: LogCapture;
  deliver(addresses: readonly (string | QueueRecipient)[], message?: Partial<OutboundMessage>, signal?: AbortSignal): Promise<ReadonlyMap<number, RecipientDelivery>>;
}

async function withAgent(fn: (bench: Bench) => Promise<void>, overrides: Partial<DeliverySettings> = {}): Promise<void> {
  const mailbox = await MailboxServer.start();
  const routes: Record<string, string> = {
    'example.com': mailbox.nexthop,
    'bounce.test': 'error:5.1.1 no such domain here',
    'refused.test': 'error:mail for this domain is refused',
    'later.test': 'retry:4.2.2 mailbox full, try later',
  };
  const table: LookupTable = { spec: 'inline:test', lookup: (key) => routes[key] };
  const settings: DeliverySettings = { transportMaps: [table], relayhost: '', myhostname: 'mx1.test', minimalBackoffTime: 5 * MINUTE, connectTimeout: 2000, commandTimeout: 2000, ...overrides };
  const clock = new ManualClock();
  const capture = captureLog();
  const agent = new SmtpDeliveryAgent(settings, { resolver: noDns, clock, log: capture.log, metrics: new Metrics() });
  const deliver: Bench['deliver'] = (addresses, message = {}, signal = new AbortController().signal) =>
    agent.deliver(
      { sender: 'alice@example.org', size: body.length, body: () => Readable.from([body]), flushed: false, ...message },
      addresses.map((a) => (typeof a === 'string' ? { address: a } : a)),
      signal,
    );
  try {
    await fn({ agent, mailbox, clock, capture, deliver });
  } finally {
    agent.closeIdle();
    await mailbox.close();
  }
}

function summary(results: ReadonlyMap<number, RecipientDelivery>): string[] {
  return [...results].sort(([a], [b]) => a - b).map(([i, r]) => `${i} ${r.outcome.status} ${r.outcome.dsn} ${r.relay === 'none' ? 'none' : 'relay'} ${r.reason}`);
}

test('delivery agent: recipients of one nexthop share one transaction; error: and retry: recipients stand alone with their codes', async () => {
  await withAgent(async ({ mailbox, deliver }) => {
    const results = await deliver(['a@example.com', 'x@bounce.test', 'b@example.com', 'y@later.test', 'z@refused.test']);
    assert.deepEqual(summary(results), [
      '0 sent 2.0.0 relay rejected',
      '1 bounced 5.1.1 none transport',
      '2 sent 2.0.0 relay rejected',
      '3 deferred 4.2.2 none transport',
      '4 bounced 5.0.0 none transport',
    ]);
    assert.equal(mailbox.received.length, 1);
    assert.deepEqual(mailbox.received[0]!.recipients, ['a@example.com', 'b@example.com']);
    assert.equal(results.get(0)!.nexthop, `[127.0.0.1]:${mailbox.port}`);
    assert.equal(results.get(0)!.relay, `127.0.0.1[127.0.0.1]:${mailbox.port}`);
    assert.equal(results.get(0)!.relayedWithoutDsn, true, 'the mailbox server does not offer DSN');
    assert.equal(results.get(1)!.outcome.text, '5.1.1 no such domain here');
    assert.equal(results.get(1)!.nexthop, 'error');
  });
});

test('delivery agent: defer_transports holds an smtp nexthop unless a flush asked for the attempt', async () => {
  await withAgent(
    async ({ mailbox, deliver }) => {
      const held = await deliver(['a@example.com']);
      assert.deepEqual(summary(held), ['0 deferred 4.3.2 none transport']);
      assert.equal(held.get(0)!.outcome.text, 'deferred transport');
      assert.equal(mailbox.connections, 0);
      const flushed = await deliver(['a@example.com'], { flushed: true });
      assert.deepEqual(summary(flushed), ['0 sent 2.0.0 relay rejected']);
    },
    { deferTransports: ['smtp'] },
  );
});

test('delivery agent: a nexthop that gave no answer is suspended for minimal_backoff_time; a flush, the time or forgetDeadNexthops tries it again', async () => {
  await withAgent(async ({ mailbox, clock, capture, agent, deliver }) => {
    await mailbox.down();
    const refused = await deliver(['a@example.com']);
    assert.deepEqual(summary(refused), ['0 deferred 4.4.1 none rejected']);
    assert.match(refused.get(0)!.outcome.text, /Connection refused/);
    assert.equal(capture.events('nexthop dead').length, 1);
    await mailbox.restart();
    const suspended = await deliver(['b@example.com']);
    assert.deepEqual(summary(suspended), ['0 deferred 4.4.1 none transport']);
    assert.match(suspended.get(0)!.outcome.text, /^delivery temporarily suspended: connect to .*Connection refused$/);
    assert.equal(mailbox.received.length, 0, 'a suspended nexthop is not connected to');
    assert.deepEqual(summary(await deliver(['c@example.com'], { flushed: true })), ['0 sent 2.0.0 relay rejected']);
    assert.equal(capture.events('nexthop up').length, 1);

    await mailbox.down();
    await deliver(['d@example.com']);
    await mailbox.restart();
    clock.advance(5 * MINUTE);
    assert.deepEqual(summary(await deliver(['e@example.com'])), ['0 sent 2.0.0 relay rejected'], 'minimal_backoff_time is over');

    await mailbox.down();
    await deliver(['f@example.com']);
    await mailbox.restart();
    agent.forgetDeadNexthops();
    assert.deepEqual(summary(await deliver(['g@example.com'])), ['0 sent 2.0.0 relay rejected'], 'postqueue -f forgets dead nexthops');
    assert.deepEqual(mailbox.received.map((m) => m.recipients[0]), ['c@example.com', 'e@example.com', 'g@example.com']);
  });
});

test('delivery agent: an attempt aborted before it starts tries no SMTP nexthop; table answers still come back', async () => {
  await withAgent(async ({ mailbox, deliver }) => {
    const abort = new AbortController();
    abort.abort();
    const results = await deliver(['a@example.com', 'x@bounce.test'], {}, abort.signal);
    assert.deepEqual(summary(results), ['1 bounced 5.1.1 none transport']);
    assert.equal(mailbox.connections, 0);
  });
});

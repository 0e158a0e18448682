// Log events of README "Log events" that no other test asserted, each produced by the
// behaviour it reports and read back with its level, its key fields and its text: the
// whole chain (DNSBL error, ETRN and its flush), the policy stage on loopback (WARN,
// address verify, smtp error, hold), the queue world on a manual clock (removed, placed on
// hold, released from hold, requeued, flush, nexthop dead, nexthop up).
// test/docs/observability-tests.test.ts checks that every LOG_EVENT is asserted by some test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Metrics } from '../../src/ops/metrics.js';
import { parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';
import { startDnsblQuery } from '../../src/dnsbl/dnsbl-query.js';
import { runQueueControl } from '../../src/queue/queue-control.js';
import { startChain, ZONE } from '../integration/harness.js';
import { command as commandWithin, connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { runTranscript, startPolicy } from '../policy/transcript.js';
import { ManualClock } from '../queue/manual-clock.js';
import { captureLog } from '../queue/log-capture.js';
import { delivered, MINUTE, withDeferred, withWorld } from '../queue/queue-world.js';

const WAIT = 5000; // upper bound of any single wait; each step takes milliseconds
/** One command line; the last line of its reply within WAIT. */
const command = (client: ScriptedClient, line: string): Promise<string> => commandWithin(client, line, WAIT);
const BASE = 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com\n';
const SESSION = 'C: EHLO client.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\n';

/** The one line of `event` in `lines` (fails when there are none or several). */
function oneEvent(lines: readonly Record<string, unknown>[], event: string): Record<string, unknown> {
  const found = lines.filter((line) => line['event'] === event);
  assert.equal(found.length, 1, `one "${event}" line, got ${JSON.stringify(found)}`);
  return found[0]!;
}

// --- screen stage ---

test('DNSBL error: an error code in a client\'s DNSBL answer is logged at warn with the site and the codes, and is not a listing', async () => {
  const chain = await startChain();
  try {
    chain.dns.listDnsbl(ZONE, '127.0.62.1', ['127.255.255.254']);
    const client = await connectClient({ port: chain.port, localAddress: '127.0.62.1' });
    const greeting = await client.readReply(WAIT);
    assert.equal(greeting.code, 220, 'passed: an error code never lists the client');
    const line = await chain.log.waitFor((entry) => entry.event === 'DNSBL error', WAIT);
    assert.equal(line['level'], 'warn');
    assert.equal(line['site'], ZONE);
    assert.equal(line['kind'], 'refused_code');
    assert.deepEqual(line['codes'], ['127.255.255.254']);
    assert.equal(line['client'], `[127.0.62.1]:${client.localPort}`);
    assert.equal(line.msg, `DNSBL lookup error for ${ZONE}: error code 127.255.255.254`);
    await client.close();
  } finally {
    await chain.close();
  }
});

test('DNSBL error: a SERVFAIL from the DNSBL is logged at warn with its kind; the client passes', async () => {
  const chain = await startChain();
  try {
    const name = chain.dns.listDnsbl(ZONE, '127.0.62.2', ['127.0.0.2']);
    chain.dns.setServfail(name);
    const client = await connectClient({ port: chain.port, localAddress: '127.0.62.2' });
    assert.equal((await client.readReply(WAIT)).code, 220);
    const line = await chain.log.waitFor((entry) => entry.event === 'DNSBL error', WAIT);
    assert.equal(line['level'], 'warn');
    assert.equal(line['kind'], 'servfail');
    assert.equal(line.msg, `DNSBL lookup error for ${ZONE}: servfail`);
    await client.close();
  } finally {
    await chain.close();
  }
});

test('DNSBL error: a DNSBL that does not answer within postscreen_dnsbl_timeout is logged at warn as a timeout (manual clock)', async () => {
  const clock = new ManualClock();
  const capture = captureLog();
  const site = parseDnsblSite('slow.dnsbl.test') as DnsblSite;
  const never = new Promise<never>(() => undefined);
  const resolver = { resolve4: () => never, resolve6: () => never, resolveMx: () => never, reverse: () => never, resolveTxt: () => never };
  const query = startDnsblQuery([site], '192.0.2.7', 1000, { resolver, clock, metrics: new Metrics(), log: capture.log });
  clock.advance(999);
  assert.equal(capture.events('DNSBL error').length, 0, 'not before the timeout');
  clock.advance(1);
  const score = await query.settled;
  assert.equal(score.sites[0]?.result, 'timeout');
  const line = oneEvent(capture.lines, 'DNSBL error');
  assert.equal(line['level'], 'warn');
  assert.equal(line['site'], 'slow.dnsbl.test');
  assert.equal(line['kind'], 'timeout');
  assert.equal(line['msg'], 'DNSBL lookup error for slow.dnsbl.test: timeout');
});

// --- policy stage ---

test('ETRN: an accepted ETRN is logged with its domain, and starts a flush of that domain (the whole chain)', async () => {
  const chain = await startChain();
  try {
    const client = await connectClient({ port: chain.port, localAddress: '127.0.63.1' });
    await client.waitForCode(220, WAIT);
    assert.match(await command(client, 'EHLO client.example.org'), /^250 /);
    assert.equal(await command(client, 'ETRN example.com'), '250 Queuing started');
    const line = await chain.log.waitFor((entry) => entry.event === 'ETRN', WAIT);
    assert.equal(line['level'], 'info');
    assert.equal(line['domain'], 'example.com');
    assert.equal(line['client'], `[127.0.63.1]:${client.localPort}`);
    assert.equal(line.msg, `ETRN example.com from [127.0.63.1]:${client.localPort}`);
    const flush = await chain.log.waitFor((entry) => entry.event === 'flush', WAIT);
    assert.equal(flush['level'], 'info');
    assert.equal(flush['domain'], 'example.com');
    assert.equal(flush.msg, 'flush example.com: 0 deferred messages');
    // Refused ETRN (not in fast_flush_domains): a NOQUEUE line, no ETRN line.
    assert.match(await command(client, 'ETRN other.example'), /^459 <other\.example>: service unavailable$/);
    await chain.log.waitFor((entry) => entry.event === 'NOQUEUE: reject' && String(entry.msg).includes('ETRN'), WAIT);
    assert.equal(chain.log.events('ETRN').length, 1);
    await client.close();
  } finally {
    await chain.close();
  }
});

test('WARN: a header_checks WARN action is logged at warn with the table, line and header; the message is queued', async () => {
  const policy = await startPolicy({ mainCf: `${BASE}header_checks = regexp:header_checks`, files: { header_checks: '/^Subject: watch/ WARN watched subject\n' } });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 354\nC: Subject: watch me\nC:\nC: body\nC: .\nS~ ^250 2\\.0\\.0 Ok: queued as`);
    const line = oneEvent(policy.logs, 'WARN');
    assert.equal(line['level'], 'warn');
    assert.match(String(line['table']), /^regexp:.*header_checks$/);
    assert.equal(line['line'], 1);
    assert.equal(line['header'], 'Subject: watch me');
    assert.equal(line['msg'], `warning: header Subject: watch me: watched subject (${String(line['table'])}:1)`);
    assert.equal(policy.queued.length, 1);
  } finally {
    await policy.close();
  }
});

test('WARN: an access(5) WARN action is logged at warn with the table and key; the recipient is accepted', async () => {
  const policy = await startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = check_client_access inline:{ { 127.0.0.2 = WARN looks odd } }` });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250`);
    const line = oneEvent(policy.logs, 'WARN');
    assert.equal(line['level'], 'warn');
    assert.match(String(line['source']), /^inline:.*: 127\.0\.0\.2$/);
    assert.equal(line['msg'], `warning: ${String(line['source'])}: looks odd`);
  } finally {
    await policy.close();
  }
});

test('address verify: a reject_unverified_recipient probe is logged with recipient, nexthop and result', async () => {
  const mailbox = await MailboxServer.start();
  mailbox.setMode('reject', 'nobody@example.com');
  const nexthop = `[127.0.0.1]:${mailbox.port}`;
  const policy = await startPolicy({
    mainCf: `${BASE}transport_maps = inline:{ example.com=smtp:${nexthop} }\nsmtpd_recipient_restrictions = reject_unverified_recipient\naddress_verify_poll_delay = 300ms`,
  });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: RCPT TO:<nobody@example.com>\nS~ ^450 4\\.1\\.1 <nobody@example\\.com>: Recipient address rejected: undeliverable address: `);
    const lines = policy.logs.filter((line) => line.event === 'address verify');
    assert.deepEqual(
      lines.map((line) => [line['level'], line['to'], line['nexthop'], line['status']]),
      [
        ['info', 'joe@example.com', nexthop, 'deliverable'],
        ['info', 'nobody@example.com', nexthop, 'undeliverable'],
      ],
    );
    assert.match(String(lines[0]!.msg), /^<joe@example\.com>: address verification: deliverable: /);
    assert.match(String(lines[1]!.msg), /^<nobody@example\.com>: address verification: undeliverable: .*550/);
    assert.match(await policy.metrics.registry.metrics(), new RegExp(`^mxscreen_address_verify_probes_total\\{nexthop="${nexthop.replace(/[[\].]/g, '\\$&')}",result="started"\\} 2$`, 'm'));
  } finally {
    await policy.close();
    await mailbox.close();
  }
});

test('smtp error: an access(5) action smtpd cannot honour is logged at warn and the client gets 451 4.3.5', async () => {
  const policy = await startPolicy({ mainCf: `${BASE}smtpd_sender_restrictions = check_sender_access inline:{ { sender.example = FILTER smtp:[127.0.0.1]:10025 } }` });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 451 4.3.5 <a@sender.example>: Sender address rejected: Server configuration error`);
    const line = oneEvent(policy.logs, 'smtp error');
    assert.equal(line['level'], 'warn');
    assert.match(String(line['source']), /^inline:.*: sender\.example$/);
    assert.equal(line['msg'], `warning: ${String(line['source'])}: unsupported access action "FILTER smtp:[127.0.0.1]:10025"`);
  } finally {
    await policy.close();
  }
});

test('hold: a header_checks HOLD is logged with the queue id, table and header, and counted in mxscreen_content_checks_total{action="hold"}', async () => {
  const policy = await startPolicy({
    mainCf: `${BASE}header_checks = regexp:header_checks`,
    files: { header_checks: '/^Subject: hold me/ HOLD held for review\n' },
  });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 354\nC: Subject: hold me\nC:\nC: body\nC: .\nS~ ^250 2\\.0\\.0 Ok: queued as`);
    const line = oneEvent(policy.logs, 'hold'); // logged before the 250 is sent
    assert.equal(line['level'], 'info');
    assert.deepEqual(readdirSync(join(policy.directory, 'queue', 'hold')), [line['queueId']], 'committed into hold/');
    assert.equal(line['header'], 'Subject: hold me');
    assert.equal(line['line'], 1);
    assert.match(String(line.msg), new RegExp(`^${String(line['queueId'])}: hold: header Subject: hold me from \\[127\\.0\\.0\\.2\\]:\\d+: held for review \\(regexp:.*header_checks:1\\)$`));
    assert.match(await policy.metrics.registry.metrics(), /^mxscreen_content_checks_total\{action="hold"\} 1$/m);
  } finally {
    await policy.close();
  }
});

// --- queue ---

test('removed: a message whose every recipient is sent is removed, logged with its queue id', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
    const line = oneEvent(world.capture.lines, 'removed');
    assert.deepEqual([line['level'], line['queueId'], line['msg']], ['info', id, `${id}: removed`]);
    assert.deepEqual(await world.files('active'), []);
  });
});

test('removed: mxscreen queue delete of a deferred message logs removed', async () => {
  await withDeferred(async (world, id) => {
    assert.equal((await runQueueControl(world.directory, { command: 'delete', target: id })).ok, true);
    const line = oneEvent(world.capture.lines, 'removed');
    assert.deepEqual([line['level'], line['queueId'], line['msg']], ['info', id, `${id}: removed`]);
  });
});

test('placed on hold, released from hold: queue control hold and release are logged with the queue id', async () => {
  await withDeferred(async (world, id) => {
    assert.equal((await runQueueControl(world.directory, { command: 'hold', target: id })).ok, true);
    const hold = oneEvent(world.capture.lines, 'placed on hold');
    assert.deepEqual([hold['level'], hold['queueId'], hold['msg']], ['info', id, `${id}: placed on hold`]);
    assert.deepEqual(await world.files('hold'), [id]);
    assert.equal(world.capture.events('released from hold').length, 0);
    assert.equal((await runQueueControl(world.directory, { command: 'release', target: id })).ok, true);
    const release = oneEvent(world.capture.lines, 'released from hold');
    assert.deepEqual([release['level'], release['queueId'], release['msg']], ['info', id, `${id}: released from hold`]);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
  });
});

test('requeued: queue control requeue of a deferred message is logged with the queue id', async () => {
  await withDeferred(async (world, id) => {
    assert.equal((await runQueueControl(world.directory, { command: 'requeue', target: id })).ok, true);
    const line = oneEvent(world.capture.lines, 'requeued');
    assert.deepEqual([line['level'], line['queueId'], line['msg']], ['info', id, `${id}: requeued`]);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
  });
});

test('flush: queue control flush is logged with the number of deferred messages', async () => {
  await withDeferred(async (world) => {
    assert.equal((await runQueueControl(world.directory, { command: 'flush', target: '' })).count, 1);
    const line = oneEvent(world.capture.lines, 'flush');
    assert.deepEqual([line['level'], line['domain'], line['count'], line['msg']], ['info', null, 1, 'flush: 1 deferred messages']);
  });
});

test('nexthop dead, nexthop up: a nexthop that refuses connections is logged dead once, however often it is tried, and up when it answers again', async () => {
  await withWorld(
    async (world) => {
      const nexthop = `[127.0.0.1]:${world.mailbox.port}`;
      const refused = () => world.capture.events('status=deferred').filter((line) => /^connect to .*Connection refused/.test(String(line['reply'])));
      await world.manager.start();
      await world.mailbox.down();
      world.manager.kick(await world.queue(['a@example.com']));
      await world.manager.whenIdle();
      world.clock.advance(MINUTE);
      world.manager.kick(await world.queue(['b@example.com'])); // deferred without a connection while dead
      await world.manager.whenIdle();
      world.clock.advance(4 * MINUTE); // the first message is due, the dead time is over: tried and refused again
      await world.manager.whenIdle();
      assert.equal(refused().length, 2, 'two real connection attempts were refused');
      const dead = oneEvent(world.capture.lines, 'nexthop dead');
      assert.equal(dead['level'], 'warn');
      assert.equal(dead['nexthop'], nexthop);
      assert.match(String(dead['reason']), /Connection refused/);
      assert.equal(dead['msg'], `${nexthop}: delivery temporarily suspended: ${String(dead['reason'])}`);
      assert.equal(world.capture.events('nexthop up').length, 0);
      await world.mailbox.restart();
      world.clock.advance(60 * MINUTE); // every backoff is over
      await world.manager.whenIdle();
      assert.equal(delivered(world).length, 2);
      const up = oneEvent(world.capture.lines, 'nexthop up');
      assert.deepEqual([up['level'], up['nexthop'], up['msg']], ['info', nexthop, `${nexthop}: delivery resumed`]);
    },
    { concurrency: 1 },
  );
});

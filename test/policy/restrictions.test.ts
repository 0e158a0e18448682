// Restrictions one by one, as transcripts against the policy stage on loopback with the
// fake DNS server: unknown domains (null MX, temporary failure), FCrDNS, SPF (mailauth),
// check_policy_service (timeouts, connection reuse), reject_unverified_recipient (probes,
// cache, limits), access(5) results, and configuration errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/ops/log.js';
import { RecipientVerifier } from '../../src/policy/address-verify.js';
import type { ProbeResult } from '../../src/policy/verify-probe.js';
import { parseAccessAction } from '../../src/policy/access-action.js';
import { addressKeys, networkKeys, parentDomains } from '../../src/policy/access-restriction.js';
import { withDnsServer } from '../fakes/dns-server.js';
import { runTranscript, startPolicy } from './transcript.js';
import { startPolicyServer } from './policy-server.js';
import { ManualClock } from '../queue/manual-clock.js';

const BASE = 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com\n';
const SESSION = 'C: EHLO client.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\n';

const withDns = withDnsServer;

test('access(5) results: OK, REJECT text, DEFER, 4NN/5NN text, DUNNO, PREPEND, restriction names', () => {
  const cases = [
    { input: 'OK', want: { kind: 'ok' } },
    { input: '1234', want: { kind: 'ok' } },
    { input: 'reject No thanks', want: { kind: 'reject', text: 'No thanks' } },
    { input: 'DEFER', want: { kind: 'defer', text: undefined } },
    { input: '550 5.1.1 gone', want: { kind: 'reply', code: 550, text: '5.1.1 gone' } },
    { input: 'DUNNO', want: { kind: 'dunno' } },
    { input: 'PREPEND X-Seen: yes', want: { kind: 'prepend', header: 'X-Seen: yes' } },
    { input: 'permit_mynetworks, reject', want: { kind: 'restrictions', words: ['permit_mynetworks', 'reject'] } },
    { input: 'HOLD', want: { kind: 'unsupported', action: 'HOLD' } },
  ];
  for (const { input, want } of cases) assert.deepEqual(parseAccessAction(input), want, input);
});

test('access(5) lookup keys: address, domain, parents, user@; client networks', () => {
  assert.deepEqual(addressKeys('Joe@Sub.Example.COM', true), ['joe@sub.example.com', 'sub.example.com', 'example.com', 'com', 'joe@']);
  assert.deepEqual(addressKeys('joe@sub.example.com', false), ['joe@sub.example.com', 'sub.example.com', '.example.com', '.com', 'joe@']);
  assert.deepEqual(addressKeys('', true), ['<>']);
  assert.deepEqual(networkKeys('::ffff:192.0.2.10'), ['192.0.2.10', '192.0.2', '192.0', '192']);
  assert.deepEqual(parentDomains('a.b.c', true), ['b.c', 'c']);
});

test('check_sender_access with hash keys: a domain entry rejects with its text', async () => {
  const policy = await startPolicy({ mainCf: `${BASE}smtpd_sender_restrictions = check_sender_access hash:senders`, files: { senders: 'sender.example REJECT We do not talk to you\n' } });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 554 5.7.1 <a@sender.example>: Sender address rejected: We do not talk to you`);
  } finally {
    await policy.close();
  }
});

test('an unknown restriction name is a configuration error at its main.cf line', async () => {
  await assert.rejects(startPolicy({ mainCf: `${BASE}smtpd_recipient_restrictions = permit_mynetworks, reject_everything` }), (error: { code?: string; problems?: { line: number; message: string }[] }) =>
    error.code === 'ERR_CONFIG' && error.problems?.[0]?.line === 5 && /unknown restriction "reject_everything"/.test(error.problems[0].message),
  );
});

test('a restriction that needs a table and gets none is a configuration error', async () => {
  await assert.rejects(startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = check_client_access` }), { code: 'ERR_CONFIG' });
  await assert.rejects(startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = reject_rbl_client zen..example` }), { code: 'ERR_CONFIG' });
});

test('reject_unknown_recipient_domain: null MX 556 5.1.10, no records 450 4.1.2, SERVFAIL 450 4.4.3, A only passes', async () => {
  await withDns(async (dns) => {
    dns.setMx('nullmx.example', [{ exchange: '.', priority: 0 }]);
    dns.setA('aonly.example', ['192.0.2.1']);
    dns.setServfail('broken.example');
    const policy = await startPolicy({ mainCf: 'mynetworks = 127.0.0.2/32\nsmtpd_recipient_restrictions = reject_unknown_recipient_domain, permit_mynetworks, reject', dns });
    try {
      await runTranscript(
        policy,
        `${SESSION}
        C: RCPT TO:<a@nullmx.example>
        S: 556 5.1.10 <a@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)
        C: RCPT TO:<a@nowhere.example>
        S: 450 4.1.2 <a@nowhere.example>: Recipient address rejected: Domain not found
        C: RCPT TO:<a@broken.example>
        S: 450 4.4.3 <a@broken.example>: Recipient address rejected: Domain not found
        C: RCPT TO:<a@aonly.example>
        S: 250`,
      );
    } finally {
      await policy.close();
    }
  });
});

test('reject_unknown_sender_domain: a null MX sender gets 550 5.7.27', async () => {
  await withDns(async (dns) => {
    dns.setMx('nullmx.example', [{ exchange: '.', priority: 0 }]);
    const policy = await startPolicy({ mainCf: `${BASE}smtpd_sender_restrictions = reject_unknown_sender_domain`, dns });
    try {
      await runTranscript(policy, `C: EHLO c.example\nS: 250\nC: MAIL FROM:<x@nullmx.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 550 5.7.27 <x@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)`);
    } finally {
      await policy.close();
    }
  });
});

test('reject_unknown_client_hostname: FCrDNS passes; a PTR without a matching A gets 450 4.7.1', async () => {
  await withDns(async (dns) => {
    dns.setPtr('127.0.0.2', ['good.example.org']);
    dns.setA('good.example.org', ['127.0.0.2']);
    dns.setPtr('127.0.0.3', ['liar.example.org']);
    dns.setA('liar.example.org', ['192.0.2.99']);
    const policy = await startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = reject_unknown_client_hostname`, dns });
    try {
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250`, '127.0.0.2');
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 450 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.3]`, '127.0.0.3');
    } finally {
      await policy.close();
    }
  });
});

test('permit_dnswl_client skips the rest of the list; rbl_reply_maps words the reject', async () => {
  await withDns(async (dns) => {
    dns.listDnsbl('list.dnswl.test', '127.0.0.2', ['127.0.10.1']);
    dns.listDnsbl('zen.dnsbl.test', '127.0.0.2', ['127.0.0.2']);
    dns.listDnsbl('zen.dnsbl.test', '127.0.0.3', ['127.0.0.4']);
    const policy = await startPolicy({
      mainCf: `${BASE}rbl_reply_maps = hash:rbl_reply\nsmtpd_client_restrictions = permit_dnswl_client list.dnswl.test=127.0.[0..255].[1..255], reject_rbl_client zen.dnsbl.test=127.0.0.[2..11]`,
      files: { rbl_reply: 'zen.dnsbl.test=127.0.0.[2..11] 550 5.7.1 $rbl_what is listed at $rbl_domain, see https://example.org/$rbl_what\n' },
      dns,
    });
    try {
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250`, '127.0.0.2');
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 550 5.7.1 127.0.0.3 is listed at zen.dnsbl.test, see https://example.org/127.0.0.3`, '127.0.0.3');
    } finally {
      await policy.close();
    }
  });
});

test('permit_dnswl_client: 127.0.0.255 from a DNSWL is an error code (dnsbl-answer.ts, as postscreen reads it), never a permit', async () => {
  await withDns(async (dns) => {
    dns.listDnsbl('list.dnswl.test', '127.0.0.4', ['127.0.0.255']);
    dns.listDnsbl('zen.dnsbl.test', '127.0.0.4', ['127.0.0.2']);
    dns.listDnsbl('list.dnswl.test', '127.0.0.5', ['127.0.10.1']);
    dns.listDnsbl('zen.dnsbl.test', '127.0.0.5', ['127.0.0.2']);
    const policy = await startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = permit_dnswl_client list.dnswl.test, reject_rbl_client zen.dnsbl.test`, dns });
    try {
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS~ ^554 5\\.7\\.1 Service unavailable; Client host \\[127\\.0\\.0\\.4\\] blocked using zen\\.dnsbl\\.test$`, '127.0.0.4');
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250`, '127.0.0.5');
    } finally {
      await policy.close();
    }
  });
});

test('reject_rbl_client: default_rbl_reply carries the DNSBL TXT record as $rbl_reason; none, no "; reason"', async () => {
  await withDns(async (dns) => {
    const listed = dns.listDnsbl('zen.dnsbl.test', '127.0.0.2', ['127.0.0.2']);
    dns.setTxt(listed, ['https://www.spamhaus.org/query/ip/127.0.0.2\r\n250 injected']);
    dns.listDnsbl('zen.dnsbl.test', '127.0.0.3', ['127.0.0.4']);
    const policy = await startPolicy({ mainCf: `${BASE}smtpd_client_restrictions = reject_rbl_client zen.dnsbl.test`, dns });
    try {
      await runTranscript(
        policy,
        `${SESSION}C: RCPT TO:<joe@example.com>\nS: 554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.dnsbl.test; https://www.spamhaus.org/query/ip/127.0.0.2??250 injected`,
        '127.0.0.2',
      );
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS~ ^554 5\\.7\\.1 Service unavailable; Client host \\[127\\.0\\.0\\.3\\] blocked using zen\\.dnsbl\\.test$`, '127.0.0.3');
      assert.equal(dns.queryCount(listed, 'TXT'), 1);
    } finally {
      await policy.close();
    }
  });
});

test('reject_spf_fail: fail → 550 5.7.23, temperror → 451 4.7.24, pass adds Received-SPF', async () => {
  await withDns(async (dns) => {
    dns.setA('mail.spf.example', ['127.0.0.2']);
    dns.setA('sender.example', ['192.0.2.1']);
    dns.setTxt('spf.example', ['v=spf1 a:mail.spf.example -all']);
    dns.setTxt('strict.example', ['v=spf1 ip4:192.0.2.0/24 -all']);
    dns.setTxt('sender.example', ['google-site-verification=x', ['v=spf1 include:', 'spf.example -all']]);
    dns.setServfail('temp.example');
    const policy = await startPolicy({ mainCf: `${BASE}smtpd_recipient_restrictions = reject_spf_fail, permit_mynetworks, reject_unauth_destination`, dns });
    try {
      await runTranscript(
        policy,
        `C: EHLO c.example\nS: 250\nC: MAIL FROM:<x@strict.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS~ ^550 5\\.7\\.23 <x@strict\\.example>: Sender address rejected: SPF fail\nC: RSET\nS: 250\nC: MAIL FROM:<x@temp.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 451 4.7.24 <x@temp.example>: Sender address rejected: SPF temporary error\nC: RSET\nS: 250\nC: MAIL FROM:<x@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 354\nC: Subject: t\nC:\nC: .\nS: 250`,
      );
      const head = await policy.spool.verify('incoming', policy.queued[0]!);
      const chunks: Buffer[] = [];
      for await (const chunk of policy.spool.openBody('incoming', head)) chunks.push(chunk as Buffer);
      assert.match(Buffer.concat(chunks).toString(), /^Received-SPF: pass .*client-ip=127\.0\.0\.2;/);
    } finally {
      await policy.close();
    }
  });
});

test('check_policy_service inet: one connection for many requests; a silent server gives the default action after the timeout', async () => {
  const server = await startPolicyServer((request) => (request.recipient === 'bad@example.com' ? 'REJECT go away' : 'DUNNO'));
  const silent = await startPolicyServer(() => 'OK', { silent: true });
  const policy = await startPolicy({
    mainCf: `${BASE}smtpd_policy_service_timeout = 200ms\nsmtpd_recipient_restrictions = check_policy_service ${server.target}, permit_mynetworks, reject_unauth_destination`,
  });
  const slow = await startPolicy({ mainCf: `${BASE}smtpd_policy_service_timeout = 200ms\nsmtpd_recipient_restrictions = check_policy_service ${silent.target}` });
  try {
    await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: RCPT TO:<bad@example.com>\nS: 554 5.7.1 <bad@example.com>: Recipient address rejected: go away\nC: RCPT TO:<ann@example.com>\nS: 250`);
    assert.equal(server.requests.length, 3);
    assert.equal(server.connections, 1);
    await runTranscript(slow, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 451 4.3.5 <joe@example.com>: Recipient address rejected: Server configuration problem`);
  } finally {
    await policy.close();
    await slow.close();
    await server.close();
    await silent.close();
  }
});

/**
 * A nexthop that answers RCPT per `users`, counting probes; `sessions` has, for each
 * connection, the commands it got (resolved when the connection closes).
 */
async function startNexthop(users: readonly string[]): Promise<{ port: number; probes: string[]; sessions: Promise<string[]>[]; close(): Promise<void> }> {
  const probes: string[] = [];
  const sessions: Promise<string[]>[] = [];
  const server: Server = createServer((socket) => {
    const commands: string[] = [];
    sessions.push(new Promise((resolve) => socket.on('close', () => resolve(commands))));
    socket.write('220 inside.example ESMTP\r\n');
    socket.setEncoding('latin1');
    let buffer = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        commands.push(line);
        const rcpt = /^RCPT TO:<(.*)>/i.exec(line);
        if (rcpt) {
          probes.push(rcpt[1]!);
          socket.write(users.includes(rcpt[1]!) ? '250 2.1.5 Ok\r\n' : '550 5.1.1 <' + rcpt[1] + '>: Recipient address rejected: User unknown\r\n');
        } else if (/^QUIT/i.test(line)) {
          socket.end('221 Bye\r\n');
        } else if (/^DATA/i.test(line)) {
          socket.write('554 no data in probes\r\n');
        } else {
          socket.write('250 ok\r\n');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, probes, sessions, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A loopback port nothing listens on (a nexthop that is down). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

/** The first probes of a nexthop that knows joe@ only (startNexthop(['joe@example.com'])). */
const FIRST_PROBES = `${SESSION}
      C: RCPT TO:<joe@example.com>
      S: 250
      C: RCPT TO:<nobody@example.com>
      S: 450 4.1.1 <nobody@example.com>: Recipient address rejected: undeliverable address: host [127.0.0.1] said: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown`;

test('reject_unverified_recipient: probes the transport_maps nexthop and caches both answers', async () => {
  const nexthop = await startNexthop(['joe@example.com']);
  const mainCf = `${BASE}transport_maps = inline:{ example.com=smtp:[127.0.0.1]:${nexthop.port} }\nsmtpd_recipient_restrictions = reject_unverified_recipient\naddress_verify_poll_delay = 300ms`;
  const policy = await startPolicy({ mainCf });
  try {
    await runTranscript(
      policy,
      `${FIRST_PROBES}
      C: RCPT TO:<joe@example.com>
      S: 250
      C: RCPT TO:<nobody@example.com>
      S: 450 4.1.1`,
    );
    assert.deepEqual(nexthop.probes, ['joe@example.com', 'nobody@example.com']);
  } finally {
    await policy.close();
  }
  await nexthop.close();
});

test('reject_unverified_recipient: a nexthop list is honoured: the first nexthop is down, the second answers; the probe is EHLO, MAIL FROM:<>, RCPT TO, RSET, QUIT', async () => {
  const down = await closedPort();
  const nexthop = await startNexthop(['joe@example.com']);
  const list = `[127.0.0.1]:${down}, [127.0.0.1]:${nexthop.port}`;
  const policy = await startPolicy({
    mainCf: `${BASE}transport_maps = hash:transport\nsmtpd_recipient_restrictions = reject_unverified_recipient\naddress_verify_poll_delay = 300ms`,
    files: { transport: `example.com smtp:${list}\n` },
  });
  try {
    await runTranscript(policy, FIRST_PROBES);
    assert.deepEqual(nexthop.probes, ['joe@example.com', 'nobody@example.com']);
    assert.deepEqual(await nexthop.sessions[0], ['EHLO mx1.example.net', 'MAIL FROM:<>', 'RCPT TO:<joe@example.com>', 'RSET', 'QUIT'], 'the probe dialogue: no DATA, then RSET and QUIT');
    const verified = policy.logs.filter((line) => line['event'] === 'address verify');
    assert.deepEqual(verified.map((line) => [line['to'], line['nexthop'], line['status']]), [
      ['joe@example.com', list.replace(' ', ''), 'deliverable'],
      ['nobody@example.com', list.replace(' ', ''), 'undeliverable'],
    ]);
  } finally {
    await policy.close();
    await nexthop.close();
  }
});

test('reject_unverified_recipient: probes per nexthop are limited and counted; beyond the limit 450 at once', async () => {
  const hanging = createServer(() => undefined); // accepts and never greets
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const address = hanging.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const policy = await startPolicy({
    mainCf: `${BASE}transport_maps = inline:{ example.com=smtp:[127.0.0.1]:${port} }\nsmtpd_recipient_restrictions = reject_unverified_recipient\naddress_verify_poll_count = 1\naddress_verify_poll_delay = 50ms\nmxscreen_verify_probe_limit = 2\nsmtpd_timeout = 500ms`,
  });
  try {
    const lines = ['a', 'b', 'c', 'd'].map((user) => `C: RCPT TO:<${user}@example.com>\nS: 450 4.1.1 <${user}@example.com>: Recipient address rejected: unverified address: Address verification in progress`);
    await runTranscript(policy, `${SESSION}${lines.join('\n')}`);
    const values = (await policy.metrics.addressVerifyProbes.get()).values;
    assert.equal(values.find((value) => value.labels.result === 'started')?.value, 2);
    assert.equal(values.find((value) => value.labels.result === 'limited')?.value, 2);
  } finally {
    await policy.close();
    hanging.close();
  }
});

const VERIFY = {
  positiveExpire: 31 * 86_400_000, positiveRefresh: 7 * 86_400_000, negativeExpire: 3 * 86_400_000, negativeRefresh: 3 * 3_600_000,
  pollCount: 3, pollDelay: 10, rejectCode: 450, cacheSize: 100, probeLimit: 10,
};

test('verify cache: kept in the queue directory across a restart; expiry and refresh follow verify(8)', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-verify-'));
  const clock = new ManualClock();
  const log = createLogger({ level: 'silent' });
  try {
    const probes: string[] = [];
    const probe = async (recipient: string): Promise<ProbeResult> => {
      probes.push(recipient);
      return recipient.startsWith('joe') ? { status: 'deliverable', text: 'ok' } : { status: 'undeliverable', text: '550 no' };
    };
    const first = new RecipientVerifier(VERIFY, { probe, nexthopOf: () => 'n', clock, log, directory });
    assert.deepEqual(await first.verify('joe@example.com'), { kind: 'deliverable' });
    assert.deepEqual(await first.verify('bob@example.com'), { kind: 'undeliverable', text: '550 no' });
    await first.flushed();
    assert.ok(existsSync(join(directory, 'verify_cache.json')));
    const restarted = new RecipientVerifier(VERIFY, { probe, nexthopOf: () => 'n', clock, log, directory });
    assert.deepEqual(await restarted.verify('joe@example.com'), { kind: 'deliverable' });
    assert.equal(probes.length, 2, 'answered from the saved cache');
    clock.advance(3 * 3_600_000); // negative refresh: answer from cache, probe in the background
    assert.deepEqual(await restarted.verify('bob@example.com'), { kind: 'undeliverable', text: '550 no' });
    assert.equal(probes.length, 3, 'the refresh probe has started');
    clock.advance(31 * 86_400_000); // past positive expiry: a new probe decides
    assert.deepEqual(await restarted.verify('joe@example.com'), { kind: 'deliverable' });
    assert.equal(probes.length, 4);
    await restarted.flushed();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

// smtpd(8) parameters proven through an SMTP session on loopback: each test sets the
// parameter away from its default in main.cf and shows the effect a client sees, so the
// test fails when the parameter is ignored. Recipient verification probes go to the fake
// mailbox server (test/fakes/mailbox-server.ts), time moves on a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient } from '../fakes/scripted-client.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { ManualClock } from '../queue/manual-clock.js';
import { until } from '../fakes/wait-until.js';
import { lastLine, runTranscript, startPolicy, type PolicyUnderTest } from './transcript.js';

const RELAY = 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination';
const SESSION = 'C: EHLO client.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\n';

async function withPolicy(options: Parameters<typeof startPolicy>[0], run: (policy: PolicyUnderTest) => Promise<void>): Promise<void> {
  const policy = await startPolicy(options);
  try {
    await run(policy);
  } finally {
    await policy.close();
  }
}

test('smtpd_reject_unlisted_recipient = no: a relay_domains recipient missing from relay_recipient_maps is accepted unless the list says reject_unlisted_recipient', async () => {
  const files = { relay_recipients: 'joe@example.com OK\n' };
  const maps = `${RELAY}\nrelay_recipient_maps = hash:relay_recipients`;
  await withPolicy({ mainCf: `${maps}\nsmtpd_reject_unlisted_recipient = no`, files }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<nobody@example.com>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250`),
  );
  // The default (yes) refuses the same recipient, and with "no" an explicit restriction still does.
  await withPolicy({ mainCf: maps, files }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<nobody@example.com>\nS: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in relay recipient table`),
  );
  await withPolicy({ mainCf: `${maps}\nsmtpd_reject_unlisted_recipient = no\nsmtpd_recipient_restrictions = reject_unlisted_recipient`, files }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<nobody@example.com>\nS: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in relay recipient table`),
  );
});

test('smtpd_helo_restrictions with check_helo_access: the listed HELO name (and its subdomains) is refused at RCPT TO, others pass', async () => {
  await withPolicy(
    { mainCf: `${RELAY}\nsmtpd_helo_restrictions = check_helo_access hash:helo_access`, files: { helo_access: 'bad.example REJECT You are not welcome\n' } },
    async (policy) => {
      const refused = 'S: 554 5.7.1 <bad.example>: Helo command rejected: You are not welcome';
      await runTranscript(policy, `C: EHLO bad.example\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\n${refused}`);
      // smtpd_access_maps is in parent_domain_matches_subdomains by default: bad.example matches its subdomains.
      await runTranscript(policy, `C: EHLO host.bad.example\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 554 5.7.1 <host.bad.example>: Helo command rejected: You are not welcome`);
      await runTranscript(policy, `C: EHLO good.example\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250`);
      const reject = policy.logs.find((line) => line.event === 'NOQUEUE: reject');
      assert.match(String(reject?.msg), /Helo command rejected: You are not welcome; from=<a@sender\.example> to=<joe@example\.com> proto=ESMTP helo=<bad\.example>/);
    },
  );
});

test('smtpd_data_restrictions: DATA is refused before 354 for the listed client and nothing is queued; others get 354', async () => {
  await withPolicy(
    { mainCf: `${RELAY}\nsmtpd_data_restrictions = check_client_access cidr:data_clients`, files: { data_clients: '127.0.0.3/32 REJECT No data from you\n' } },
    async (policy) => {
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: No data from you\nC: QUIT\nS: 221`, '127.0.0.3');
      assert.deepEqual(policy.queued, []);
      assert.deepEqual(readdirSync(join(policy.directory, 'queue', 'incoming')), []);
      const reject = policy.logs.find((line) => line.event === 'NOQUEUE: reject');
      assert.match(String(reject?.msg), /^NOQUEUE: reject: DATA from \[127\.0\.0\.3\]:\d+: 554 5\.7\.1 .*Client host rejected: No data from you/);
      await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 354\nC: Subject: hi\nC:\nC: hello\nC: .\nS~ ^250 2\\.0\\.0 Ok: queued as `, '127.0.0.2');
      assert.equal(policy.queued.length, 1);
    },
  );
});

test('smtpd_timeout: a client that stops talking gets 421 and is disconnected', async () => {
  await withPolicy({ mainCf: `${RELAY}\nsmtpd_timeout = 200ms` }, async (policy) => {
    const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
    try {
      assert.match(await lastLine(client), /^220 /);
      client.send('EHLO client.example.org\r\n');
      await client.waitForCode(250, 2000);
      // Silence: with the default smtpd_timeout (300s) nothing would come within this bound.
      const reply = await client.waitForCode(421, 5000);
      // smtpd(8)'s words: smtpd_timeout "421 4.4.2 myhostname Error: timeout exceeded".
      assert.match(reply.lines[reply.lines.length - 1]!, /^421 4\.4\.2 \S+ Error: timeout exceeded$/);
      await client.waitForEnd(5000);
    } finally {
      await client.close();
    }
  });
});

test('smtpd_policy_service_default_action: a policy server that cannot be reached gives the configured action', async () => {
  // unix:private/… is relative to queue_directory; nothing listens there, so the connect fails at once.
  const list = `${RELAY}\nsmtpd_recipient_restrictions = check_policy_service unix:private/policyd`;
  await withPolicy({ mainCf: `${list}\nsmtpd_policy_service_default_action = DUNNO` }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250`),
  );
  await withPolicy({ mainCf: `${list}\nsmtpd_policy_service_default_action = 550 5.7.0 Policy service unavailable` }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 550 5.7.0 <joe@example.com>: Recipient address rejected: Policy service unavailable`),
  );
  // The default, for comparison.
  await withPolicy({ mainCf: list }, (policy) =>
    runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 451 4.3.5 <joe@example.com>: Recipient address rejected: Server configuration problem`),
  );
});

/** main.cf of a policy stage that verifies example.com recipients at `mailbox`. */
function verifying(mailbox: MailboxServer, lines: readonly string[]): string {
  return [RELAY, `transport_maps = inline:{ example.com=${mailbox.nexthop} }`, 'smtpd_recipient_restrictions = reject_unverified_recipient', ...lines].join('\n');
}

async function withMailbox(run: (mailbox: MailboxServer) => Promise<void>): Promise<void> {
  const mailbox = await MailboxServer.start();
  try {
    await run(mailbox);
  } finally {
    await mailbox.close();
  }
}

const REFUSED = 'Recipient address rejected: undeliverable address: host [127.0.0.1] said: 550 5.1.1 Recipient address rejected: User unknown';

test('unverified_recipient_reject_code = 550: a recipient the nexthop refused gets 550 5.1.1 (default 450 4.1.1)', async () => {
  await withMailbox(async (mailbox) => {
    mailbox.setMode('reject', 'gone@example.com');
    await withPolicy({ mainCf: verifying(mailbox, ['unverified_recipient_reject_code = 550']) }, (policy) =>
      runTranscript(policy, `${SESSION}C: RCPT TO:<gone@example.com>\nS: 550 5.1.1 <gone@example.com>: ${REFUSED}\nC: RCPT TO:<joe@example.com>\nS: 250`),
    );
    await withPolicy({ mainCf: verifying(mailbox, []) }, (policy) => runTranscript(policy, `${SESSION}C: RCPT TO:<gone@example.com>\nS: 450 4.1.1 <gone@example.com>: ${REFUSED}`));
  });
});

test('address_verify_*_refresh_time and _expire_time: a refresh probes in the background, an expired result is probed again before the answer', async () => {
  await withMailbox(async (mailbox) => {
    mailbox.setMode('reject', 'gone@example.com');
    const clock = new ManualClock();
    const mainCf = verifying(mailbox, [
      'address_verify_positive_refresh_time = 1h',
      'address_verify_positive_expire_time = 2h',
      'address_verify_negative_refresh_time = 10m',
      'address_verify_negative_expire_time = 20m',
    ]);
    await withPolicy({ mainCf, clock }, async (policy) => {
      const probes = () => policy.logs.filter((line) => line.event === 'address verify').length;
      const rcpt = (address: string, reply: string) => runTranscript(policy, `${SESSION}C: RCPT TO:<${address}>\nS: ${reply}`);
      await rcpt('joe@example.com', '250');
      await rcpt('gone@example.com', '450 4.1.1');
      assert.equal(probes(), 2);

      clock.advance(10 * 60_000); // gone's result is due for a refresh, joe's is not
      await rcpt('joe@example.com', '250');
      await rcpt('gone@example.com', '450 4.1.1');
      await until('the background probe of gone@example.com', () => probes() === 3);
      assert.equal(policy.logs.filter((line) => line.event === 'address verify').at(-1)?.to, 'gone@example.com');

      clock.advance(50 * 60_000); // 1h: joe is refreshed in the background, still answered 250
      await rcpt('joe@example.com', '250');
      await until('the background probe of joe@example.com', () => probes() === 4);

      // 3h: both results are past their expiry (joe refreshed at 1h + 2h, gone at 10m + 20m);
      // the nexthop changed its mind, and RCPT waits for the new probe.
      mailbox.setMode('reject', 'joe@example.com');
      mailbox.setMode('accept', 'gone@example.com');
      clock.advance(2 * 60 * 60_000);
      await rcpt('joe@example.com', '450 4.1.1 <joe@example.com>: Recipient address rejected: undeliverable address');
      await rcpt('gone@example.com', '250');
      assert.equal(probes(), 6);
    });
  });
});

test('mxscreen_verify_cache_size: the least recently used result is dropped and probed again', async () => {
  await withMailbox(async (mailbox) => {
    const count = async (mainCf: string): Promise<number> => {
      let probes = 0;
      await withPolicy({ mainCf }, async (policy) => {
        await runTranscript(policy, `${SESSION}C: RCPT TO:<joe@example.com>\nS: 250\nC: RCPT TO:<ann@example.com>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250`);
        probes = policy.logs.filter((line) => line.event === 'address verify').length;
      });
      return probes;
    };
    assert.equal(await count(verifying(mailbox, ['mxscreen_verify_cache_size = 1'])), 3, 'ann pushed joe out of a cache of one');
    assert.equal(await count(verifying(mailbox, [])), 2, 'the default cache keeps both');
  });
});

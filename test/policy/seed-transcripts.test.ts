// Policy transcripts, one per seed configuration (seeds 000, 001, 002, 004: their main.cf
// lines copied as the guides write them), plus the classic open-relay test set. The
// policy stage runs on loopback with the fake DNS server; clients bind 127.0.0.x to play
// distinct hosts (mynetworks is 127.0.0.1/32 only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { runTranscript, startPolicy } from './transcript.js';
import { startPolicyServer } from './policy-server.js';

async function withDns<T>(run: (dns: FakeDns) => Promise<T>): Promise<T> {
  const dns = await startDnsServer();
  try {
    return await run(dns);
  } finally {
    await dns.close();
  }
}

// --- seed 001: "Mail relay, MX backup and spam filtering with Postfix" -------------------

const SEED_001 = `
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions =
  permit_mynetworks,
  reject_unauth_destination
relay_domains = hash:transport
transport_maps = hash:transport
relay_recipient_maps = hash:relay_recipients
message_size_limit = 25600000
maximal_queue_lifetime = 10d
smtpd_recipient_restrictions =
  reject_unauth_pipelining,
  reject_non_fqdn_recipient,
  reject_unknown_recipient_domain,
  permit_mynetworks,
  check_client_access cidr:client_access.cidr,
  reject_unknown_reverse_client_hostname,
  reject_rbl_client zen.spamhaus.org=127.0.0.10,
  reject_rbl_client zen.spamhaus.org=127.0.0.11,
  reject_rbl_client zen.spamhaus.org,
  reject_rbl_client b.barracudacentral.org,
  reject_unlisted_recipient,
  check_policy_service unix:private/policyd-spf,
  permit
`;

const SEED_001_FILES = {
  transport: 'example.com    smtp:mail.example.com:25\n',
  relay_recipients: 'info@example.com    OK\njoe@example.com     OK\n',
  'client_access.cidr': '127.0.0.5/32 OK\n',
};

async function seed001(run: (policy: Awaited<ReturnType<typeof startPolicy>>, dns: FakeDns, spf: Awaited<ReturnType<typeof startPolicyServer>>) => Promise<void>): Promise<void> {
  await withDns(async (dns) => {
    dns.setMx('example.com', [{ exchange: 'mail.example.com', priority: 10 }]);
    dns.setA('mail.example.com', ['192.0.2.25']);
    dns.setPtr('127.0.0.2', ['client.example.org']);
    dns.setPtr('127.0.0.4', ['listed.example.org']);
    dns.listDnsbl('zen.spamhaus.org', '127.0.0.4', ['127.0.0.10']);
    dns.setPtr('127.0.0.6', ['barracuda.example.org']);
    dns.listDnsbl('b.barracudacentral.org', '127.0.0.6', ['127.0.0.2']);
    const policy = await startPolicy({ mainCf: SEED_001, files: SEED_001_FILES, dns });
    mkdirSync(join(policy.directory, 'queue', 'private'), { recursive: true });
    const spf = await startPolicyServer(
      (request) => (request.sender === 'forger@spf-fail.example' ? '550 5.7.23 Message rejected due to: SPF fail - not authorized' : 'PREPEND Received-SPF: Pass (mailfrom) identity=mailfrom'),
      { path: join(policy.directory, 'queue', 'private', 'policyd-spf') },
    );
    try {
      await run(policy, dns, spf);
    } finally {
      await spf.close();
      await policy.close();
    }
  });
}

test('seed 001: a known client with a PTR reaches a listed recipient; unknown users and foreign domains are refused', async () => {
  await seed001(async (policy, _dns, spf) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example.org
      S: 250
      C: MAIL FROM:<alice@sender.example>
      S: 250
      C: RCPT TO:<info@example.com>
      S: 250
      C: RCPT TO:<nobody@example.com>
      S: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in relay recipient table
      C: RCPT TO:<x@elsewhere.example>
      S: 554 5.7.1 <x@elsewhere.example>: Relay access denied
      C: QUIT
      S: 221`,
      '127.0.0.2',
    );
    const request = spf.requests[0]!;
    assert.equal(request.request, 'smtpd_access_policy');
    assert.equal(request.protocol_state, 'RCPT');
    assert.equal(request.client_address, '127.0.0.2');
    assert.equal(request.client_name, 'unknown'); // the PTR name has no A record back
    assert.equal(request.reverse_client_name, 'client.example.org');
    assert.equal(request.sender, 'alice@sender.example');
    assert.equal(request.recipient, 'info@example.com');
    assert.equal(request.helo_name, 'client.example.org');
  });
});

test('seed 001: no PTR record → 450 4.7.1 cannot find your reverse hostname', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO nameless.example.org
      S: 250
      C: MAIL FROM:<alice@sender.example>
      S: 250
      C: RCPT TO:<info@example.com>
      S: 450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.3]`,
      '127.0.0.3',
    );
    assert.ok(policy.logs.some((line) => line.event === 'NOQUEUE: reject' && String(line.msg).includes('RCPT from [127.0.0.3]')));
  });
});

test('seed 001: client_access.cidr OK skips the PTR and DNSBL checks', async () => {
  await seed001(async (policy) => {
    await runTranscript(policy, `C: EHLO trusted.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250`, '127.0.0.5');
  });
});

test('seed 001: Spamhaus 127.0.0.10 listing → 554 5.7.1 blocked using zen.spamhaus.org', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `C: EHLO listed.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 554 5.7.1 Service unavailable; Client host [127.0.0.4] blocked using zen.spamhaus.org`,
      '127.0.0.4',
    );
  });
});

test('seed 001: Barracuda listing → 554 5.7.1 blocked using b.barracudacentral.org', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `C: EHLO b.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 554 5.7.1 Service unavailable; Client host [127.0.0.6] blocked using b.barracudacentral.org`,
      '127.0.0.6',
    );
  });
});

test('seed 001: the SPF policy daemon\'s reject is the reply; its PREPEND reaches the queued message', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example.org
      S: 250
      C: MAIL FROM:<forger@spf-fail.example>
      S: 250
      C: RCPT TO:<info@example.com>
      S: 550 5.7.23 <info@example.com>: Recipient address rejected: Message rejected due to: SPF fail - not authorized
      C: RSET
      S: 250
      C: MAIL FROM:<alice@sender.example>
      S: 250
      C: RCPT TO:<info@example.com>
      S: 250
      C: DATA
      S: 354
      C: Subject: hi
      C:
      C: hello
      C: .
      S: 250 2.0.0 Ok: queued as`,
      '127.0.0.2',
    );
    const id = policy.queued[0]!;
    const head = await policy.spool.verify('incoming', id);
    const chunks: Buffer[] = [];
    for await (const chunk of policy.spool.openBody('incoming', head)) chunks.push(chunk as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /^Received-SPF: Pass \(mailfrom\) identity=mailfrom\r\nReceived: from client\.example\.org/);
  });
});

test('seed 001: mynetworks relays anywhere but an unknown recipient domain still gets 450 4.1.2', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO localhost.example
      S: 250
      C: MAIL FROM:<root@mx1.example.net>
      S: 250
      C: RCPT TO:<someone@elsewhere.example>
      S: 450 4.1.2 <someone@elsewhere.example>: Recipient address rejected: Domain not found`,
      '127.0.0.1',
    );
  });
});

test('seed 001: reject_non_fqdn_recipient → 504 5.5.2', async () => {
  await seed001(async (policy) => {
    await runTranscript(policy, `C: EHLO localhost.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@localhost>\nS: 504 5.5.2 <joe@localhost>: Recipient address rejected: need fully-qualified address`, '127.0.0.1');
  });
});

test('seed 001: reject_unauth_pipelining refuses a HELO client that pipelines', async () => {
  await seed001(async (policy) => {
    await runTranscript(
      policy,
      `
      C: HELO client.example.org
      S: 250
      P: MAIL FROM:<a@sender.example> | RCPT TO:<info@example.com>
      S: 250
      S: 503 5.5.0 <RCPT>: Recipient address rejected: Improper use of SMTP command pipelining`,
      '127.0.0.2',
    );
  });
});

// --- seed 000: "Caching inbound email on LAN … only from the external mail provider" ----

const SEED_000 = `
mynetworks = 127.0.0.1/32
relay_domains = example.com
smtpd_helo_restrictions =

smtpd_client_restrictions =
        check_client_access hash:$config_directory/tables/smtpd_client_access
        check_client_access cidr:$config_directory/tables/smtpd_client_access.cidr

smtpd_etrn_restrictions =

smtpd_sender_restrictions =

smtpd_recipient_restrictions =
        check_recipient_access hash:$config_directory/tables/smtpd_recipient_access
        #the following also permits mynetworks!
        check_recipient_access pcre:$config_directory/tables/smtpd_recipient_access.pcre

smtpd_data_restrictions =

smtpd_restriction_classes = internal, public
internal = permit_mynetworks, reject
public = permit
`;

const SEED_000_FILES = {
  'tables/smtpd_client_access': '# some individual external server I want to allow to connect\n127.0.0.7 PERMIT\n',
  'tables/smtpd_client_access.cidr': '127.0.0.8/32      OK\n127.0.0.9/32      OK\n',
  'tables/smtpd_recipient_access': 'nullroute@example.com  PERMIT\n',
  'tables/smtpd_recipient_access.pcre': 'if !/^(nullroute|abuse|postmaster|user1|user2|user3)@/\n/^/ internal\nendif\n',
};

test('seed 000: the restriction classes: listed users accept from outside, others are "internal" (mynetworks only)', async () => {
  const policy = await startPolicy({ mainCf: SEED_000, files: SEED_000_FILES });
  try {
    await runTranscript(
      policy,
      `
      C: EHLO provider.example
      S: 250
      C: MAIL FROM:<a@sender.example>
      S: 250
      C: RCPT TO:<user1@example.com>
      S: 250
      C: RCPT TO:<secret@example.com>
      S: 554 5.7.1 <secret@example.com>: Recipient address rejected: Access denied
      C: RCPT TO:<nullroute@example.com>
      S: 250`,
      '127.0.0.8',
    );
    await runTranscript(policy, `C: EHLO lan.example\nS: 250\nC: MAIL FROM:<a@lan.example>\nS: 250\nC: RCPT TO:<secret@example.com>\nS: 250`, '127.0.0.1');
  } finally {
    await policy.close();
  }
});

test('seed 000: an unknown restriction class name in main.cf is a configuration error with file:line', async () => {
  await assert.rejects(
    startPolicy({ mainCf: 'smtpd_recipient_restrictions = permit_mynetworks, internal\n' }),
    (error: { code?: string; problems?: { line: number; message: string }[] }) =>
      error.code === 'ERR_CONFIG' && error.problems?.some((problem) => problem.line === 3 && problem.message.includes('unknown restriction "internal"')) === true,
  );
});

test('seed 000: a class named in smtpd_restriction_classes but never defined is an error', async () => {
  await assert.rejects(startPolicy({ mainCf: 'smtpd_restriction_classes = internal\n' }), { code: 'ERR_CONFIG' });
});

// --- seed 002: "ignore spambots which don't respect the SMTP specs" --------------------

const SEED_002 = `
mynetworks = 127.0.0.1/32
relay_domains = example.com
smtpd_helo_required          = yes
strict_rfc821_envelopes      = yes
disable_vrfy_command         = yes

smtpd_helo_restrictions      =

smtpd_recipient_restrictions =
                               reject_invalid_hostname,
                               reject_non_fqdn_hostname,
                               reject_non_fqdn_sender,
                               reject_non_fqdn_recipient,
                               permit_mynetworks,
                               reject_unauth_destination
`;

test('seed 002: HELO required, strict envelopes, VRFY disabled, non-FQDN HELO and sender refused', async () => {
  const policy = await startPolicy({ mainCf: SEED_002 });
  try {
    await runTranscript(
      policy,
      `
      C: MAIL FROM:<a@sender.example>
      S: 503 5.5.1 Error: send HELO/EHLO first
      C: VRFY joe@example.com
      S: 502 5.5.1 VRFY command is disabled
      C: HELO bot
      S: 250
      C: MAIL FROM: a@sender.example
      S: 501 5.1.7 Bad sender address syntax
      C: MAIL FROM:<a@sender.example>
      S: 250
      C: RCPT TO: joe@example.com
      S: 501 5.1.3 Bad recipient address syntax
      C: RCPT TO:<joe@example.com>
      S: 504 5.5.2 <bot>: Helo command rejected: need fully-qualified hostname`,
      '127.0.0.2',
    );
    await runTranscript(
      policy,
      `
      C: EHLO host.example.org
      S: 250
      C: MAIL FROM:<a@sender>
      S: 250
      C: RCPT TO:<joe@example.com>
      S: 504 5.5.2 <a@sender>: Sender address rejected: need fully-qualified address`,
      '127.0.0.2',
    );
  } finally {
    await policy.close();
  }
});

test('seed 002: an invalid HELO name → 501 5.5.2 Invalid name', async () => {
  const policy = await startPolicy({ mainCf: SEED_002 });
  try {
    await runTranscript(policy, `C: HELO bad_name!.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 501 5.5.2 <bad_name!.example>: Helo command rejected: Invalid name`, '127.0.0.2');
    await runTranscript(policy, `C: HELO [999.1.1.1]\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 501 5.5.2 <[999.1.1.1]>: Helo command rejected: Invalid name`, '127.0.0.2');
  } finally {
    await policy.close();
  }
});

test('smtpd_helo_required = no (Postfix default): MAIL before HELO is accepted', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32' });
  try {
    await runTranscript(policy, `C: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250`, '127.0.0.2');
  } finally {
    await policy.close();
  }
});

// --- seed 004: "Postfix email firewall/gateway" -----------------------------------------

const SEED_004 = `
virtual_alias_maps = hash:virtual
mynetworks = 127.0.0.0/32 12.34.56.0/24
relay_domains = example.com
parent_domain_matches_subdomains =
    debug_peer_list smtpd_access_maps
smtpd_recipient_restrictions =
    permit_mynetworks reject_unauth_destination
relay_recipient_maps = hash:relay_recipients
transport_maps = hash:transport
`;

const SEED_004_FILES = {
  virtual: 'postmaster      postmaster@inside.example.com\nabuse           abuse@inside.example.com\n',
  relay_recipients: 'user1@example.com   x\nuser2@example.com   x\n',
  transport: 'example.com   smtp:[inside-gateway.example.com]\n',
};

test('seed 004: mail for example.com is accepted, anything.example.com is not, postmaster@[firewall] goes inside', async () => {
  const policy = await startPolicy({ mainCf: SEED_004, files: SEED_004_FILES });
  try {
    await runTranscript(
      policy,
      `
      C: EHLO outside.example.org
      S: 250
      C: MAIL FROM:<a@outside.example.org>
      S: 250
      C: RCPT TO:<user1@example.com>
      S: 250
      C: RCPT TO:<user1@anything.example.com>
      S: 454 4.7.1 <user1@anything.example.com>: Relay access denied
      C: RCPT TO:<user9@example.com>
      S: 550 5.1.1 <user9@example.com>: Recipient address rejected: User unknown in relay recipient table
      C: RCPT TO:<postmaster@[127.0.0.1]>
      S: 250
      C: RCPT TO:<abuse@[127.0.0.1]>
      S: 250
      C: RCPT TO:<root@[127.0.0.1]>
      S: 550 5.1.1 <root@[127.0.0.1]>: Recipient address rejected: User unknown in virtual alias table
      C: DATA
      S: 354
      C: Subject: x
      C:
      C: .
      S: 250 2.0.0 Ok: queued as`,
      '127.0.0.2',
    );
    const head = await policy.spool.verify('incoming', policy.queued[0]!);
    assert.deepEqual(
      head.envelope.recipients.map((rcpt) => rcpt.address),
      ['user1@example.com', 'postmaster@inside.example.com', 'abuse@inside.example.com'],
    );
  } finally {
    await policy.close();
  }
});

// --- the open-relay test set -------------------------------------------------------------

const RELAY_TRICKS = [
  'user%elsewhere.example@example.com',
  'elsewhere.example!user@example.com',
  'user@elsewhere.example',
  '@example.com:user@elsewhere.example',
  '"user@elsewhere.example"@example.com',
  '"user%elsewhere.example"@example.com',
  'user@[192.0.2.1]',
  'user@elsewhere.example.',
  'user@ELSEWHERE.example',
  'user@example.com.elsewhere.example',
  'user@elsewhere.example@example.com',
  'elsewhere.example!user',
  'user%elsewhere.example',
  'user@[127.0.0.2]',
];

test('open-relay test set: none of the classic tricks relays, with the seed 001 and seed 004 configurations', async () => {
  for (const [mainCf, files] of [
    [SEED_001.replace(/^\s*check_policy_service.*$/m, ''), SEED_001_FILES],
    [SEED_004, SEED_004_FILES],
  ] as const) {
    await withDns(async (dns) => {
      dns.setPtr('127.0.0.2', ['client.example.org']);
      dns.setMx('example.com', [{ exchange: 'mail.example.com', priority: 10 }]);
      const policy = await startPolicy({ mainCf, files: { ...files, relay_recipients: '@example.com OK\n' }, dns });
      try {
        for (const trick of RELAY_TRICKS) {
          // A relay attempt pushes on to DATA and its message: no 354, the text is not mail
          // (a header sent as a command ends the session, as in smtpd(8)).
          const data = 'C: DATA\nS~ ^554 5.5.1 Error: no valid recipients\nC: Subject: relayed\nS: 221 2.7.0 Error: I can break rules, too. Goodbye.';
          await runTranscript(policy, `C: EHLO client.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\nC: RCPT TO:<${trick}>\nS~ ^[45]\\d\\d \n${data}`, '127.0.0.2').catch((error: Error) => {
            throw new Error(`${trick}: ${error.message}`);
          });
        }
        assert.equal(policy.queued.length, 0);
        assert.equal(policy.logs.filter((line) => line.event === 'queued').length, 0);
      } finally {
        await policy.close();
      }
    });
  }
});

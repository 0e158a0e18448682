// Protocol strictness of the policy stage's SMTP server, found by a hostile-input battery:
// MAIL/RCPT parameters (555 5.5.4; DSN's RET/ENVID/NOTIFY/ORCPT with Postfix's 501 5.5.4
// syntax replies, and what the queue keeps of them), bare CR (501 5.5.2), non-ASCII addresses without
// SMTPUTF8 (553 5.6.7), invalid UTF-8 (500 5.5.2), smtpd_recipient_limit counting every
// accepted RCPT. Each case runs through a real session on loopback and checks that the
// next valid command still works and that nothing is logged as NOQUEUE (Postfix logs none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { mailFromFault, rcptToFault, splitAddressCommand } from '../../src/policy/esmtp-parameters.js';
import { lastLine, runTranscript, startPolicy, type PolicyUnderTest } from './transcript.js';

const WAIT = 2000;
// Many refusals in one session: keep the tarpit (smtpd_soft_error_limit) and the hard limit out of the way.
const MAIN_CF = 'relay_domains = example.com\nsmtpd_soft_error_limit = 50\nsmtpd_hard_error_limit = 100';

/** Runs `body` against a policy stage started with `mainCf`, closed however `body` ends. */
async function withPolicy(mainCf: string, body: (policy: PolicyUnderTest) => Promise<void>): Promise<void> {
  const policy = await startPolicy({ mainCf });
  try {
    await body(policy);
  } finally {
    await policy.close();
  }
}

/** Runs `script` on a client that has read the greeting; the client is closed however the script ends. */
async function withClient(policy: PolicyUnderTest, script: (client: ScriptedClient) => Promise<void>): Promise<void> {
  const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
  try {
    assert.match(await lastLine(client), /^220 /);
    await script(client);
  } finally {
    await client.close();
  }
}

/** Sends `line` (text, or bytes for invalid UTF-8) with CRLF and returns the last line of the reply. */
async function say(client: ScriptedClient, line: string | Buffer): Promise<string> {
  client.send(typeof line === 'string' ? `${line}\r\n` : Buffer.concat([line, Buffer.from('\r\n')]));
  return lastLine(client);
}

async function sendMessage(client: ScriptedClient): Promise<string> {
  assert.match(await say(client, 'DATA'), /^354 /);
  return say(client, 'Subject: test\r\n\r\nbody\r\n.');
}

function noqueueLines(policy: PolicyUnderTest): unknown[] {
  return policy.logs.filter((line) => line.event === 'NOQUEUE: reject');
}

async function queuedEnvelope(policy: PolicyUnderTest, id: string): Promise<{ sender: string; recipients: string[] }> {
  const { envelope } = await policy.spool.verify('incoming', id);
  return { sender: envelope.sender, recipients: envelope.recipients.map((rcpt) => rcpt.address) };
}

test('the replies smtp-server composes for a successful command are in smtpd(8)\'s words, with RFC 3463 codes', () =>
  withPolicy(MAIN_CF, (policy) =>
    runTranscript(
      policy,
      `C: EHLO client.example
      S: 250
      C: NOOP
      S: 250 2.0.0 Ok
      C: MAIL FROM:<a@sender.example>
      S: 250 2.1.0 Ok
      C: RCPT TO:<joe@example.com>
      S: 250 2.1.5 Ok
      C: RSET
      S: 250 2.0.0 Ok
      C: QUIT
      S: 221 2.0.0 Bye`,
    ),
  ),
);

/** The end of a transcript: DATA, a short message, its 250. */
const SEND_MESSAGE = 'C: DATA\nS: 354\nC: Subject: test\nC:\nC: body\nC: .\nS: 250 2.0.0 Ok: queued as';

/** Exactly one message was queued, with `envelope`, and no command was logged as a NOQUEUE reject. */
async function assertQueuedOnce(policy: PolicyUnderTest, envelope: { sender: string; recipients: string[] }): Promise<void> {
  assert.equal(policy.queued.length, 1);
  assert.deepEqual(await queuedEnvelope(policy, policy.queued[0]!), envelope);
  assert.deepEqual(noqueueLines(policy), []);
}

test('EHLO offers 8BITMIME, SMTPUTF8, SIZE and DSN, not REQUIRETLS or AUTH', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await withClient(policy, async (client) => {
      client.send('EHLO client.example\r\n');
      const ehlo = (await client.readReply(WAIT)).lines.map((line) => line.slice(4));
      for (const keyword of ['8BITMIME', 'SMTPUTF8', 'PIPELINING', 'DSN']) assert.ok(ehlo.includes(keyword), ehlo.join('|'));
      assert.ok(ehlo.some((line) => /^SIZE \d+$/.test(line)), ehlo.join('|'));
      assert.ok(!ehlo.some((line) => /^(REQUIRETLS|AUTH)/.test(line)), ehlo.join('|'));
    });
  }),
);

test('MAIL and RCPT parameters: unknown or of an extension not offered → 555 5.5.4 Unsupported option, the session goes on', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example
      S: 250
      C: MAIL FROM:<a@sender.example> FOO=bar
      S: 555 5.5.4 Unsupported option: FOO=bar
      # the first bad parameter answers, as Postfix walks them in order
      C: MAIL FROM:<a@sender.example> SIZE=100 RET=FULL BAR
      S: 555 5.5.4 Unsupported option: BAR
      C: MAIL FROM:<a@sender.example> ENVID=QQ314159 SIZE=1x
      S: 501 5.5.4 Bad message size syntax
      C: MAIL FROM:<a@sender.example> NOTIFY=NEVER
      S: 555 5.5.4 Unsupported option: NOTIFY=NEVER
      C: MAIL FROM:<a@sender.example> AUTH=<>
      S: 555 5.5.4 Unsupported option: AUTH=<>
      C: MAIL FROM:<a@sender.example> REQUIRETLS
      S: 555 5.5.4 Unsupported option: REQUIRETLS
      C: MAIL FROM:<a@sender.example> BODY=BINARYMIME
      S: 555 5.5.4 Unsupported option: BODY=BINARYMIME
      C: MAIL FROM:<a@sender.example> SMTPUTF8=yes
      S: 555 5.5.4 Unsupported option: SMTPUTF8=yes
      C: MAIL FROM:<a@sender.example> SIZE
      S: 555 5.5.4 Unsupported option: SIZE
      C: MAIL FROM:<a@sender.example> SIZE=12k
      S: 501 5.5.4 Bad message size syntax
      C: MAIL FROM:<a@sender.example> SIZE=20000000
      S: 552 5.3.4 Message size exceeds fixed limit
      C: MAIL FROM:<bad address
      S: 501 5.1.7 Bad sender address syntax
      C: MAIL FROM:<a@sender.example> size=100 body=8bitmime smtputf8
      S: 250 2.1.0 Ok
      C: MAIL FROM:<b@sender.example> FOO=bar
      S: 503
      C: RCPT TO:<joe@example.com> FOO=bar
      S: 555 5.5.4 Unsupported option: FOO=bar
      C: RCPT TO:<joe@example.com> NOTIFY=SUCCESS,FAILURE RET=FULL
      S: 555 5.5.4 Unsupported option: RET=FULL
      C: RCPT TO:<joe@example.com> ENVID=x
      S: 555 5.5.4 Unsupported option: ENVID=x
      C: RCPT TO:<>
      S: 501 5.1.3 Bad recipient address syntax
      C: RCPT TO:<joe@example.com>
      S: 250 2.1.5 Ok
      ${SEND_MESSAGE}`,
    );
    await assertQueuedOnce(policy, { sender: 'a@sender.example', recipients: ['joe@example.com'] });
  }),
);

test('DSN parameters: RET, ENVID, NOTIFY and ORCPT with Postfix smtpd\'s 501 5.5.4 replies for bad syntax, the session goes on', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example
      S: 250
      C: MAIL FROM:<a@sender.example> RET=BOTH
      S: 501 5.5.4 Bad RET parameter syntax
      C: MAIL FROM:<a@sender.example> RET=
      S: 501 5.5.4 Bad RET parameter syntax
      C: MAIL FROM:<a@sender.example> RET=FULL RET=HDRS
      S: 501 5.5.4 Bad RET parameter syntax
      C: MAIL FROM:<a@sender.example> RET
      S: 555 5.5.4 Unsupported option: RET
      C: MAIL FROM:<a@sender.example> ENVID=
      S: 501 5.5.4 Bad ENVID parameter syntax
      # xtext (RFC 3461 §4): + and two upper case hex digits; no raw =; the value printable ASCII
      C: MAIL FROM:<a@sender.example> ENVID=QQ+2
      S: 501 5.5.4 Bad ENVID parameter syntax
      C: MAIL FROM:<a@sender.example> ENVID=QQ+2b
      S: 501 5.5.4 Bad ENVID parameter syntax
      C: MAIL FROM:<a@sender.example> ENVID=QQ=1
      S: 501 5.5.4 Bad ENVID parameter syntax
      C: MAIL FROM:<a@sender.example> ENVID=QQ+0D+0AX-Injected:+20yes
      S: 501 5.5.4 Bad ENVID parameter syntax
      C: MAIL FROM:<a@sender.example> ENVID=caf+C3+A9
      S: 501 5.5.4 Bad ENVID parameter syntax
      C: MAIL FROM:<a@sender.example> ENVID=x ENVID=y
      S: 501 5.5.4 Bad ENVID parameter syntax
      # the address is judged first, as Postfix does
      C: MAIL FROM:<bad ENVID=QQ+0D
      S: 501 5.1.7 Bad sender address syntax
      C: MAIL FROM:<a@sender.example> ret=hdrs envid=QQ+2B314159+20x
      S: 250 2.1.0 Ok
      C: RCPT TO:<joe@example.com> NOTIFY=NEVER,SUCCESS
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> NOTIFY=
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> NOTIFY=SUCCESS,,DELAY
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> NOTIFY=SUCC+45SS
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> NOTIFY=SOMETIMES
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> NOTIFY=SUCCESS NOTIFY=DELAY
      S: 501 5.5.4 Error: Bad NOTIFY parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=joe@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=;joe@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=rfc822;
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=rfc822;joe+0A@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=rfc822;joe+2@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=rfc+2B822;joe@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<joe@example.com> ORCPT=rfc822;a@example.com ORCPT=rfc822;b@example.com
      S: 501 5.5.4 Error: Bad ORCPT parameter syntax
      C: RCPT TO:<> NOTIFY=SOMETIMES
      S: 501 5.1.3 Bad recipient address syntax
      C: RCPT TO:<joe@example.com> notify=success,delay orcpt=rfc822;Joe+2Bx@Example.COM
      S: 250 2.1.5 Ok
      C: RCPT TO:<ann@example.com> NOTIFY=NEVER ORCPT=rfc822;list+3Dann@example.com
      S: 250 2.1.5 Ok
      C: RCPT TO:<bob@example.com>
      S: 250 2.1.5 Ok
      ${SEND_MESSAGE}`,
    );
    assert.equal(policy.queued.length, 1);
    const { envelope } = await policy.spool.verify('incoming', policy.queued[0]!);
    // Kept decoded, each recipient with its own NOTIFY and ORCPT (RFC 3461 §4).
    assert.deepEqual(envelope.dsn, { envid: 'QQ+314159 x', ret: 'HDRS' });
    assert.deepEqual(envelope.recipients, [
      { address: 'joe@example.com', orcpt: 'rfc822;Joe+x@Example.COM', notify: ['SUCCESS', 'DELAY'] },
      { address: 'ann@example.com', orcpt: 'rfc822;list=ann@example.com', notify: ['NEVER'] },
      { address: 'bob@example.com' },
    ]);
    assert.deepEqual(noqueueLines(policy), []);
  }),
);

test('DSN parameters when the EHLO reply does not offer DSN: 501 5.7.1 DSN support is disabled (Postfix smtpd)', () => {
  const offer = { eightBitMime: true, smtputf8: true, dsn: false };
  const disabled = { code: 501, enhanced: '5.7.1', text: 'DSN support is disabled' };
  assert.deepEqual(mailFromFault(splitAddressCommand('MAIL FROM:<a@sender.example> RET=FULL'), offer, 0), disabled);
  assert.deepEqual(mailFromFault(splitAddressCommand('MAIL FROM:<a@sender.example> ENVID=x'), offer, 0), disabled);
  assert.deepEqual(rcptToFault(splitAddressCommand('RCPT TO:<joe@example.com> NOTIFY=NEVER'), offer, false), disabled);
  assert.deepEqual(rcptToFault(splitAddressCommand('RCPT TO:<joe@example.com> ORCPT=rfc822;joe@example.com'), offer, false), disabled);
  assert.equal(rcptToFault(splitAddressCommand('RCPT TO:<joe@example.com> NOTIFY=NEVER'), { ...offer, dsn: true }, false), undefined);
});

test('a bare CR in MAIL or RCPT parameters → 501 5.5.2, the session goes on', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await withClient(policy, async (client) => {
      assert.match(await say(client, 'EHLO client.example'), /^250 /);
      // smtp-server would split at the CR and take both (known) parameters.
      assert.equal(await say(client, 'MAIL FROM:<a@sender.example> SIZE=100\rBODY=8BITMIME'), '501 5.5.2 Error: bare <CR> received');
      assert.equal(await say(client, 'MAIL FROM:<a@sender.example>\r'), '501 5.5.2 Error: bare <CR> received');
      assert.equal(await say(client, 'MAIL FROM:<a@sender.example> SIZE=100 BODY=8BITMIME'), '250 2.1.0 Ok');
      assert.equal(await say(client, 'RCPT TO:<joe@example.com>\rX'), '501 5.5.2 Error: bare <CR> received');
      assert.equal(await say(client, 'RCPT TO:<joe@example.com>'), '250 2.1.5 Ok');
      assert.match(await sendMessage(client), /^250 2\.0\.0 Ok: queued as /);
      assert.deepEqual(noqueueLines(policy), []);
    });
  }),
);

test('a non-ASCII address without SMTPUTF8 → 553 5.6.7; with SMTPUTF8 it is accepted and queued as written', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example
      S: 250
      C: MAIL FROM:<jöe@sender.example>
      S: 553 5.6.7 Must declare SMTPUTF8 to send unicode address
      C: MAIL FROM:<a@bücher.example> BODY=8BITMIME
      S: 553 5.6.7 Must declare SMTPUTF8 to send unicode address
      # the address as written counts: smtp-server turns xn-- into Unicode, which is no reason to refuse
      C: MAIL FROM:<a@xn--bcher-kva.example>
      S: 250 2.1.0 Ok
      C: RCPT TO:<jöe@example.com>
      S: 553 5.6.7 Must declare SMTPUTF8 to send unicode address
      C: RCPT TO:<joe@example.com>
      S: 250 2.1.5 Ok
      C: RSET
      S: 250
      C: MAIL FROM:<jöe@sender.example> SMTPUTF8
      S: 250 2.1.0 Ok
      C: RCPT TO:<jöe@example.com>
      S: 250 2.1.5 Ok
      ${SEND_MESSAGE}`,
    );
    await assertQueuedOnce(policy, { sender: 'jöe@sender.example', recipients: ['jöe@example.com'] });
  }),
);

test('a command line that is not valid UTF-8 → 500 5.5.2 Error: bad UTF-8 syntax, nothing of it queued, the session goes on', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await withClient(policy, async (client) => {
      const bytes = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));
      const BAD_UTF8 = '500 5.5.2 Error: bad UTF-8 syntax';
      assert.match(await say(client, 'EHLO client.example'), /^250 /);
      assert.equal(await say(client, bytes('MAIL FROM:<j', [0xff], 'oe@sender.example> SMTPUTF8')), BAD_UTF8);
      assert.match(await say(client, 'RCPT TO:<joe@example.com>'), /^503 /); // no transaction began
      // U+FFFD sent as valid UTF-8 is an ordinary character: the bytes are judged, not smtp-server's decoding.
      assert.equal(await say(client, 'MAIL FROM:<\uFFFD@sender.example> SMTPUTF8'), '250 2.1.0 Ok');
      assert.equal(await say(client, bytes('RCPT TO:<', [0xc3, 0x28], 'oe@example.com>')), BAD_UTF8); // truncated sequence
      assert.equal(await say(client, bytes('RCPT TO:<', [0xc0, 0xaf], '@example.com>')), BAD_UTF8); // overlong
      assert.equal(await say(client, bytes('RCPT TO:<', [0xed, 0xa0, 0x80], '@example.com>')), BAD_UTF8); // surrogate
      assert.equal(await say(client, 'RCPT TO:<ann@example.com>'), '250 2.1.5 Ok');
      const done = await sendMessage(client);
      const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(done)?.[1];
      assert.ok(id, done);
      assert.deepEqual(await queuedEnvelope(policy, id), { sender: '\uFFFD@sender.example', recipients: ['ann@example.com'] });
      assert.deepEqual(noqueueLines(policy), []);
    });
  }),
);

test('smtpd_recipient_limit counts every accepted RCPT: 1,000 times the same address, the 1,001st gets 452 4.5.3, the message is queued once', () =>
  withPolicy(MAIN_CF, async (policy) => {
    await withClient(policy, async (client) => {
      assert.match(await say(client, 'EHLO client.example'), /^250 /);
      assert.equal(await say(client, 'MAIL FROM:<a@sender.example>'), '250 2.1.0 Ok');
      client.send('RCPT TO:<joe@example.com>\r\n'.repeat(1000) + 'RCPT TO:<ann@example.com>\r\n');
      for (let i = 0; i < 1000; i++) assert.equal(await lastLine(client), '250 2.1.5 Ok', `RCPT ${i + 1}`);
      assert.equal(await lastLine(client), '452 4.5.3 Error: too many recipients');
      assert.equal(await say(client, 'RCPT TO:<joe@example.com>'), '452 4.5.3 Error: too many recipients');
      const done = await sendMessage(client);
      const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(done)?.[1];
      assert.ok(id, done);
      assert.deepEqual((await queuedEnvelope(policy, id)).recipients, ['joe@example.com']);
      // A new transaction starts counting afresh.
      assert.equal(await say(client, 'MAIL FROM:<a@sender.example>'), '250 2.1.0 Ok');
      assert.equal(await say(client, 'RCPT TO:<ann@example.com>'), '250 2.1.5 Ok');
      assert.deepEqual(noqueueLines(policy), []); // Postfix logs no NOQUEUE line for the limit
    });
  }),
);

test('smtpd_recipient_overshoot_limit: 452s past the limit count as errors only beyond it', () =>
  withPolicy('relay_domains = example.com\nsmtpd_recipient_limit = 2\nsmtpd_recipient_overshoot_limit = 3\nsmtpd_hard_error_limit = 2', async (policy) => {
    await runTranscript(
      policy,
      `
      C: EHLO client.example
      S: 250
      C: MAIL FROM:<a@sender.example>
      S: 250
      C: RCPT TO:<joe@example.com>
      S: 250
      C: RCPT TO:<joe@example.com>
      S: 250
      # three 452s within the overshoot limit: no error counted, the hard limit of 2 is not reached
      C: RCPT TO:<ann@example.com>
      S: 452 4.5.3 Error: too many recipients
      C: RCPT TO:<ann@example.com>
      S: 452 4.5.3 Error: too many recipients
      C: RCPT TO:<ann@example.com>
      S: 452 4.5.3 Error: too many recipients
      C: NOOP
      S: 250
      # past it each 452 is an error: the second one reaches smtpd_hard_error_limit
      C: RCPT TO:<ann@example.com>
      S: 452 4.5.3 Error: too many recipients
      C: RCPT TO:<ann@example.com>
      S: 452 4.5.3 Error: too many recipients
      S: 421 4.7.0 mx1.example.net Error: too many errors`,
    );
  }),
);

// The policy stage on real loopback sockets: a test-owned TCP server hands each accepted
// socket to Smtpd.accept() with a made-up verdict, a scripted raw client (or nodemailer)
// talks SMTP, and messages go to the real Spool in a temporary queue directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { systemClock, type Clock } from '../../src/clock.js';
import { configFromText } from '../../src/config/config.js';
import { MxError } from '../../src/errors.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import type { Envelope, QueueWriter } from '../../src/queue/envelope.js';
import { Spool } from '../../src/queue/spool.js';
import type { ScreenVerdict } from '../../src/screen-verdict.js';
import { Smtpd } from '../../src/policy/smtpd.js';
import { smtpdSettingsFromConfig, type SmtpdSettings } from '../../src/policy/smtpd-settings.js';
import { command as commandWithin, connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { matchList, memoryTable } from './policy-tables.js';
import { startHandoverServer } from '../fakes/handover-server.js';
import { makeCertificate } from '../fakes/certificate.js';
import { END_RECORD_WRITE, FaultyFileSystem } from '../fakes/faulty-file-system.js';
import { until } from '../fakes/wait-until.js';
import { ManualClock } from '../queue/manual-clock.js';

const WAIT = 2000; // upper bound of any single wait; the tests themselves take milliseconds
/** One command line; the last line of its reply within WAIT. */
const command = (client: ScriptedClient, line: string): Promise<string> => commandWithin(client, line, WAIT);

const baseSettings: SmtpdSettings = {
  // Seed 001's relay restrictions; everything else is the catalogue default.
  ...smtpdSettingsFromConfig(
    configFromText('smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\nqueue_directory = /nonexistent\n', { file: '/test/main.cf', directory: '/test' }),
  ),
  greetingHost: 'mx1.example.net',
  greetingText: 'mxscreen',
  myhostname: 'mx1.example.net',
  mailName: 'mxscreen',
  messageSizeLimit: 2000,
  recipientLimit: 3,
  timeoutMs: 5000,
  tls: undefined,
  relay: {
    mynetworks: matchList('127.0.0.1/32'),
    relayDomains: matchList('example.com', 'relay.example'),
    relayDomainsMatchSubdomains: true,
  },
  relayRecipientMaps: [memoryTable('hash:relay_recipients', { 'joe@example.com': 'OK', 'ann@example.com': 'OK', 'bob@example.com': 'OK', 'cy@example.com': 'OK', '@relay.example': 'OK' })],
};

type LogLine = Record<string, unknown> & { event?: string; msg?: string };

interface Policy {
  port: number;
  smtpd: Smtpd;
  spool: Spool | undefined;
  metrics: Metrics;
  logs: LogLine[];
  queued: string[];
  directory: string;
  close(): Promise<void>;
}

async function startPolicy(
  options: { settings?: Partial<SmtpdSettings>; verdict?: Partial<ScreenVerdict>; queue?: QueueWriter; logLevel?: string; clock?: Clock } = {},
): Promise<Policy> {
  const logs: LogLine[] = [];
  const log = createLogger({ level: options.logLevel ?? 'info', destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const metrics = new Metrics();
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-smtpd-'));
  const spool = options.queue ? undefined : await Spool.open(directory, { log, metrics, clock: systemClock });
  const queued: string[] = [];
  const smtpd = new Smtpd({ ...baseSettings, ...options.settings }, {
    queue: options.queue ?? spool!,
    clock: options.clock ?? systemClock,
    log,
    metrics,
    onQueued: (id) => queued.push(id),
  });
  const server = await startHandoverServer((socket, verdict) => smtpd.accept(socket, verdict), { idPrefix: 'T', verdict: options.verdict });
  const port = server.port;
  return {
    port,
    smtpd,
    spool,
    metrics,
    logs,
    queued,
    directory,
    async close() {
      await server.close();
      await smtpd.close(200);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Connects from `from` (a 127.x address), reads the greeting and says EHLO. */
async function session(policy: Policy, from = '127.0.0.2'): Promise<{ client: ScriptedClient; greeting: string; ehlo: readonly string[] }> {
  const client = await connectClient({ port: policy.port, localAddress: from });
  const greeting = await client.readReply(WAIT);
  client.send('EHLO client.example\r\n');
  const ehlo = await client.readReply(WAIT);
  return { client, greeting: greeting.lines.join('\n'), ehlo: ehlo.lines };
}

function incomingFiles(policy: Policy): string[] {
  return readdirSync(join(policy.directory, 'incoming'));
}

async function readQueued(policy: Policy, id: string): Promise<{ envelope: Envelope; body: string }> {
  const head = await policy.spool!.verify('incoming', id);
  const chunks: Buffer[] = [];
  for await (const chunk of policy.spool!.openBody('incoming', head)) chunks.push(chunk as Buffer);
  return { envelope: head.envelope, body: Buffer.concat(chunks).toString('utf8') };
}

async function replyCount(metrics: Metrics, code: number): Promise<number> {
  return (await metrics.smtpReplies.get()).values.find((value) => value.labels.code === String(code))?.value ?? 0;
}

test('banner and EHLO: greeting from smtpd_banner, SIZE advertised, no AUTH, no STARTTLS', async () => {
  const policy = await startPolicy();
  try {
    const { client, greeting, ehlo } = await session(policy);
    assert.equal(greeting, '220 mx1.example.net ESMTP mxscreen');
    assert.equal(ehlo[0], '250-mx1.example.net');
    assert.ok(ehlo.some((line) => /^250[- ]SIZE 2000$/.test(line)), ehlo.join('|'));
    assert.ok(!ehlo.some((line) => /STARTTLS|AUTH/.test(line)), ehlo.join('|'));
    await client.close();
  } finally {
    await policy.close();
  }
});

test('STARTTLS hidden and refused without smtpd_tls_cert_file', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    assert.match(await command(client, 'STARTTLS'), /^5\d\d /);
    assert.match(await command(client, 'AUTH PLAIN AGpvZQBzZWNyZXQ='), /^5\d\d /);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('relay denied: foreign client, foreign domain → 554 5.7.1 and a NOQUEUE line', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    assert.equal(await command(client, 'MAIL FROM:<s@sender.example>'), '250 2.1.0 Ok');
    assert.equal(await command(client, 'RCPT TO:<x@elsewhere.example>'), '554 5.7.1 <x@elsewhere.example>: Relay access denied');
    const line = policy.logs.find((entry) => entry.event === 'NOQUEUE: reject');
    assert.equal(
      line?.msg,
      `NOQUEUE: reject: RCPT from [127.0.0.2]:${client.localPort}: 554 5.7.1 <x@elsewhere.example>: Relay access denied; ` +
        'from=<s@sender.example> to=<x@elsewhere.example> proto=ESMTP helo=<client.example>',
    );
    assert.equal(line?.client, `[127.0.0.2]:${client.localPort}`);
    assert.match(String(line?.session), /^T\d+$/);
    assert.equal(await replyCount(policy.metrics, 554), 1);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('unknown recipient of a relay domain → 550 5.1.1', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    assert.equal(
      await command(client, 'RCPT TO:<nobody@example.com>'),
      '550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in relay recipient table',
    );
    await client.close();
  } finally {
    await policy.close();
  }
});

test('@domain wildcard in relay_recipient_maps accepts any user of the domain', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    assert.match(await command(client, 'RCPT TO:<whoever@relay.example>'), /^250 /);
    assert.match(await command(client, 'RCPT TO:<whoever@sub.relay.example>'), /^550 5\.1\.1 /);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('mynetworks client relays to any domain', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy, '127.0.0.1');
    await command(client, 'MAIL FROM:<s@example.com>');
    assert.match(await command(client, 'RCPT TO:<x@elsewhere.example>'), /^250 /);
    // ...but an unknown user of a relay domain is still refused, as Postfix does.
    assert.match(await command(client, 'RCPT TO:<nobody@example.com>'), /^550 5\.1\.1 /);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('recipient limit: 452 4.5.3 beyond smtpd_recipient_limit; a repeated recipient counts too (Postfix)', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    for (const rcpt of ['joe', 'ann', 'JOE']) assert.match(await command(client, `RCPT TO:<${rcpt}@example.com>`), /^250 /);
    assert.equal(await command(client, 'RCPT TO:<joe@example.com>'), '452 4.5.3 Error: too many recipients');
    assert.equal(await command(client, 'RCPT TO:<cy@example.com>'), '452 4.5.3 Error: too many recipients');
    assert.ok(!policy.logs.some((entry) => entry.event === 'NOQUEUE: reject'), 'Postfix logs no NOQUEUE line for the limit');
    await client.close();
  } finally {
    await policy.close();
  }
});

test('enforce verdict: every RCPT gets the verdict reply, logged with helo/sender/recipient', async () => {
  const reply = { code: 550, enhanced: '5.7.1', text: 'Service unavailable; client [127.0.0.2] blocked using zen.dnsbl.test' };
  const policy = await startPolicy({ verdict: { outcome: 'enforce', enforce: { test: 'dnsbl', reply } } });
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    for (const rcpt of ['joe@example.com', 'x@elsewhere.example']) {
      assert.equal(await command(client, `RCPT TO:<${rcpt}>`), `550 5.7.1 ${reply.text}`);
    }
    assert.equal(await command(client, 'DATA'), '554 5.5.1 Error: no valid recipients');
    const lines = policy.logs.filter((entry) => entry.event === 'NOQUEUE: reject');
    assert.equal(lines.length, 2);
    assert.equal(
      lines[0]?.msg,
      `NOQUEUE: reject: RCPT from [127.0.0.2]:${client.localPort}: 550 5.7.1 ${reply.text}; ` +
        'from=<s@sender.example> to=<joe@example.com> proto=ESMTP helo=<client.example>',
    );
    await client.close();
  } finally {
    await policy.close();
  }
});

test('a message is queued with a Received: header naming its queue id, body byte for byte', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    await command(client, 'RCPT TO:<joe@example.com>');
    assert.match(await command(client, 'DATA'), /^354 /);
    const body = 'Subject: hello\r\nFrom: s@sender.example\r\n\r\n..leading dot\r\nline two\r\n';
    client.send('Subject: hello\r\nFrom: s@sender.example\r\n\r\n...leading dot\r\nline two\r\n.\r\n');
    const done = await client.readReply(WAIT);
    const match = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(done.lines[0]!);
    assert.ok(match, done.lines[0]);
    const id = match[1]!;
    assert.deepEqual(policy.queued, [id]);
    const { envelope, body: stored } = await readQueued(policy, id);
    const header =
      `Received: from client.example (unknown [127.0.0.2])\r\n` +
      `\tby mx1.example.net (mxscreen) with ESMTP id ${id}\r\n` +
      `\tfor <joe@example.com>; `;
    assert.ok(stored.startsWith(header), stored);
    const rest = stored.slice(header.length);
    assert.match(rest, /^\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n/);
    assert.equal(rest.slice(rest.indexOf('\r\n') + 2), body);
    assert.equal(envelope.sender, 's@sender.example');
    assert.deepEqual(envelope.recipients.map((rcpt) => rcpt.address), ['joe@example.com']);
    assert.deepEqual(envelope.client, { address: '127.0.0.2', port: client.localPort, helo: 'client.example' });
    assert.match(envelope.sessionId, /^T\d+$/);
    const line = policy.logs.find((entry) => entry.event === 'queued');
    assert.match(String(line?.msg), new RegExp(`^${id}: client=\\[127\\.0\\.0\\.2\\]:${client.localPort}, from=<s@sender\\.example>, nrcpt=1, size=\\d+$`));
    assert.equal(line?.queueId, id);
    assert.equal(await replyCount(policy.metrics, 354), 1);
    assert.equal(await replyCount(policy.metrics, 250), 4); // EHLO, MAIL, RCPT, end of DATA
    assert.equal(await replyCount(policy.metrics, 220), 1);
    assert.equal(await command(client, 'QUIT'), '221 2.0.0 Bye');
    await client.close();
  } finally {
    await policy.close();
  }
});

test('oversize message → 552 5.3.4 after the final dot, nothing queued, session goes on', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    await command(client, 'RCPT TO:<joe@example.com>');
    await command(client, 'DATA');
    client.send(`Subject: big\r\n\r\n${'x'.repeat(78)}\r\n`.repeat(40) + '.\r\n');
    assert.equal((await client.readReply(WAIT)).lines[0], '552 5.3.4 Message size exceeds fixed limit');
    await until('the partial file to go', () => incomingFiles(policy).length === 0);
    assert.deepEqual(policy.queued, []);
    assert.equal(await command(client, 'RSET'), '250 2.0.0 Ok');
    assert.equal(policy.logs.find((entry) => entry.event === 'reject')?.code, 552);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('MAIL FROM SIZE= above message_size_limit is refused at MAIL with 552 5.3.4', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    assert.match(await command(client, 'MAIL FROM:<s@sender.example> SIZE=2001'), /^552 5\.3\.4 Message size exceeds fixed limit/);
    assert.match(await command(client, 'MAIL FROM:<s@sender.example> SIZE=2000'), /^250 /);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('client gone in the middle of DATA: the partial queue file is removed', async () => {
  const policy = await startPolicy();
  try {
    const { client } = await session(policy);
    await command(client, 'MAIL FROM:<s@sender.example>');
    await command(client, 'RCPT TO:<joe@example.com>');
    await command(client, 'DATA');
    client.send('Subject: cut short\r\n\r\nsome text\r\n');
    await until('the queue file to be opened', () => incomingFiles(policy).length === 1);
    await client.close();
    await until('the session to end', () => policy.smtpd.activeSessions === 0);
    await until('the partial file to go', () => incomingFiles(policy).length === 0);
    assert.deepEqual(policy.queued, []);
  } finally {
    await policy.close();
  }
});

function brokenQueue(errno: string | undefined, aborted: string[]): QueueWriter {
  return {
    async open() {
      return {
        id: 'BROKEN1',
        async write() {},
        async commit() {
          const cause = Object.assign(new Error('disk trouble'), errno ? { code: errno } : {});
          throw new MxError('ERR_QUEUE_IO', 'cannot commit BROKEN1', { cause });
        },
        async abort() {
          aborted.push('BROKEN1');
        },
      };
    },
  };
}

const queueFailures: { name: string; input: string | undefined; want: string }[] = [
  { name: 'commit failure → 451 4.3.0', input: 'EIO', want: '451 4.3.0 Error: queue file write error' },
  { name: 'out of space → 452 4.3.1', input: 'ENOSPC', want: '452 4.3.1 Insufficient system storage' },
];

for (const { name, input, want } of queueFailures) {
  test(`queue ${name}, the file aborted`, async () => {
    const aborted: string[] = [];
    const policy = await startPolicy({ queue: brokenQueue(input, aborted) });
    try {
      const { client } = await session(policy);
      await command(client, 'MAIL FROM:<s@sender.example>');
      await command(client, 'RCPT TO:<joe@example.com>');
      await command(client, 'DATA');
      client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
      assert.equal((await client.readReply(WAIT)).lines[0], want);
      assert.deepEqual(aborted, ['BROKEN1']);
      assert.deepEqual(policy.queued, []);
      assert.equal(policy.logs.find((entry) => entry.event === 'queue error')?.level, 'error');
      await client.close();
    } finally {
      await policy.close();
    }
  });
}

/** How long a test waits to see that a reply does not come (ms): absence, not a deadline. */
const NO_REPLY_WAIT = 150;

async function assertNoReply(client: ScriptedClient, what: string): Promise<void> {
  await assert.rejects(client.readReply(NO_REPLY_WAIT), Error, `no reply while ${what}`);
}

/** Starts MAIL, RCPT, DATA and the message on `client`; the reply to the final dot is left unread. */
async function sendMessage(client: ScriptedClient, body = 'Subject: x\r\n\r\nbody\r\n'): Promise<void> {
  assert.match(await command(client, 'MAIL FROM:<s@sender.example>'), /^250/);
  assert.match(await command(client, 'RCPT TO:<joe@example.com>'), /^250/);
  assert.match(await command(client, 'DATA'), /^354/);
  client.send(`${body}.\r\n`);
}

/** A policy stage over a real spool whose commit calls go through `fs`. */
async function withFaultySpool(fn: (policy: Policy, spool: Spool, fs: FaultyFileSystem, directory: string) => Promise<void>): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-smtpd-commit-'));
  const fs = new FaultyFileSystem();
  const spool = await Spool.open(directory, { log: createLogger({ level: 'silent' }), metrics: new Metrics(), clock: systemClock, fileSystem: fs });
  const policy = await startPolicy({ queue: spool, settings: { messageSizeLimit: 1_000_000 } });
  try {
    await fn(policy, spool, fs, directory);
  } finally {
    await policy.close();
    spool.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

test('durability contract: no 250 while the file fsync, the rename or the directory fsync is pending; it comes once that step completes', async () => {
  await withFaultySpool(async (policy, _spool, fs, directory) => {
    const { client } = await session(policy);
    // One message per step, that step alone held: each must be awaited before the 250.
    for (const name of ['sync', 'rename', 'directory fsync'] as const) {
      const step = fs.hold((reached) => reached === name);
      await sendMessage(client);
      await step.reached();
      await assertNoReply(client, `the ${name} step is pending`);
      step.releaseAll();
      assert.match((await client.readReply(WAIT)).lines[0]!, /^250 2\.0\.0 Ok: queued as /, name);
    }
    assert.deepEqual(readdirSync(join(directory, 'incoming')).sort(), [...policy.queued].sort());
    await client.close();
  });
});

test('durability contract, group commit: clients whose renames wait for the next directory fsync get 250 only after it, and share it', async () => {
  await withFaultySpool(async (policy, _spool, fs, directory) => {
    const fsync = fs.hold((step) => step === 'directory fsync');
    const first = (await session(policy, '127.0.0.2')).client;
    await sendMessage(first);
    await fsync.reached(1); // the first commit's directory fsync runs (held)
    const others = [(await session(policy, '127.0.0.3')).client, (await session(policy, '127.0.0.4')).client];
    for (const client of others) await sendMessage(client);
    // Both later files renamed into incoming/: they wait for the next fsync.
    await until('the later commits to reach their rename', () => readdirSync(join(directory, 'incoming')).filter((name) => !name.endsWith('.tmp')).length === 3);
    for (const client of [first, ...others]) await assertNoReply(client, 'the first directory fsync is pending');
    fsync.releaseOne();
    assert.match((await first.readReply(WAIT)).lines[0]!, /^250 2\.0\.0 /);
    await fsync.reached(2); // one fsync for both later commits
    for (const client of others) await assertNoReply(client, 'the directory fsync covering their renames is pending');
    fsync.releaseAll();
    for (const client of others) assert.match((await client.readReply(WAIT)).lines[0]!, /^250 2\.0\.0 /);
    assert.equal(fsync.arrived, 2, 'three commits, two directory fsyncs');
    for (const client of [first, ...others]) await client.close();
  });
});

test('queue faults on the real spool: ENOSPC writing the END record → 452 4.3.1, EIO at the rename → 451 4.3.0, nothing queued; the session goes on and the next message is queued whole', async () => {
  await withFaultySpool(async (policy, spool, fs, directory) => {
    // Larger than one 64 KiB write batch: the END record goes in the last write, at commit.
    const body = `Subject: x\r\n\r\n${'y'.repeat(78)}\r\n`.repeat(1500);
    const transaction = async (client: ScriptedClient, armed: () => void): Promise<string> => {
      armed();
      await sendMessage(client, body);
      const reply = (await client.readReply(WAIT)).lines[0]!;
      fs.disarm();
      return reply;
    };
    const { client } = await session(policy);
    assert.equal(await transaction(client, () => fs.arm(END_RECORD_WRITE, 'ENOSPC')), '452 4.3.1 Insufficient system storage');
    assert.ok(fs.struck && fs.steps.filter((step) => step === 'writev').length > 1, `batches, then the END record: ${fs.steps.join(', ')}`);
    assert.equal(await transaction(client, () => fs.arm((step) => step === 'rename', 'EIO')), '451 4.3.0 Error: queue file write error');
    assert.ok(fs.struck);
    assert.match(await transaction(client, () => undefined), /^250 2\.0\.0 Ok: queued as /);
    assert.equal(policy.queued.length, 1);
    assert.deepEqual(readdirSync(join(directory, 'incoming')), policy.queued, 'only the 250 is queued, no temporary file is left');
    for (const id of policy.queued) await spool.verify('incoming', id);
    await client.close();
  });
});

test('close(): an idle session gets 421 4.3.2 after the timeout; later handovers get 421 at once', async () => {
  const clock = new ManualClock();
  const policy = await startPolicy({ clock });
  try {
    const { client } = await session(policy);
    const closing = policy.smtpd.close(150);
    // The clock has not moved: a 421 now is the one for handovers during the stop.
    const late = await connectClient({ port: policy.port, localAddress: '127.0.0.3' });
    assert.equal((await late.readReply(WAIT)).lines[0], '421 4.3.2 Service shutting down');
    assert.ok(clock.pending().includes(150), 'open sessions are given the timeout');
    assert.match(await command(client, 'NOOP'), /^250 /, 'the open session goes on until the timeout');
    clock.advance(149);
    assert.ok(clock.pending().includes(1), 'still 1 ms to go');
    clock.advance(1);
    assert.equal((await client.readReply(WAIT)).lines[0], '421 4.3.2 Service shutting down');
    await client.waitForEnd(WAIT);
    for (let i = 0; i < 200 && policy.smtpd.activeSessions > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    clock.advance(1000); // the hang-up grace, should a socket linger
    await closing;
    assert.equal(policy.smtpd.activeSessions, 0);
    await late.close();
    await client.close();
  } finally {
    clock.advance(60_000);
    await policy.close();
  }
});

test('close(): resolves as soon as the last session quits, not at the timeout', async () => {
  const clock = new ManualClock(); // never moved: the 5 s timeout cannot end the wait
  const policy = await startPolicy({ clock });
  try {
    const { client } = await session(policy);
    const closing = policy.smtpd.close(5000);
    assert.equal(await command(client, 'QUIT'), '221 2.0.0 Bye');
    await client.close();
    const ended = await Promise.race([closing.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), WAIT))]);
    assert.ok(ended, 'close() resolved once the last session quit');
    assert.equal(policy.smtpd.activeSessions, 0);
  } finally {
    clock.advance(60_000);
    await policy.close();
  }
});

test('setSettings(): new sessions get the new settings, an open session keeps its own', async () => {
  const policy = await startPolicy();
  try {
    const first = await session(policy);
    policy.smtpd.setSettings({ ...baseSettings, greetingHost: 'mx2.example.net', relay: { ...baseSettings.relay, relayDomains: matchList('other.example') } });
    const second = await session(policy);
    assert.equal(second.greeting, '220 mx2.example.net ESMTP mxscreen');
    await command(first.client, 'MAIL FROM:<s@sender.example>');
    assert.match(await command(first.client, 'RCPT TO:<joe@example.com>'), /^250 /);
    await command(second.client, 'MAIL FROM:<s@sender.example>');
    assert.match(await command(second.client, 'RCPT TO:<joe@example.com>'), /^554 5\.7\.1 /);
    await first.client.close();
    await second.client.close();
  } finally {
    await policy.close();
  }
});

test('smtpdSettingsFromConfig reads main.cf: banner, limits, relay lists, TLS files', (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-smtpd-cf-'));
  try {
    const files = makeCertificate(directory);
    if (!files) return t.skip('openssl is not available');
    writeFileSync(join(directory, 'relay_recipients'), '# relay_recipients: user@domain or @domain, any value\njoe@example.com OK\n');
    const config = configFromText(
      [
        'myhostname = mx1.example.net',
        'smtpd_banner = $myhostname ESMTP $mail_name ready',
        'message_size_limit = 25600000',
        'smtpd_recipient_limit = 50',
        'smtpd_timeout = 30s',
        'mynetworks = 127.0.0.1/32',
        'relay_domains = example.com',
        'relay_recipient_maps = hash:relay_recipients',
        'smtpd_tls_cert_file = cert.pem',
        'smtpd_tls_key_file = key.pem',
      ].join('\n'),
      { file: join(directory, 'main.cf'), directory },
    );
    const settings = smtpdSettingsFromConfig(config);
    assert.equal(settings.greetingHost, 'mx1.example.net');
    assert.equal(settings.greetingText, 'mxscreen ready');
    assert.equal(settings.messageSizeLimit, 25600000);
    assert.equal(settings.recipientLimit, 50);
    assert.equal(settings.timeoutMs, 30_000);
    assert.equal(settings.relay.relayDomainsMatchSubdomains, true);
    assert.equal(settings.relayRecipientMaps.length, 1);
    assert.ok(settings.tls && settings.tls.cert.length > 0 && settings.tls.key.length > 0);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('smtpdSettingsFromConfig: unreadable TLS files are a ConfigError at their line', () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-smtpd-cf-'));
  try {
    const config = configFromText('myhostname = mx1.example.net\nsmtpd_tls_cert_file = missing.pem\n', { file: join(directory, 'main.cf'), directory });
    assert.throws(
      () => smtpdSettingsFromConfig(config),
      (err: unknown) => err instanceof MxError && err.code === 'ERR_CONFIG' && /main\.cf:2: smtpd_tls_cert_file/.test(err.message),
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('STARTTLS with our own certificate: nodemailer upgrades, the Received: header says ESMTPS', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-smtpd-tls-'));
  const files = makeCertificate(directory);
  if (!files) {
    rmSync(directory, { recursive: true, force: true });
    return t.skip('openssl is not available');
  }
  const { readFileSync } = await import('node:fs');
  const policy = await startPolicy({ settings: { tls: { cert: readFileSync(files.cert), key: readFileSync(files.key) } } });
  try {
    const { client, ehlo } = await session(policy);
    assert.ok(ehlo.some((line) => /STARTTLS/.test(line)), ehlo.join('|'));
    await client.close();
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: policy.port,
      secure: false,
      requireTLS: true,
      name: 'client.example',
      localAddress: '127.0.0.4',
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({ envelope: { from: 's@sender.example', to: ['joe@example.com'] }, raw: 'Subject: tls\r\n\r\nover TLS\r\n' });
    transport.close();
    const id = /queued as (\S+)/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    const { body } = await readQueued(policy, id);
    assert.match(body, new RegExp(`^Received: from client\\.example \\(unknown \\[127\\.0\\.0\\.4\\]\\)\\r\\n\\tby mx1\\.example\\.net \\(mxscreen\\) with ESMTPS id ${id}\\r\\n`));
  } finally {
    await policy.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

test('at log level debug, smtp-server\'s own lines reach the log with the session id', async () => {
  const policy = await startPolicy({ logLevel: 'debug' });
  try {
    const { client } = await session(policy);
    assert.equal(await command(client, 'NOOP'), '250 2.0.0 Ok');
    await client.close();
    await until('the session to end', () => policy.smtpd.activeSessions === 0);
    const own = policy.logs.filter((entry) => entry.component === 'smtp-server');
    assert.ok(own.length > 0);
    assert.ok(own.every((entry) => entry.level === 'debug'));
    assert.ok(own.some((entry) => typeof entry.cid === 'string' && /^T\d+$/.test(entry.cid)));
    assert.ok(policy.logs.some((entry) => entry.event === 'DISCONNECT'));
  } finally {
    await policy.close();
  }
});

test('queue_minfree: when the queue cannot take the message, MAIL FROM gets 452 4.3.1 and the session goes on', async () => {
  const asked: number[] = [];
  let room = false;
  const queue: QueueWriter = {
    open: () => Promise.reject(new MxError('ERR_QUEUE_IO', 'not expected')),
    canAccept: (size) => {
      asked.push(size);
      return Promise.resolve(room);
    },
  };
  const policy = await startPolicy({ queue });
  try {
    const { client } = await session(policy);
    assert.match(await command(client, 'MAIL FROM:<alice@sender.example> SIZE=1234'), /^452 4\.3\.1 Insufficient system storage/);
    assert.deepEqual(asked, [1234]);
    assert.ok(policy.logs.some((line) => line.event === 'NOQUEUE: reject' && line.reason === 'queue_minfree'));
    room = true;
    assert.match(await command(client, 'MAIL FROM:<alice@sender.example>'), /^250 /);
    client.close();
  } finally {
    await policy.close();
  }
});

// cleanup(8)'s safety limits (content-limits.ts): first the stage alone on generated
// messages, then real SMTP sessions on loopback (real Spool), with and without content
// checks, for the measured cases of issue 8: a 5 MB header line, 200,000 header lines,
// 20,000 MIME parts, MIME nested 2,000 deep, and a boundary longer than
// mime_boundary_length_limit. Every input is generated here, none is a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { configFromText } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { applyContentLimits, contentLimitsFromConfig, DEFAULT_CONTENT_LIMITS, entityType, type ContentLimits } from '../../src/policy/content-limits.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import type { IncomingMessage, QueueWriter } from '../../src/queue/envelope.js';
import { startPolicy, type LogLine, type PolicyOptions, type PolicyUnderTest } from './transcript.js';

const WAIT = 10_000; // upper bound of one reply; the biggest case takes well under a second

/** Runs `message` (CRLF text or bytes) through the stage in `chunkSize`-byte writes. */
async function limit(message: string | Buffer, limits: Partial<ContentLimits> = {}, chunkSize = 0) {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  const size = chunkSize > 0 ? chunkSize : bytes.length || 1;
  const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, index) => bytes.subarray(index * size, index * size + size));
  const limited = applyContentLimits(Readable.from(chunks, { objectMode: false }), { ...DEFAULT_CONTENT_LIMITS, ...limits });
  const out: Buffer[] = [];
  for await (const chunk of limited.output) out.push(chunk as Buffer);
  return { output: Buffer.concat(out).toString('latin1'), refusal: limited.refusal(), notices: limited.notices(), received: limited.received() };
}

const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

function multipart(boundary: string, parts: readonly string[], headers = ''): string {
  return crlf(`From: a@b.example\nMIME-Version: 1.0\n${headers}Content-Type: multipart/mixed; boundary="${boundary}"\n\npreamble\n`) +
    parts.map((part) => `--${boundary}\r\n${crlf(part)}`).join('') + `--${boundary}--\r\nepilogue\r\n`;
}

/** `depth` multiparts, each the only part of the one around it, a text part inside. */
function nested(depth: number): string {
  let head = 'From: a@b.example\r\nMIME-Version: 1.0\r\n';
  let tail = '';
  for (let level = 0; level < depth; level++) {
    head += `Content-Type: multipart/mixed; boundary="N${level}"\r\n\r\n--N${level}\r\n`;
    tail = `--N${level}--\r\n${tail}`;
  }
  return `${head}Content-Type: text/plain\r\n\r\ndeep\r\n${tail}`;
}

const plainMessages = [
  crlf('From: a@b.example\nSubject: hi\n\nbody\n-- \nsignature\n'),
  multipart('XX', ['Content-Type: text/plain\n\nhello\n', 'Content-Type: application/pdf; name="a.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n']),
  multipart('OUT', [`Content-Type: message/rfc822\n\n${multipart('IN', ['Content-Type: text/plain\n\ninner\n'])}`, 'Content-Type: text/plain\n\nafter\n']),
  multipart('D', ['\nFrom: x@y.example\nSubject: digest entry\n\none\n', 'Content-Type: text/plain\n\ntwo\n'], '').replace('multipart/mixed', 'multipart/digest'),
  'From: a@b.example\nSubject: bare LF line ends\n\nbody\n',
  'X-Folded: one\r\n two\r\n\tthree\r\nSubject: no final line end\r\n\r\nbody without CRLF',
];

for (const [index, message] of plainMessages.entries()) {
  test(`content limits: message ${index + 1} within every limit passes byte for byte, whole or one byte at a time`, async () => {
    for (const chunkSize of [0, 1, 7]) {
      const result = await limit(message, {}, chunkSize);
      assert.equal(result.output, message, `chunk size ${chunkSize}`);
      assert.equal(result.refusal, undefined);
      assert.deepEqual(result.notices, []);
      assert.equal(result.received, message.length);
    }
  });
}

test('header_size_limit: a long header is cut to exactly the limit, the excess discarded, the rest unchanged', async () => {
  const message = `Subject: x\r\nX-Long: ${'a'.repeat(5000)}\r\nX-After: kept\r\n\r\nbody\r\n`;
  for (const chunkSize of [0, 1, 13, 4096]) {
    const { output, refusal, notices } = await limit(message, { headerSizeLimit: 1000 }, chunkSize);
    assert.equal(output, `Subject: x\r\nX-Long: ${'a'.repeat(1000 - 8)}\r\nX-After: kept\r\n\r\nbody\r\n`, `chunk size ${chunkSize}`);
    assert.equal(refusal, undefined);
    assert.deepEqual(notices, [{ limit: 'header_size_limit', value: 1000, where: 'header X-Long' }]);
  }
});

test('header_size_limit: a fold counts one byte; a continuation line that does not fit is dropped whole, and the rest', async () => {
  // "X-F: 12345" (10) + fold (1) + " 6789" (5) + fold (1) + " abcdef" (7) = 24.
  const message = 'X-F: 12345\r\n 6789\r\n abcdef\r\n ghi\r\nX-G: g\r\n\r\nbody\r\n';
  for (const chunkSize of [0, 1, 5]) {
    assert.equal((await limit(message, { headerSizeLimit: 24 }, chunkSize)).output, 'X-F: 12345\r\n 6789\r\n abcdef\r\nX-G: g\r\n\r\nbody\r\n');
    assert.equal((await limit(message, { headerSizeLimit: 23 }, chunkSize)).output, 'X-F: 12345\r\n 6789\r\nX-G: g\r\n\r\nbody\r\n', 'never a cut continuation line');
  }
  assert.equal((await limit(message, { headerSizeLimit: 1 })).output, 'X-F:\r\nX-G:\r\n\r\nbody\r\n', 'the name and colon are always kept');
  // A CR at the end of a write is text or line end only once the next byte is known.
  assert.equal((await limit('X-C: ab\rcd\r\n\r\nx\r\n', { headerSizeLimit: 8 }, 1)).output, 'X-C: ab\r\r\n\r\nx\r\n');
});

test('header_size_limit: part headers and attached message headers are cut too (every header section)', async () => {
  const long = `X-Long: ${'b'.repeat(300)}`;
  const message = multipart('XX', [`${long}\nContent-Type: message/rfc822\n\n${long}\nSubject: inner\n\ninner body\n`]);
  const { output } = await limit(message, { headerSizeLimit: 100 });
  assert.equal(output, message.split(long).join(`X-Long: ${'b'.repeat(92)}`));
});

test('mxscreen_header_count_limit: the limit is taken, one more field is refused 552 5.6.0; each section counts apart', async () => {
  const fields = (count: number) => Array.from({ length: count }, (_, index) => `X-H${index}: v\r\n`).join('');
  assert.equal((await limit(`${fields(10)}\r\nbody\r\n`, { headerCountLimit: 10 })).refusal, undefined);
  const over = await limit(`${fields(11)}\r\nbody\r\n`, { headerCountLimit: 10 }, 5);
  assert.deepEqual(over.refusal, {
    limit: 'mxscreen_header_count_limit',
    value: 10,
    reply: { code: 552, enhanced: '5.6.0', text: 'Message header count exceeds safety limit' },
    where: 'X-H10: v',
  });
  assert.equal(over.received, fields(11).length + 8, 'the input is read to its end');
  assert.equal(over.output.includes('X-H10'), false, 'nothing after the refusal is passed on');
  // Continuation lines belong to their field; every section has its own count.
  const sections = multipart('XX', [`${fields(8).replace(/\r\n/g, '\n  folded\n')}\nx\n`, `${fields(8)}\nx\n`]);
  assert.equal((await limit(sections, { headerCountLimit: 10 })).refusal, undefined);
});

test('mxscreen_mime_part_count_limit: parts at every level count; one more than the limit is refused 552 5.6.0', async () => {
  const inner = multipart('IN', ['\ni1\n', '\ni2\n']);
  const message = multipart('OUT', [`Content-Type: message/rfc822\n\n${inner}`, '\no2\n']); // 2 outer + 2 inner
  assert.equal((await limit(message, { mimePartCountLimit: 4 })).refusal, undefined);
  const refusal = (await limit(message, { mimePartCountLimit: 3 }, 3)).refusal;
  assert.equal(refusal?.limit, 'mxscreen_mime_part_count_limit');
  assert.deepEqual(refusal?.reply, { code: 552, enhanced: '5.6.0', text: 'MIME part count exceeds safety limit' });
  assert.equal(refusal?.where, 'MIME part 4: --OUT');
});

test('mime_nesting_limit: containers around a part (multipart and message/rfc822); past the limit 550 5.6.0', async () => {
  assert.equal((await limit(nested(5), { mimeNestingLimit: 5 })).refusal, undefined);
  const refusal = (await limit(nested(6), { mimeNestingLimit: 5 }, 11)).refusal;
  assert.deepEqual(refusal?.reply, { code: 550, enhanced: '5.6.0', text: 'MIME nesting exceeds safety limit' });
  assert.equal(refusal?.where, 'Content-Type: multipart/mixed; boundary="N5"');
  // message/rfc822 is a container too: multipart + message + multipart around "inner".
  const forwarded = multipart('OUT', [`Content-Type: message/rfc822\n\n${multipart('IN', ['\ninner\n'])}`]);
  assert.equal((await limit(forwarded, { mimeNestingLimit: 3 })).refusal, undefined);
  assert.equal((await limit(forwarded, { mimeNestingLimit: 2 })).refusal?.limit, 'mime_nesting_limit');
  // multipart/digest parts are messages by default.
  const digest = multipart('D', ['\nContent-Type: multipart/mixed; boundary="E"\n\n--E\n\nx\n--E--\n']).replace('multipart/mixed; boundary="D"', 'multipart/digest; boundary="D"');
  assert.equal((await limit(digest, { mimeNestingLimit: 3 })).refusal, undefined);
  assert.equal((await limit(digest, { mimeNestingLimit: 2 })).refusal?.limit, 'mime_nesting_limit');
  // A delimiter of an outer multipart closes the containers opened inside it.
  const siblings = multipart('OUT', Array.from({ length: 20 }, () => 'Content-Type: multipart/mixed; boundary="IN"\n\n--IN\n\nx\n'));
  assert.equal((await limit(siblings, { mimeNestingLimit: 2 })).refusal, undefined);
});

test('mime_boundary_length_limit: a longer boundary is compared on its first bytes only, and still delimits parts', async () => {
  const boundary = 'b'.repeat(3000);
  const parts = ['Content-Type: text/plain\n\none\n', 'Content-Type: text/plain\n\ntwo\n', 'Content-Type: text/plain\n\nthree\n'];
  const message = multipart(boundary, parts);
  const taken = await limit(message, { mimePartCountLimit: 3 }, 1000);
  assert.equal(taken.output, message);
  assert.equal(taken.refusal, undefined, 'the close delimiter (longer than the compared bytes) is no fourth part');
  assert.equal((await limit(message, { mimePartCountLimit: 3 }, 1)).refusal, undefined);
  assert.equal(taken.refusal, undefined);
  assert.deepEqual(taken.notices.map((notice) => [notice.limit, notice.value]), [['mime_boundary_length_limit', 2048]]);
  assert.equal((await limit(message, { mimePartCountLimit: 2 })).refusal?.limit, 'mxscreen_mime_part_count_limit', 'the parts were found');
  // Only the first 2048 bytes are compared: delimiter lines that differ after them still delimit.
  const differing = message.split(`--${boundary}\r\n`).join(`--${'b'.repeat(2048)}XYZ\r\n`);
  assert.equal((await limit(differing, { mimePartCountLimit: 2 })).refusal?.limit, 'mxscreen_mime_part_count_limit');
});

test('entityType: the structure a Content-Type value gives', () => {
  assert.deepEqual(entityType(' multipart/mixed; boundary="a b;c"'), { kind: 'multipart', boundary: 'a b;c', digest: false });
  assert.deepEqual(entityType(' Multipart/Digest (comment);\r\n\tcharset=x; BOUNDARY=tok (c)'), { kind: 'multipart', boundary: 'tok', digest: true });
  assert.deepEqual(entityType(' multipart/alternative; boundary="q\\"x"'), { kind: 'multipart', boundary: 'q"x', digest: false });
  assert.deepEqual(entityType(' multipart/mixed'), { kind: 'leaf' }, 'no boundary: not split (mime_state(3))');
  assert.deepEqual(entityType(' message/RFC822'), { kind: 'message' });
  assert.deepEqual(entityType(' text/plain; boundary=x'), { kind: 'leaf' });
});

test('the limits are read from main.cf; the defaults are Postfix\'s (postconf(5)) and mxscreen\'s documented ones; 0 is an error', () => {
  const where = { file: '/test/main.cf', directory: '/test' };
  assert.deepEqual(contentLimitsFromConfig(configFromText('', where)), DEFAULT_CONTENT_LIMITS);
  assert.deepEqual(DEFAULT_CONTENT_LIMITS, { headerSizeLimit: 102400, headerCountLimit: 1000, mimeNestingLimit: 100, mimeBoundaryLengthLimit: 2048, mimePartCountLimit: 1000 });
  const text = 'header_size_limit = 5000\nmxscreen_header_count_limit = 7\nmime_nesting_limit = 3\nmime_boundary_length_limit = 70\nmxscreen_mime_part_count_limit = 9\n';
  assert.deepEqual(contentLimitsFromConfig(configFromText(text, where)), { headerSizeLimit: 5000, headerCountLimit: 7, mimeNestingLimit: 3, mimeBoundaryLengthLimit: 70, mimePartCountLimit: 9 });
  assert.throws(() => configFromText('mime_nesting_limit = 0\n', where), (error: unknown) => error instanceof ConfigError && /mime_nesting_limit/.test(error.message));
});

// --- real SMTP sessions -------------------------------------------------------------------

const MAIN_CF = 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com';
const WITH_CHECKS = { mainCf: `${MAIN_CF}\nheader_checks = pcre:header_checks`, files: { header_checks: '/^Subject: .*lottery/ REJECT\n' } };

async function reply(client: ScriptedClient): Promise<string> {
  const lines = (await client.readReply(WAIT)).lines;
  return lines[lines.length - 1]!;
}

/** Connects and says EHLO. */
async function open(policy: PolicyUnderTest): Promise<ScriptedClient> {
  const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
  await reply(client);
  client.send('EHLO client.example\r\n');
  await reply(client);
  return client;
}

/**
 * One transaction: MAIL, RCPT, DATA, `message`, the dot and RSET in one write. The reply
 * to RSET comes second only if DATA was read to the dot (else body lines were commands).
 */
async function send(client: ScriptedClient, message: string): Promise<{ data: string; rset: string }> {
  for (const line of ['MAIL FROM:<a@b.example>', 'RCPT TO:<joe@example.com>', 'DATA']) {
    client.send(`${line}\r\n`);
    await reply(client);
  }
  client.send(`${message}.\r\nRSET\r\n`);
  return { data: await reply(client), rset: await reply(client) };
}

/** The policy stage on the real Spool, with what cleanup writes to each message recorded. */
interface Policy extends PolicyUnderTest {
  /** The bytes written to message `id` (Received: header first), as cleanup handed them over. */
  written(id: string): string;
}

async function start(options: PolicyOptions): Promise<Policy> {
  const writes = new Map<string, Buffer[]>();
  let spool: QueueWriter | undefined;
  const queue: QueueWriter = {
    async open(envelope): Promise<IncomingMessage> {
      const message = await spool!.open(envelope);
      const chunks: Buffer[] = [];
      writes.set(message.id, chunks);
      return {
        id: message.id,
        write: (chunk) => (chunks.push(Buffer.from(chunk)), message.write(chunk)),
        commit: (commitOptions) => message.commit(commitOptions),
        abort: () => message.abort(),
      };
    },
  };
  const policy = await startPolicy({ ...options, deps: { queue } });
  spool = policy.spool;
  return Object.assign(policy, { written: (id: string) => Buffer.concat(writes.get(id) ?? []).toString('latin1') });
}

const rejectLine = (logs: readonly LogLine[]) => logs.find((line) => line.event === 'reject' && line.action === 'limit-exceeded');

/** Asserts a refusal: its reply after the dot, the log naming the limit, nothing queued, and a next message taken. */
async function assertRefused(policy: PolicyUnderTest, message: string, want: { reply: string; limit: string; value: number }): Promise<void> {
  policy.logs.length = 0;
  const queuedBefore = policy.queued.length;
  const filesBefore = readdirSync(join(policy.directory, 'queue', 'incoming')).length;
  const client = await open(policy);
  try {
    const { data, rset } = await send(client, message);
    assert.equal(data, want.reply);
    assert.equal(rset, '250 2.0.0 Ok', 'RSET answered after the DATA reply: DATA was read to its dot');
    const line = rejectLine(policy.logs);
    assert.ok(line, 'a reject log line');
    assert.equal(line.limit, want.limit);
    assert.equal(line.value, want.value);
    assert.match(String(line.msg), new RegExp(`^reject: END-OF-MESSAGE from \\[127\\.0\\.0\\.2\\]:\\d+: ${want.reply.replace(/\./g, '\\.')} \\(${want.limit} = ${want.value}, at .+\\); from=<a@b\\.example> proto=ESMTP helo=<client\\.example>$`));
    const counted = (await policy.metrics.contentRejects.get()).values.find((value) => value.labels.action === 'limit')?.value ?? 0;
    assert.ok(counted >= 1, 'mxscreen_content_checks_total{action="limit"} counts it');
    assert.equal(policy.queued.length, queuedBefore, 'nothing queued');
    assert.equal(readdirSync(join(policy.directory, 'queue', 'incoming')).length, filesBefore, 'no queue file left');
    // The session goes on: the next message is queued.
    const next = await send(client, 'Subject: next\r\n\r\nfine\r\n');
    assert.match(next.data, /^250 2\.0\.0 Ok: queued as /);
    assert.equal(policy.queued.length, queuedBefore + 1);
  } finally {
    await client.close();
  }
}

const CASES = [
  {
    name: '200,000 header lines',
    message: () => `${'X-H: v\r\n'.repeat(200_000)}\r\nbody\r\n`,
    want: { reply: '552 5.6.0 Message header count exceeds safety limit', limit: 'mxscreen_header_count_limit', value: 1000 },
  },
  {
    name: '20,000 MIME parts',
    message: () => multipart('B', Array.from({ length: 20_000 }, (_, index) => `Content-Type: text/plain\n\npart ${index}\n`)),
    want: { reply: '552 5.6.0 MIME part count exceeds safety limit', limit: 'mxscreen_mime_part_count_limit', value: 1000 },
  },
  {
    name: 'MIME nested 2,000 deep',
    message: () => nested(2000),
    want: { reply: '550 5.6.0 MIME nesting exceeds safety limit', limit: 'mime_nesting_limit', value: 100 },
  },
] as const;

for (const checks of [false, true]) {
  const config = checks ? WITH_CHECKS : { mainCf: MAIN_CF };
  const label = checks ? 'with header_checks' : 'no content checks';

  for (const { name, message, want } of CASES) {
    test(`SMTP, ${label}: ${name} → ${want.reply}, logged with ${want.limit}, nothing queued, session goes on`, async () => {
      const policy = await start(config);
      try {
        await assertRefused(policy, message(), want);
      } finally {
        await policy.close();
      }
    });
  }

  test(`SMTP, ${label}: a 5 MB header line is queued cut to header_size_limit (as cleanup(8)), with a WARN naming the limit`, async () => {
    const policy = await start(config);
    const client = await open(policy);
    try {
      const { data, rset } = await send(client, `Subject: big header\r\nX-Long: ${'a'.repeat(5_000_000)}\r\nX-After: kept\r\n\r\nbody\r\n`);
      assert.match(data, /^250 2\.0\.0 Ok: queued as /);
      assert.equal(rset, '250 2.0.0 Ok');
      const id = policy.queued[0]!;
      const body = policy.written(id);
      assert.ok(body.endsWith(`Subject: big header\r\nX-Long: ${'a'.repeat(102400 - 8)}\r\nX-After: kept\r\n\r\nbody\r\n`), 'the header is cut at 102400 bytes');
      const warning = policy.logs.find((line) => line.event === 'WARN' && line.limit === 'header_size_limit');
      assert.equal(warning?.msg, `${id}: warning: header X-Long is longer than header_size_limit (102400 bytes): the excess is discarded`);
    } finally {
      await client.close();
      await policy.close();
    }
  });

  test(`SMTP, ${label}: a boundary longer than mime_boundary_length_limit is taken (250), logged, and still delimits parts`, async () => {
    const boundary = 'q'.repeat(5000);
    const message = multipart(boundary, ['Content-Type: text/plain\n\none\n', 'Content-Type: text/plain\n\ntwo\n', 'Content-Type: text/plain\n\nthree\n']);
    const policy = await start(config);
    const client = await open(policy);
    try {
      const { data } = await send(client, message);
      assert.match(data, /^250 2\.0\.0 Ok: queued as /);
      assert.equal(policy.written(policy.queued[0]!).endsWith(message), true, 'queued unchanged');
      const warning = policy.logs.find((line) => line.event === 'WARN' && line.limit === 'mime_boundary_length_limit');
      assert.match(String(warning?.msg), /warning: MIME boundary "q{40}…" is longer than mime_boundary_length_limit \(2048 bytes\): only its first 2048 bytes are compared$/);
    } finally {
      await client.close();
      await policy.close();
    }
    // With a part limit of 2 the same message is refused: its three parts were found.
    const strict = await start({ ...config, mainCf: `${config.mainCf}\nmxscreen_mime_part_count_limit = 2` });
    try {
      await assertRefused(strict, message, { reply: '552 5.6.0 MIME part count exceeds safety limit', limit: 'mxscreen_mime_part_count_limit', value: 2 });
    } finally {
      await strict.close();
    }
  });

  test(`SMTP, ${label}: the limits come from main.cf (mxscreen_header_count_limit = 3, mime_nesting_limit = 2)`, async () => {
    const policy = await start({ ...config, mainCf: `${config.mainCf}\nmxscreen_header_count_limit = 3\nmime_nesting_limit = 2` });
    try {
      const client = await open(policy);
      try {
        assert.match((await send(client, 'A: 1\r\nB: 2\r\nC: 3\r\n\r\nx\r\n')).data, /^250 /);
        assert.match((await send(client, nested(2))).data, /^250 /);
      } finally {
        await client.close();
      }
      await assertRefused(policy, 'A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nx\r\n', { reply: '552 5.6.0 Message header count exceeds safety limit', limit: 'mxscreen_header_count_limit', value: 3 });
      await assertRefused(policy, nested(3), { reply: '550 5.6.0 MIME nesting exceeds safety limit', limit: 'mime_nesting_limit', value: 2 });
    } finally {
      await policy.close();
    }
  });
}

test('SMTP, with header_checks: a header section the inspection cannot hold (12 × 100 KB headers) → 552 5.6.0, named; taken without checks', async () => {
  const message = `${Array.from({ length: 12 }, (_, index) => `X-Big${index}: ${'c'.repeat(100_000)}\r\n`).join('')}\r\nbody\r\n`;
  const checked = await start(WITH_CHECKS);
  try {
    await assertRefused(checked, message, { reply: '552 5.6.0 Message header section exceeds safety limit', limit: 'content inspection header section', value: 1024 * 1024 });
  } finally {
    await checked.close();
  }
  const unchecked = await start({ mainCf: MAIN_CF });
  const client = await open(unchecked);
  try {
    assert.match((await send(client, message)).data, /^250 2\.0\.0 Ok: queued as /);
  } finally {
    await client.close();
    await unchecked.close();
  }
});

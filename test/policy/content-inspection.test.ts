// header_checks / mime_header_checks / nested_header_checks / mxscreen_blocked_attachment_types
// on the streaming MIME splitter, with the sample rules/mime_header_checks (seed 001).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { createLogger } from '../../src/ops/log.js';
import { parseRegexpTable } from '../../src/tables/regexp-table.js';
import { inspectContent, type ContentSettings } from '../../src/policy/content-inspection.js';
import { DEFAULT_CONTENT_LIMITS, type ContentLimits } from '../../src/policy/content-limits.js';
import { parseHeaderAction } from '../../src/policy/header-checks.js';
import { repositoryRoot } from '../fakes/repository-root.js';
import { runTranscript, startPolicy } from './transcript.js';

const sampleFile = join(repositoryRoot(), 'rules', 'mime_header_checks');
const sample = parseRegexpTable('pcre:mime_header_checks', 'pcre', readFileSync(sampleFile, 'utf8'), sampleFile);

function table(spec: string, text: string) {
  const parsed = parseRegexpTable(spec, 'pcre', text, spec);
  assert.deepEqual(parsed.problems, []);
  return parsed.table;
}

const none: ContentSettings = { tables: { header_checks: [], mime_header_checks: [], nested_header_checks: [] }, blockedTypes: [] };
const mimeSample: ContentSettings = { ...none, tables: { ...none.tables, mime_header_checks: [sample.table] } };

async function inspect(message: string, settings: ContentSettings, logs: string[] = [], limits: ContentLimits = DEFAULT_CONTENT_LIMITS) {
  const log = createLogger({ destination: { write: (line: string) => void logs.push(line) } });
  const inspection = inspectContent(Readable.from([Buffer.from(message.replace(/\n/g, '\r\n'))]), settings, log, limits);
  const chunks: Buffer[] = [];
  for await (const chunk of inspection.output) chunks.push(chunk as Buffer);
  return { verdict: inspection.verdict(), output: Buffer.concat(chunks).toString() };
}

function multipart(partHeaders: string): string {
  return `From: a@b.example\nSubject: report\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nhello\n--XX\n${partHeaders}\n\nAAAA\n--XX--\n`;
}

test('sample rules/mime_header_checks loads without problems', () => {
  assert.deepEqual(sample.problems, []);
});

const attachments = [
  { name: 'plain filename', input: 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="invoice.exe"', want: 'reject' },
  { name: 'Content-Type name=', input: 'Content-Type: application/octet-stream; name=setup.scr', want: 'reject' },
  { name: 'RFC 2231 encoded filename', input: "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''invoice.%65xe", want: 'reject' },
  { name: 'RFC 2231 continuation', input: "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*0*=utf-8''inv; filename*1*=oice.e; filename*2*=xe", want: 'reject' },
  { name: 'RFC 2047 encoded filename', input: 'Content-Type: application/octet-stream; name="=?UTF-8?B?aW52b2ljZS5leGU=?="', want: 'reject' },
  { name: 'folded header', input: 'Content-Type: application/octet-stream\nContent-Disposition: attachment;\n\tfilename="payload.bat"', want: 'reject' },
  { name: 'upper-case extension', input: 'Content-Type: application/octet-stream; name="PAYLOAD.JAR"', want: 'reject' },
  { name: 'a pdf passes', input: 'Content-Type: application/pdf\nContent-Disposition: attachment; filename="invoice.pdf"', want: 'accept' },
  { name: '.exe inside the name only', input: 'Content-Type: application/pdf; name="my.exe.notes.pdf"', want: 'accept' },
];

for (const { name, input, want } of attachments) {
  test(`mime_header_checks sample: ${name} → ${want}`, async () => {
    const { verdict } = await inspect(multipart(input), mimeSample);
    assert.equal(verdict.kind, want);
  });
}

test('the reject names the rule text with 550 5.7.1, and the table line and header', async () => {
  const { verdict } = await inspect(multipart('Content-Type: application/octet-stream; name="invoice.exe"'), mimeSample);
  assert.equal(verdict.kind, 'reject');
  if (verdict.kind !== 'reject') return;
  assert.deepEqual(verdict.reply, { code: 550, enhanced: '5.7.1', text: 'Attachment name "invoice.exe" may not end with ".exe"' });
  assert.equal(verdict.match.source, 'pcre:mime_header_checks');
  assert.equal(verdict.match.line, 12);
  assert.match(verdict.match.header, /^Content-Type: application\/octet-stream; name="invoice\.exe"/);
});

test('an .exe inside an attached message (message/rfc822) is found at depth', async () => {
  const inner = `From: x@y.example\nSubject: fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="YY"\n\n--YY\nContent-Type: text/plain\n\nhi\n--YY\nContent-Type: application/octet-stream; name="deep.exe"\n\nAAAA\n--YY--\n`;
  const message = `From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nsee attached\n--XX\nContent-Type: message/rfc822\n\n${inner}\n--XX--\n`;
  const { verdict } = await inspect(message, mimeSample);
  assert.equal(verdict.kind, 'reject');
});

test('header_checks sees top-level headers only; nested_header_checks sees the attached message\'s', async () => {
  const subject = table('pcre:header_checks', '/^Subject: .*lottery/ REJECT Lottery spam\n');
  const inner = `From: x@y.example\nSubject: you won the lottery\n\nbody\n`;
  const message = `From: a@b.example\nSubject: fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: message/rfc822\n\n${inner}\n--XX--\n`;
  assert.equal((await inspect(message, { ...none, tables: { ...none.tables, header_checks: [subject] } })).verdict.kind, 'accept');
  assert.equal((await inspect(message, { ...none, tables: { ...none.tables, nested_header_checks: [subject] } })).verdict.kind, 'reject');
  assert.equal((await inspect('Subject: the lottery\n\nx\n', { ...none, tables: { ...none.tables, header_checks: [subject] } })).verdict.kind, 'reject');
});

test('a RFC 2047-encoded Subject is matched decoded', async () => {
  const subject = table('pcre:header_checks', '/^Subject: .*lottery/ REJECT\n');
  const { verdict } = await inspect('Subject: =?UTF-8?B?eW91IHdvbiB0aGUgbG90dGVyeQ==?=\n\nx\n', { ...none, tables: { ...none.tables, header_checks: [subject] } });
  assert.equal(verdict.kind, 'reject');
  assert.equal(verdict.kind === 'reject' ? verdict.reply.text : '', 'message content rejected');
});

test('WARN logs and accepts; IGNORE drops the header; PREPEND adds one; the body is unchanged', async () => {
  const rules = table('pcre:header_checks', '/^X-Mailer: spamtool/ WARN suspicious mailer\n/^X-Secret:/ IGNORE\n/^Subject:/ PREPEND X-Checked: yes\n');
  const logs: string[] = [];
  const { verdict, output } = await inspect('X-Mailer: spamtool 1.0\nX-Secret: 42\nSubject: hi\n\nbody line\n', { ...none, tables: { ...none.tables, header_checks: [rules] } }, logs);
  assert.equal(verdict.kind, 'accept');
  assert.ok(logs.some((line) => line.includes('suspicious mailer') && line.includes('pcre:header_checks:1')));
  assert.doesNotMatch(output, /X-Secret/);
  assert.match(output, /X-Checked: yes\r\n/);
  assert.match(output, /\r\n\r\nbody line\r\n$/);
});

test('DISCARD and HOLD are verdicts; REJECT wins over both', async () => {
  const rules = table('pcre:header_checks', '/^Subject: discard/ DISCARD\n/^Subject: hold/ HOLD\n/^X-Bad:/ REJECT\n');
  const settings = { ...none, tables: { ...none.tables, header_checks: [rules] } };
  assert.equal((await inspect('Subject: discard me\n\nx\n', settings)).verdict.kind, 'discard');
  assert.equal((await inspect('Subject: hold me\n\nx\n', settings)).verdict.kind, 'hold');
  assert.equal((await inspect('Subject: hold me\nX-Bad: 1\n\nx\n', settings)).verdict.kind, 'reject');
});

test('header action parsing: every action, case-insensitive', () => {
  assert.deepEqual(parseHeaderAction('reject'), { kind: 'reject', text: 'message content rejected' });
  assert.deepEqual(parseHeaderAction('PREPEND X-A: b'), { kind: 'prepend', header: 'X-A: b' });
  assert.deepEqual(parseHeaderAction('ignore'), { kind: 'ignore' });
  assert.deepEqual(parseHeaderAction('FILTER smtp:x'), { kind: 'unsupported', action: 'FILTER smtp:x' });
});

// Forwarded as attachment (Thunderbird, Outlook): message/rfc822 with Content-Disposition:
// attachment, which mailsplit does not parse; attached-message.ts splits it again.
const exeInside = `From: x@y.example\nSubject: the invoice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="YY"\n\n--YY\nContent-Type: text/plain\n\nsee attached\n--YY\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="invoice.exe"\n\nTVqQAAMAAAAEAAAA\n--YY--\n`;
const cleanInside = `From: x@y.example\nSubject: minutes\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="YY"\n\n--YY\nContent-Type: text/plain\n\nthe minutes\n--YY\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="minutes.pdf"\n\nJVBERi0xLjQK\n--YY--\n`;

/** `inner` forwarded as an attachment; `encoding` names a Content-Transfer-Encoding to apply. */
function forwarded(inner: string, options: { boundary?: string; encoding?: 'base64' | 'quoted-printable' } = {}): string {
  const boundary = options.boundary ?? 'XX';
  let body = inner.replace(/\n$/, '');
  let encodingHeader = '';
  if (options.encoding === 'base64') {
    body = (Buffer.from(inner.replace(/\n/g, '\r\n')).toString('base64').match(/.{1,76}/g) ?? []).join('\n');
    encodingHeader = 'Content-Transfer-Encoding: base64\n';
  } else if (options.encoding === 'quoted-printable') {
    body = body.replace(/=/g, '=3D');
    encodingHeader = 'Content-Transfer-Encoding: quoted-printable\n';
  }
  return `From: a@b.example\nSubject: Fwd: see below\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${boundary}"\n\n--${boundary}\nContent-Type: text/plain\n\nforwarding this\n--${boundary}\nContent-Type: message/rfc822; name="forwarded.eml"\n${encodingHeader}Content-Disposition: attachment; filename="forwarded.eml"\n\n${body}\n--${boundary}--\n`;
}

test('attached message (disposition attachment): an .exe inside is rejected by the seed 001 rule', async () => {
  const { verdict } = await inspect(forwarded(exeInside), mimeSample);
  assert.equal(verdict.kind, 'reject');
  if (verdict.kind !== 'reject') return;
  assert.deepEqual(verdict.reply, { code: 550, enhanced: '5.7.1', text: 'Attachment name "invoice.exe" may not end with ".exe"' });
  assert.equal(verdict.match.source, 'pcre:mime_header_checks');
  assert.equal(verdict.match.line, 12);
  assert.match(verdict.match.header, /^Content-(Type|Disposition): .*name="invoice\.exe"/);
});

test('attached message (disposition attachment): its Subject is matched by nested_header_checks, not header_checks', async () => {
  const subject = table('pcre:nested', '/^Subject: the invoice/ REJECT 5.7.1 forwarded invoice\n');
  const nested = await inspect(forwarded(exeInside), { ...none, tables: { ...none.tables, nested_header_checks: [subject] } });
  assert.equal(nested.verdict.kind, 'reject');
  assert.equal(nested.verdict.kind === 'reject' ? nested.verdict.match.header : '', 'Subject: the invoice');
  const top = await inspect(forwarded(exeInside), { ...none, tables: { ...none.tables, header_checks: [subject] } });
  assert.equal(top.verdict.kind, 'accept');
});

test('attached message (disposition attachment): its Content-Type goes to mime_header_checks (postconf(5))', async () => {
  const rules = table('pcre:mime', '/^Content-Type: multipart.mixed; boundary="YY"/ REJECT inner multipart\n');
  const { verdict } = await inspect(forwarded(exeInside), { ...none, tables: { ...none.tables, mime_header_checks: [rules], nested_header_checks: [] } });
  assert.equal(verdict.kind, 'reject');
});

test('an attached message inside an attached message: the .exe two levels down is rejected', async () => {
  const middle = forwarded(exeInside, { boundary: 'MM' }).replace('Subject: Fwd: see below', 'Subject: Fwd: Fwd');
  const { verdict } = await inspect(forwarded(middle), mimeSample);
  assert.equal(verdict.kind, 'reject');
  assert.equal(verdict.kind === 'reject' ? verdict.match.line : 0, 12);
});

test('an attached message inside an attached message: the inner Subject meets nested_header_checks', async () => {
  const subject = table('pcre:nested', '/^Subject: the invoice/ REJECT\n');
  const middle = forwarded(exeInside, { boundary: 'MM' });
  const { verdict } = await inspect(forwarded(middle), { ...none, tables: { ...none.tables, nested_header_checks: [subject] } });
  assert.equal(verdict.kind, 'reject');
});

test('attached message: the queued bytes equal the input, even when rules IGNORE/PREPEND inside it', async () => {
  const rules = table('pcre:nested', '/^Subject: the invoice/ IGNORE\n/^From: x@y/ PREPEND X-Seen: inner\n');
  for (const message of [forwarded(exeInside), forwarded(forwarded(cleanInside, { boundary: 'MM' })), forwarded(exeInside, { encoding: 'base64' })]) {
    const input = message.replace(/\n/g, '\r\n');
    const { verdict, output } = await inspect(message, { ...none, tables: { ...none.tables, nested_header_checks: [rules] } });
    assert.equal(verdict.kind, 'accept');
    assert.equal(output, input);
  }
});

test('attached message: a clean forwarded message passes every check', async () => {
  const settings: ContentSettings = {
    tables: { header_checks: [], mime_header_checks: [sample.table], nested_header_checks: [table('pcre:nested', '/^Subject: .*lottery/ REJECT\n')] },
    blockedTypes: ['application/x-msdownload'],
  };
  const message = forwarded(forwarded(cleanInside, { boundary: 'MM' }));
  const { verdict, output } = await inspect(message, settings);
  assert.equal(verdict.kind, 'accept');
  assert.equal(output, message.replace(/\n/g, '\r\n'));
});

test('attached message: mxscreen_blocked_attachment_types applies inside it', async () => {
  const { verdict } = await inspect(forwarded(exeInside), { ...none, blockedTypes: ['application/x-msdownload', 'application/x-msdos-program'] });
  assert.equal(verdict.kind, 'reject');
  assert.equal(verdict.kind === 'reject' ? verdict.match.source : '', 'mxscreen_blocked_attachment_types');
});

const encodedCases = [
  { name: 'base64 (invalid per RFC 2046 §5.2.1, decoded and inspected)', input: forwarded(exeInside, { encoding: 'base64' }), want: 'reject' },
  { name: 'quoted-printable (decoded and inspected)', input: forwarded(exeInside, { encoding: 'quoted-printable' }), want: 'reject' },
  { name: 'base64, clean', input: forwarded(cleanInside, { encoding: 'base64' }), want: 'accept' },
];
for (const { name, input, want } of encodedCases) {
  test(`attached message, ${name} → ${want}`, async () => {
    assert.equal((await inspect(input, mimeSample)).verdict.kind, want);
  });
}

test('attached message: fed one small chunk at a time, the .exe is still found and the bytes are unchanged', async () => {
  const message = forwarded(forwarded(exeInside, { boundary: 'MM' }), { encoding: 'base64' }).replace(/\n/g, '\r\n');
  const bytes = Buffer.from(message);
  const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, index) => bytes.subarray(index * 7, index * 7 + 7));
  const log = createLogger({ destination: { write: () => undefined } });
  const inspection = inspectContent(Readable.from(chunks), mimeSample, log);
  const out: Buffer[] = [];
  for await (const chunk of inspection.output) out.push(chunk as Buffer);
  assert.equal(Buffer.concat(out).toString(), message);
  assert.equal(inspection.verdict().kind, 'reject');
});

test('attached message: a large part before the .exe streams through (backpressure) and the verdict is final at the end', async () => {
  const filler = `${'A'.repeat(76)}\n`.repeat(40_000); // ~3 MB of base64-looking body
  const inner = exeInside.replace('--YY\nContent-Type: application/octet-stream', `--YY\nContent-Type: application/pdf\n\n${filler}--YY\nContent-Type: application/octet-stream`);
  const { verdict, output } = await inspect(forwarded(inner), mimeSample);
  assert.equal(verdict.kind, 'reject');
  assert.equal(output.length, forwarded(inner).replace(/\n/g, '\r\n').length);
});

test('attached message whose own split hits a mailsplit bound (a header section over 1 MiB) is refused 552 5.6.0, not passed uninspected', async () => {
  const inner = `X-Padding: ${'a'.repeat(1_100_000)}\n${exeInside}`;
  const { verdict } = await inspect(forwarded(inner), mimeSample);
  assert.equal(verdict.kind, 'limit');
  if (verdict.kind !== 'limit') return;
  assert.deepEqual(verdict.refusal.reply, { code: 552, enhanced: '5.6.0', text: 'Message header section exceeds safety limit' });
  assert.equal(verdict.refusal.limit, 'content inspection header section');
});

test('an attached message with more parts than its splitter may hold is refused by mxscreen_mime_part_count_limit', async () => {
  const parts = Array.from({ length: 12 }, (_, index) => `--P\nContent-Type: text/plain\n\npart ${index}\n`).join('');
  const inner = `From: x@y.example\nContent-Type: multipart/mixed; boundary="P"\n\n${parts}--P--\n`;
  const limits = { ...DEFAULT_CONTENT_LIMITS, mimePartCountLimit: 5 }; // the splitter holds 2 × 5 + 2 nodes
  const { verdict } = await inspect(forwarded(inner, { encoding: 'base64' }), mimeSample, [], limits);
  assert.equal(verdict.kind === 'limit' ? verdict.refusal.limit : verdict.kind, 'mxscreen_mime_part_count_limit');
  assert.equal((await inspect(forwarded(inner, { encoding: 'base64' }), mimeSample)).verdict.kind, 'accept');
});

test('MIME nesting past mime_nesting_limit (100) is refused 550 5.6.0 as cleanup(8) words it, also inside a decoded attached message', async () => {
  let message = exeInside.replace('invoice.exe', 'invoice.pdf');
  for (let level = 0; level < 51; level += 1) message = forwarded(message, { boundary: `B${level}` });
  const { verdict } = await inspect(message, mimeSample);
  assert.equal(verdict.kind, 'limit');
  if (verdict.kind !== 'limit') return;
  assert.deepEqual(verdict.refusal.reply, { code: 550, enhanced: '5.6.0', text: 'MIME nesting exceeds safety limit' });
  assert.equal(verdict.refusal.limit, 'mime_nesting_limit');
  let shallow = exeInside.replace('invoice.exe', 'invoice.pdf');
  for (let level = 0; level < 48; level += 1) shallow = forwarded(shallow, { boundary: `B${level}` });
  assert.equal((await inspect(shallow, mimeSample)).verdict.kind, 'accept');
  // The parameter, not a constant: 4 base64 levels (decoded here) put 9 containers around the
  // innermost part (2 per level, 1 of the inner multipart): fine at 9, refused at 8.
  let four = exeInside.replace('invoice.exe', 'invoice.pdf');
  for (let level = 0; level < 4; level += 1) four = forwarded(four, { boundary: `B${level}`, encoding: 'base64' });
  assert.equal((await inspect(four, mimeSample, [], { ...DEFAULT_CONTENT_LIMITS, mimeNestingLimit: 9 })).verdict.kind, 'accept');
  const deep = await inspect(four, mimeSample, [], { ...DEFAULT_CONTENT_LIMITS, mimeNestingLimit: 8 });
  assert.equal(deep.verdict.kind === 'limit' ? deep.verdict.refusal.limit : deep.verdict.kind, 'mime_nesting_limit');
});

const blocked: ContentSettings = { ...none, blockedTypes: ['application/x-msdownload', 'application/x-msdos-program'] };
const typeCases = [
  { name: 'declared type', input: 'Content-Type: application/x-msdownload; name="report.txt"', want: 'reject' },
  { name: 'renamed: the extension implies the type', input: 'Content-Type: application/octet-stream; name="setup.exe"', want: 'reject' },
  { name: 'encoded name implies the type', input: "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''setup.%65xe", want: 'reject' },
  { name: 'a pdf passes', input: 'Content-Type: application/pdf; name="a.pdf"', want: 'accept' },
];
for (const { name, input, want } of typeCases) {
  test(`mxscreen_blocked_attachment_types: ${name} → ${want}`, async () => {
    assert.equal((await inspect(multipart(input), blocked)).verdict.kind, want);
  });
}

test('mxscreen_blocked_attachment_types: a family (application/*) blocks every application type', async () => {
  assert.equal((await inspect(multipart('Content-Type: application/pdf; name="a.pdf"'), { ...none, blockedTypes: ['application/*'] })).verdict.kind, 'reject');
});

test('end to end: a rejected message gets 550 5.7.1 at the end of DATA, nothing is queued, the log names table:line and header', async () => {
  const policy = await startPolicy({
    mainCf: 'mynetworks = 127.0.0.1/32\nrelay_domains = example.com\nmime_header_checks = pcre:mime_header_checks',
    files: { mime_header_checks: readFileSync(sampleFile, 'utf8') },
  });
  try {
    const body = multipart('Content-Type: application/octet-stream; name="invoice.exe"')
      .split('\n')
      .map((line) => `C: ${line}`)
      .join('\n');
    await runTranscript(
      policy,
      `C: EHLO client.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 354\n${body}\nC: .\nS: 550 5.7.1 Attachment name "invoice.exe" may not end with ".exe"\nC: QUIT\nS: 221`,
    );
    assert.equal(policy.queued.length, 0);
    const line = policy.logs.find((entry) => entry.event === 'reject' && entry.action === 'content-rejected');
    assert.ok(line, 'reject log line');
    assert.equal(line.line, 12);
    assert.match(String(line.msg), /NOQUEUE: reject: header Content-Type: application\/octet-stream; name="invoice\.exe" from \[127\.0\.0\.2\]:\d+; .*\(pcre:mime_header_checks:12\)/);
  } finally {
    await policy.close();
  }
});

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

async function inspect(message: string, settings: ContentSettings, logs: string[] = []) {
  const log = createLogger({ destination: { write: (line: string) => void logs.push(line) } });
  const inspection = inspectContent(Readable.from([Buffer.from(message.replace(/\n/g, '\r\n'))]), settings, log);
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

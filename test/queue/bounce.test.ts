import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeDsn, headerSection, wantsNotice, type DsnRequest } from '../../src/queue/bounce.js';
import type { Envelope } from '../../src/message/envelope.js';

const original = Buffer.from('From: alice@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nthe body text\r\n');
const envelope: Envelope = {
  sender: 'alice@example.org',
  recipients: [{ address: 'gone@example.com', orcpt: 'rfc822;gone@example.com' }],
  arrivalTime: Date.UTC(2024, 0, 1),
  client: { address: '127.0.0.9', port: 40000 },
  sessionId: 'S1',
  dsn: { envid: 'ENV-42' },
};

function request(overrides: Partial<DsnRequest> = {}): DsnRequest {
  return {
    action: 'failed',
    reportingMta: 'mx1.example.net',
    queueId: '18CC1A6F2000ABCD',
    envelope,
    recipients: [{ address: 'gone@example.com', orcpt: 'rfc822;gone@example.com', status: '5.1.1', text: 'mail.example.com[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command)' }],
    original,
    originalComplete: true,
    now: Date.UTC(2024, 0, 2),
    ...overrides,
  };
}

test('bounce: the DSN is multipart/report with delivery-status (RFC 3464)', async () => {
  const text = (await composeDsn(request())).toString();
  assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
  assert.match(text, /^From: Mail Delivery System <MAILER-DAEMON@mx1\.example\.net>$/m);
  assert.match(text, /^To: alice@example\.org$/m);
  assert.match(text, /^Subject: Undelivered Mail Returned to Sender$/m);
  assert.match(text, /^Content-Type: message\/delivery-status$/m);
});

test('bounce: per-message and per-recipient fields', async () => {
  const text = (await composeDsn(request())).toString();
  for (const field of [
    /^Reporting-MTA: dns; mx1\.example\.net\r$/m,
    /^Original-Envelope-Id: ENV-42\r$/m,
    /^Arrival-Date: Mon, 01 Jan 2024 00:00:00 \+0000\r$/m,
    /^Final-Recipient: rfc822; gone@example\.com\r$/m,
    /^Original-Recipient: rfc822;gone@example\.com\r$/m,
    /^Action: failed\r$/m,
    /^Status: 5\.1\.1\r$/m,
    /^Remote-MTA: dns; mail\.example\.com\r$/m,
    /^Diagnostic-Code: smtp; 550 5\.1\.1 User unknown\r$/m,
  ]) {
    assert.match(text, field);
  }
});

test('bounce: the whole original message is returned by default', async () => {
  const text = (await composeDsn(request())).toString();
  assert.match(text, /^Content-Type: message\/rfc822$/m);
  assert.ok(text.includes('the body text'));
});

test('bounce: RET=HDRS returns the headers only', async () => {
  const text = (await composeDsn(request({ envelope: { ...envelope, dsn: { ret: 'HDRS' } } }))).toString();
  assert.match(text, /^Content-Type: text\/rfc822-headers$/m);
  assert.ok(text.includes('Subject: hello'));
  assert.ok(!text.includes('the body text'));
});

test('bounce: an original that is not complete (over bounce_size_limit) returns headers only', async () => {
  const text = (await composeDsn(request({ originalComplete: false }))).toString();
  assert.match(text, /^Content-Type: text\/rfc822-headers$/m);
});

test('bounce: a delay notice says delayed and until when it is retried', async () => {
  const text = (await composeDsn(request({ action: 'delayed', retryUntil: Date.UTC(2024, 0, 6) }))).toString();
  assert.match(text, /^Subject: Delayed Mail \(still being retried\)$/m);
  assert.match(text, /^Action: delayed\r$/m);
  assert.match(text, /^Will-Retry-Until: Sat, 06 Jan 2024 00:00:00 \+0000\r$/m);
  assert.match(text, /THIS IS A WARNING ONLY/);
  assert.ok(!text.includes('the body text'));
});

test('bounce: a local reason is an X-Mxscreen diagnostic', async () => {
  const text = (await composeDsn(request({ recipients: [{ address: 'x@bounce.test', status: '5.1.1', text: '5.1.1 no such domain here' }] }))).toString();
  assert.match(text, /^Diagnostic-Code: X-Mxscreen; 5\.1\.1 no such domain here\r$/m);
});

const notices: { name: string; input: { notify?: string[]; action: 'failed' | 'delayed' | 'relayed' }; want: boolean }[] = [
  { name: 'no NOTIFY: failure notices', input: { action: 'failed' }, want: true },
  { name: 'no NOTIFY: delay notices', input: { action: 'delayed' }, want: true },
  { name: 'no NOTIFY: no success notices', input: { action: 'relayed' }, want: false },
  { name: 'NOTIFY=NEVER: no failure notice', input: { notify: ['NEVER'], action: 'failed' }, want: false },
  { name: 'NOTIFY=SUCCESS: success notice', input: { notify: ['SUCCESS'], action: 'relayed' }, want: true },
  { name: 'NOTIFY=SUCCESS: no failure notice', input: { notify: ['SUCCESS'], action: 'failed' }, want: false },
  { name: 'NOTIFY=FAILURE: no delay notice', input: { notify: ['FAILURE'], action: 'delayed' }, want: false },
  { name: 'NOTIFY=FAILURE,DELAY: delay notice', input: { notify: ['FAILURE', 'DELAY'], action: 'delayed' }, want: true },
];
for (const { name, input, want } of notices) {
  test(`bounce: ${name}`, () => {
    assert.equal(wantsNotice({ address: 'x@example.com', ...(input.notify ? { notify: input.notify } : {}) }, input.action), want);
  });
}

test('bounce: the header section ends at the first empty line', () => {
  assert.equal(headerSection(original).toString(), 'From: alice@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\n');
});

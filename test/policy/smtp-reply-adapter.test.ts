// The reply path of the policy stage: what smtp-server is handed (a handler callback's
// error, a reply the session writes) puts exactly errors.ts formatReply() on the wire, and
// countReply counts by code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import { formatReply, type SmtpReply } from '../../src/errors.js';
import { Metrics } from '../../src/ops/metrics.js';
import { countReply, sendReply, SMTPD_SERVER_REPLY_OPTIONS, toSmtpServerError } from '../../src/policy/smtp-reply-adapter.js';
import { connectClient } from '../fakes/scripted-client.js';

const cases: { name: string; input: SmtpReply; want: { responseCode: number; message: string; wire: string } }[] = [
  {
    name: 'relay denied keeps our enhanced code ahead of the text',
    input: { code: 554, enhanced: '5.7.1', text: '<a@b.example>: Relay access denied' },
    want: { responseCode: 554, message: '5.7.1 <a@b.example>: Relay access denied', wire: '554 5.7.1 <a@b.example>: Relay access denied' },
  },
  {
    name: 'size refusal',
    input: { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed limit' },
    want: { responseCode: 552, message: '5.3.4 Message size exceeds fixed limit', wire: '552 5.3.4 Message size exceeds fixed limit' },
  },
  {
    name: 'a reply without an enhanced code is the text alone',
    input: { code: 421, enhanced: '', text: 'mx.example Service not available' },
    want: { responseCode: 421, message: 'mx.example Service not available', wire: '421 mx.example Service not available' },
  },
];

for (const { name, input, want } of cases) {
  test(`toSmtpServerError and sendReply: ${name}`, () => {
    const err = toSmtpServerError(input);
    assert.equal(err.responseCode, want.responseCode);
    assert.equal(err.message, want.message);
    assert.equal(err.code, 'ERR_SMTP_REPLY');
    assert.deepEqual(err.reply, input);
    assert.equal(formatReply(input), want.wire);
    // smtp-server writes `responseCode message` (no enhanced code of its own): formatReply's line.
    assert.equal(`${err.responseCode} ${err.message}`, formatReply(input));
    const sent: unknown[][] = [];
    sendReply({ send: (...args: unknown[]) => void sent.push(args) }, input);
    assert.deepEqual(sent, [[want.responseCode, want.message, false]], 'context false: smtp-server adds no enhanced code');
  });
}

test('on the wire, through smtp-server with SMTPD_SERVER_REPLY_OPTIONS, the client reads exactly "code enhanced text" (one enhanced code, not two)', async () => {
  // smtp-server with its own enhanced codes on would send `554 5.7.1 5.7.1 …` (its table's
  // code ahead of ours); at MAIL a bare reply, at RCPT one from the table.
  const server = new SMTPServer({
    ...SMTPD_SERVER_REPLY_OPTIONS,
    logger: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    onMailFrom: (address, _session, callback) =>
      callback(address.address === 'refused@sender.example' ? toSmtpServerError({ code: 550, enhanced: '5.1.0', text: '<refused@sender.example>: Sender address rejected' }) : undefined),
    onRcptTo: (_address, _session, callback) => callback(toSmtpServerError(cases[0]!.input)),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  const client = await connectClient({ port, localAddress: '127.0.0.2' });
  try {
    assert.equal((await client.readReply(2000)).code, 220);
    client.send('EHLO client.example\r\n');
    assert.equal((await client.readReply(2000)).code, 250);
    client.send('MAIL FROM:<refused@sender.example>\r\n');
    assert.deepEqual((await client.readReply(2000)).lines, ['550 5.1.0 <refused@sender.example>: Sender address rejected']);
    client.send('MAIL FROM:<a@sender.example>\r\n');
    assert.equal((await client.readReply(2000)).code, 250);
    client.send('RCPT TO:<a@b.example>\r\n');
    assert.deepEqual((await client.readReply(2000)).lines, ['554 5.7.1 <a@b.example>: Relay access denied']);
  } finally {
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('countReply counts by code', async () => {
  const metrics = new Metrics();
  countReply(metrics, 554);
  countReply(metrics, 554);
  countReply(metrics, 250);
  const values = (await metrics.smtpReplies.get()).values;
  assert.equal(values.find((v) => v.labels.code === '554')?.value, 2);
  assert.equal(values.find((v) => v.labels.code === '250')?.value, 1);
});

// DSN parameters on delivery (smtp-delivery.ts, RFC 3461 §5.2.1): the nodemailer internals
// its per-recipient RCPT TO parameters rely on, and each recipient's own NOTIFY/ORCPT on the
// wire, also after a recipient the server refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { deliverMessage } from '../../src/delivery/smtp-delivery.js';
import { decodeXtext, encodeXtext } from '../../src/delivery/xtext.js';
import { MailboxServer } from '../fakes/mailbox-server.js';

test('nodemailer internals that smtp-delivery.ts relies on for per-recipient DSN parameters are still there', () => {
  const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
  // Each RCPT TO is sent by _sendRcpt, in envelope order, with what _getDsnRcptToArgs() returns.
  assert.match(String(proto._sendRcpt), /this\._sendCommand\('RCPT TO:<' \+ recipient \+ '>' \+ this\._getDsnRcptToArgs\(\)\)/);
  assert.match(String(proto._setEnvelope), /while \(this\._envelope\.rcptQueue\.length\) \{\s*this\._sendRcpt\(this\._envelope\.rcptQueue\.shift\(\), callback\);/);
  assert.match(String(proto._advanceEnvelope), /return this\._sendRcpt\(envelope\.rcptQueue\.shift\(\), callback\);/);
  assert.equal(String(proto._setEnvelope).match(/_getDsnRcptToArgs/g), null, 'MAIL FROM does not use the RCPT TO parameters');
  // The EHLO keywords, DSN among them.
  assert.match(String(proto._parseEhloExtensions), /this\._supportedExtensions\.push\('DSN'\)/);
});

test('xtext (RFC 3461 §4): encodes what is not xchar, decodes only + with two upper case hex digits', () => {
  assert.equal(encodeXtext('a+b=c d\u00e9~'), 'a+2Bb+3Dc+20d+C3+A9~');
  assert.equal(decodeXtext('a+2Bb+3Dc+20d'), 'a+b=c d');
  for (const bad of ['a+2b', 'a+2', 'a=b', 'a b', 'caf\u00e9']) assert.equal(decodeXtext(bad), undefined, bad);
});

test('smtp delivery to a server with DSN: each RCPT TO has its own NOTIFY and ORCPT, also after a refused recipient; RET and ENVID on MAIL FROM', async () => {
  const mailbox = await MailboxServer.start();
  try {
    mailbox.setOfferDsn(true);
    mailbox.setMode('reject', 'refused@example.com');
    const body = Buffer.from('Subject: t\r\n\r\nbody\r\n');
    const result = await deliverMessage({
      targets: [{ hostname: '127.0.0.1', address: '127.0.0.1', port: mailbox.port }],
      sender: 'a@example.org',
      recipients: [
        { address: 'refused@example.com', notify: ['NEVER'], orcpt: 'rfc822;refused@example.net' },
        { address: 'b@example.com', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;b+41=x@example.net' },
        { address: 'c@example.com' },
        { address: 'd@example.com', notify: ['DELAY'] },
      ],
      size: body.length,
      body: () => Readable.from([body]),
      helo: 'mx1.test',
      connectTimeout: 2000,
      commandTimeout: 2000,
      dsn: { envid: 'id with space=1', ret: 'FULL' },
    });
    assert.deepEqual(result.recipients.map((r) => r.status), ['bounced', 'sent', 'sent', 'sent']);
    assert.equal(result.dsnSupported, true);
    assert.equal(mailbox.received.length, 1, 'one transaction');
    const [message] = mailbox.received;
    assert.deepEqual(message!.recipients, ['b@example.com', 'c@example.com', 'd@example.com']);
    assert.equal(message!.parameters.mail['RET'], 'FULL');
    assert.equal(message!.parameters.mail['ENVID'], 'id with space=1');
    const dsn = (parameters: Readonly<Record<string, string | boolean>>) => ({ notify: parameters['NOTIFY'], orcpt: parameters['ORCPT'] });
    assert.deepEqual(message!.parameters.rcpt.map(dsn), [
      { notify: 'SUCCESS,FAILURE', orcpt: 'rfc822;b+41=x@example.net' },
      { notify: undefined, orcpt: undefined },
      { notify: 'DELAY', orcpt: undefined },
    ]);
  } finally {
    await mailbox.close();
  }
});

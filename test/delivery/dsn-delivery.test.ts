// DSN parameters on delivery (smtp-delivery.ts, RFC 3461 §5.2.1): the nodemailer internals
// its per-recipient RCPT TO parameters (and its probe without DATA) rely on, and each
// recipient's own NOTIFY/ORCPT on the wire, also after a recipient the server refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { deliverMessage } from '../../src/delivery/smtp-delivery.js';
import { decodeXtext, encodeXtext } from '../../src/delivery/xtext.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { pinnedVersion } from '../fakes/dependency-pin.js';

test('nodemailer internals that smtp-delivery.ts relies on (per-recipient DSN parameters, the probe without DATA) are still there (nodemailer is pinned exactly)', () => {
  const version = pinnedVersion('nodemailer', 'DsnConnection (smtp-delivery.ts) subclasses its SMTPConnection');
  const broken = (what: string) => `nodemailer ${version}: ${what}. DsnConnection (src/delivery/smtp-delivery.ts, see its XXX) relies on it: adapt it before upgrading`;
  const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
  // Each RCPT TO is sent by _sendRcpt, in envelope order, with what _getDsnRcptToArgs() returns.
  assert.match(String(proto._sendRcpt), /this\._sendCommand\('RCPT TO:<' \+ recipient \+ '>' \+ this\._getDsnRcptToArgs\(\)\)/, broken('_sendRcpt() no longer adds _getDsnRcptToArgs() to RCPT TO'));
  assert.match(String(proto._setEnvelope), /while \(this\._envelope\.rcptQueue\.length\) \{\s*this\._sendRcpt\(this\._envelope\.rcptQueue\.shift\(\), callback\);/, broken('_setEnvelope() no longer sends the recipients in order through _sendRcpt()'));
  assert.match(String(proto._advanceEnvelope), /return this\._sendRcpt\(envelope\.rcptQueue\.shift\(\), callback\);/, broken('_advanceEnvelope() no longer sends the next recipient through _sendRcpt()'));
  assert.equal(String(proto._setEnvelope).match(/_getDsnRcptToArgs/g), null, broken('MAIL FROM now uses the RCPT TO parameters'));
  // The EHLO keywords, DSN among them.
  assert.match(String(proto._parseEhloExtensions), /this\._supportedExtensions\.push\('DSN'\)/, broken('_supportedExtensions no longer lists DSN'));
  // The probe's MAIL FROM and RCPT TO go out as reset() sends RSET: _sendCommand(), then the reply's action on _responseActions.
  assert.match(String(proto.reset), /this\._sendCommand\('RSET'\);\s*this\._responseActions\.push\(str => \{/, broken('commands are no longer sent with _sendCommand() and answered through _responseActions'));
  assert.match(String(proto._processResponse), /const action = this\._responseActions\.shift\(\);/, broken('_processResponse() no longer hands each reply to the next of _responseActions'));
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

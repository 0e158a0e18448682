import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { deliverMessage, type DeliveryRequest } from '../../src/delivery/smtp-delivery.js';
import { MailboxServer } from '../fakes/mailbox-server.js';

const body = Buffer.from('From: a@example.org\r\nSubject: t\r\n\r\n.leading dot\r\nbody\r\n');

function request(port: number, recipients: string[]): DeliveryRequest {
  return {
    targets: [{ hostname: '127.0.0.1', address: '127.0.0.1', port }],
    sender: 'a@example.org',
    recipients,
    size: body.length,
    body: () => Readable.from([body]),
    helo: 'mx1.test',
    connectTimeout: 2000,
    commandTimeout: 2000,
  };
}

test('smtp delivery: accepted recipients are sent and the body arrives byte for byte', async () => {
  const mailbox = await MailboxServer.start();
  try {
    const result = await deliverMessage(request(mailbox.port, ['b@example.com', 'c@example.com']));
    assert.deepEqual(result.recipients.map((r) => r.status), ['sent', 'sent']);
    assert.equal(result.relay, `127.0.0.1[127.0.0.1]:${mailbox.port}`);
    assert.equal(mailbox.received.length, 1);
    assert.deepEqual(mailbox.received[0]!.body, body);
    assert.deepEqual(mailbox.received[0]!.recipients, ['b@example.com', 'c@example.com']);
    assert.equal(mailbox.received[0]!.sender, 'a@example.org');
  } finally {
    await mailbox.close();
  }
});

test('smtp delivery: the null sender is sent as MAIL FROM:<>', async () => {
  const mailbox = await MailboxServer.start();
  try {
    const result = await deliverMessage({ ...request(mailbox.port, ['b@example.com']), sender: '' });
    assert.equal(result.recipients[0]!.status, 'sent');
    assert.equal(mailbox.received[0]!.sender, '');
  } finally {
    await mailbox.close();
  }
});

test('smtp delivery: a 5xx for one recipient bounces only that one', async () => {
  const mailbox = await MailboxServer.start();
  try {
    mailbox.setMode('reject', 'gone@example.com');
    const result = await deliverMessage(request(mailbox.port, ['b@example.com', 'gone@example.com']));
    assert.deepEqual(result.recipients.map((r) => [r.status, r.dsn]), [['sent', '2.0.0'], ['bounced', '5.1.1']]);
    assert.match(result.recipients[0]!.text, /^250 /);
    assert.match(result.recipients[1]!.text, /said: 550 .*\(in reply to RCPT TO command\)$/);
    assert.deepEqual(mailbox.received[0]!.recipients, ['b@example.com']);
  } finally {
    await mailbox.close();
  }
});

test('smtp delivery: a 4xx defers', async () => {
  const mailbox = await MailboxServer.start();
  try {
    mailbox.setMode('tempfail');
    const result = await deliverMessage(request(mailbox.port, ['b@example.com', 'c@example.com']));
    assert.deepEqual(result.recipients.map((r) => [r.status, r.dsn]), [['deferred', '4.3.0'], ['deferred', '4.3.0']]);
    assert.equal(mailbox.received.length, 0);
  } finally {
    await mailbox.close();
  }
});

test('smtp delivery: a refused connection defers with Postfix text', async () => {
  const mailbox = await MailboxServer.start();
  await mailbox.down();
  const result = await deliverMessage(request(mailbox.port, ['b@example.com']));
  assert.equal(result.recipients[0]!.status, 'deferred');
  assert.equal(result.recipients[0]!.dsn, '4.4.1');
  assert.equal(result.recipients[0]!.text, `connect to 127.0.0.1[127.0.0.1]:${mailbox.port}: Connection refused`);
});

test('smtp delivery: the next target is tried when connecting fails', async () => {
  const mailbox = await MailboxServer.start();
  const dead = await MailboxServer.start();
  await dead.down();
  try {
    const base = request(mailbox.port, ['b@example.com']);
    const result = await deliverMessage({
      ...base,
      targets: [{ hostname: 'dead.test', address: '127.0.0.1', port: dead.port }, ...base.targets],
    });
    assert.equal(result.recipients[0]!.status, 'sent');
    assert.equal(mailbox.received.length, 1);
  } finally {
    await mailbox.close();
  }
});

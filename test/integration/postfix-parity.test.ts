// Parity with the smtpd(8) our users run: the same command lines go to a real Postfix
// (a private instance, bench/postfix-peer.ts) and to mxscreen's policy stage, each with the
// same relay configuration, and every reply must be the same once the host name, the
// mail_name in the banner and the queue id are set aside. EHLO is compared as a set of
// keywords; CHUNKING, which mxscreen does not offer, is the one known difference.
// Needs root and the Debian postfix package: skipped with a message outside CI when either
// is missing, run (and failed) under CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostfixPeer, peerUnavailable } from '../../bench/postfix-peer.js';
import { freePort } from '../../bench/delivery-sink.js';
import { connectClient } from '../fakes/scripted-client.js';
import { startPolicy } from '../policy/transcript.js';

/** Command lines, in order: order and syntax errors, smtpd's refusals, one whole message, VRFY, ETRN. */
const SCRIPT = [
  'MAIL FROM:<a@b.example>', 'HELO x.example', 'EHLO x.example', 'RCPT TO:<info@example.com>', 'DATA',
  'MAIL TO:<a@b.example>', 'MAIL FROM:', 'MAIL FROM:a@b.example', 'MAIL FROM:<c@b.example>', 'MAIL TO:<c@b.example>', 'DATA',
  'RCPT FROM:<info@example.com>', 'RCPT TO:<>', 'RCPT TO:<info@example.com> FOO=BAR', 'RCPT TO:info@example.com',
  'ETRN example.com', 'RSET now', 'NOOP x', 'RSET',
  // After a refused SIZE= Postfix 3.7 keeps refusing MAIL until RSET (its msg_size stays): not copied.
  'MAIL FROM:<a@b.example> SIZE=abc', 'MAIL FROM:<a@b.example> BODY=FOO', 'MAIL FROM:<a@b.example> SIZE=999999999999', 'RSET',
  '', '   ', 'HELP', 'HELP MAIL', 'EXPN staff', 'TURN', 'WIZ', 'SHELL', 'KILL', 'FOO bar',
  'STARTTLS', 'AUTH PLAIN AGFiYwBkZWY=', 'XCLIENT NAME=x', 'XFORWARD NAME=x',
  'VRFY', 'VRFY info@example.com', 'VRFY  Joe   <joe@example.com>',
  'MAIL FROM:<>', 'RCPT TO:<info@example.com>', 'DATA', 'Subject: parity\r\n\r\nbody\r\n.', 'ETRN example.com', 'ETRN elsewhere.example',
  'HELO', 'EHLO', 'QUIT now',
];
/** Each is the last line of a session of its own (smtpd hangs up): forbidden and header-like commands. */
const HANGUPS = ['GET / HTTP/1.1', 'CONNECT mail.example.com:25 HTTP/1.0', 'post /', 'Subject: hello'];

/** Each reply to SCRIPT's lines (the greeting first), its host name and queue id set aside. */
async function replies(port: number, hostname: string): Promise<string[]> {
  const client = await connectClient({ port, localAddress: '127.0.0.1' });
  const normal = (lines: readonly string[]): string => {
    const text = lines.map((line) => line.split(hostname).join('HOST').replace(/ ESMTP \S+$/, ' ESMTP MAIL_NAME').replace(/queued as [0-9A-F]+/, 'queued as ID'));
    if (!text[0]?.startsWith('250-HOST')) return text.join(' | ');
    const keywords = text.slice(1).map((line) => line.slice(4)).filter((keyword) => keyword !== 'CHUNKING');
    return `${text[0]} | ${keywords.sort().join(' ')}`;
  };
  try {
    const said = [normal((await client.readReply(5000)).lines)];
    for (const line of SCRIPT) {
      client.send(`${line}\r\n`);
      const reply = await client.readReply(5000).catch((error: Error) => {
        throw new Error(`[${hostname}] after ${JSON.stringify(said.slice(-12))}, "${line}": ${error.message}`);
      });
      said.push(`${line.split('\r\n')[0] || '(blank)'} -> ${normal(reply.lines)}`);
    }
    return said;
  } finally {
    await client.close();
  }
}

/** The script makes more errors than smtpd_soft_error_limit and _hard_ allow by default: both get room. */
const LIMITS = ['smtpd_soft_error_limit = 100', 'smtpd_hard_error_limit = 100'];

/** The reply to `line` after EHLO, in a session of its own, and whether the server then hung up. */
async function hangup(port: number, hostname: string, line: string): Promise<string> {
  const client = await connectClient({ port, localAddress: '127.0.0.1' });
  try {
    await client.readReply(5000);
    client.send('EHLO x.example\r\n');
    await client.readReply(5000);
    client.send(`${line}\r\n`);
    const reply = (await client.readReply(5000)).lines.join(' | ').split(hostname).join('HOST');
    const ended = await client.waitForEnd(5000).then(
      () => 'closed',
      () => 'still open',
    );
    return `${line} -> ${reply}, ${ended}`;
  } finally {
    await client.close();
  }
}

const unavailable = peerUnavailable();

test('smtpd parity: every reply to the same command lines is the reply of a real Postfix smtpd', { skip: !process.env.CI && unavailable ? `${unavailable}: skipped outside CI` : false }, async () => {
  assert.equal(unavailable, undefined, `${unavailable} (CI runs this test)`);
  const peer = await PostfixPeer.start(await freePort(), await freePort(), LIMITS);
  let postfix: string[];
  try {
    postfix = await replies(peer.port, 'mx-peer.relay.test');
    for (const line of HANGUPS) postfix.push(await hangup(peer.port, 'mx-peer.relay.test', line));
  } finally {
    await peer.stop();
  }
  const policy = await startPolicy({ mainCf: ['mynetworks = 127.0.0.0/8', 'relay_domains = example.com', ...LIMITS].join('\n') });
  try {
    const ours = await replies(policy.port, 'mx1.example.net');
    for (const line of HANGUPS) ours.push(await hangup(policy.port, 'mx1.example.net', line));
    assert.deepEqual(ours, postfix);
  } finally {
    await policy.close();
  }
});

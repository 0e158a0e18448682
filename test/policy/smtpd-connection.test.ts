// The policy session on smtp-server internals: the 220 without smtp-server's 100 ms delay,
// ETRN, the deep-test monitor at MAIL/RCPT/DATA, error limits, the tarpit, and a pin of the
// smtp-server internals smtpd-connection.ts relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPServer } from 'smtp-server';
import type { DeepTestMonitor } from '../../src/screen-verdict.js';
import { command, connectClient } from '../fakes/scripted-client.js';
import { pinnedVersion } from '../fakes/dependency-pin.js';
import { lastLine, runTranscript, startPolicy } from './transcript.js';
import { ManualClock } from '../queue/manual-clock.js';

test('smtp-server internals that smtpd-connection.ts relies on are still there (smtp-server is pinned exactly)', () => {
  const version = pinnedVersion('smtp-server', 'PolicyConnection (smtpd-connection.ts) subclasses its SMTPConnection');
  const broken = (what: string) => `smtp-server ${version}: ${what}. PolicyConnection (src/policy/smtpd-connection.ts, see its XXX) relies on it: adapt it before upgrading`;
  const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
  for (const name of ['init', '_setListeners', 'connectionReady', 'send', '_onCommand', 'handler_MAIL', 'handler_RCPT', 'handler_DATA', 'handler_VRFY', '_getHandler', '_isSupported', '_parseAddressCommand', 'close']) {
    assert.equal(typeof proto[name], 'function', broken(`SMTPConnection.prototype.${name}() is gone`));
  }
  // _onCommand skips lines read during the TLS handshake; EHLO offers what the hide* options leave.
  assert.match(String(proto._onCommand), /this\._upgrading/, broken('_onCommand() no longer checks _upgrading'));
  assert.match(
    String(proto.handler_EHLO),
    /\['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN'\]\.filter\(feature => !this\._server\.options\['hide' \+ feature\]\)/,
    broken('EHLO no longer offers its keywords by the hide* options'),
  );
  assert.match(String(proto.handler_EHLO), /hideREQUIRETLS/, broken('EHLO no longer reads hideREQUIRETLS'));
  // send() is the one place that writes replies, and writes only when #write() counts one (onReply).
  assert.match(
    String(proto.send),
    /!this\._upgrading && this\._socket && !this\._socket\.destroyed && this\._socket\.readyState === 'open'/,
    broken('send() writes under other conditions than those onReply counts by'),
  );
  // Handler callbacks: an error's responseCode is the reply code, its message the text (smtp-reply-adapter.ts).
  for (const name of ['handler_MAIL', 'handler_RCPT']) {
    assert.match(String(proto[name]), /this\.send\(err\.responseCode \|\| 550, err\.message\)/, broken(`${name}() no longer answers a handler error with its responseCode and message`));
  }
  // Commands are found by name: handler_ETRN on a subclass becomes a command.
  assert.match(String(proto._getHandler), /handler_/, broken('commands are no longer found as handler_NAME'));
  // init() still holds the greeting back for early talkers (what we skip).
  assert.match(String(proto.init), /setTimeout\(\(\) => this\.connectionReady\(\), 100\)/, broken('init() changed (PolicyConnection.init() replaces it)'));
  const server = new SMTPServer({ logger: false, disabledCommands: ['AUTH'] }) as unknown as Record<string, unknown>;
  assert.ok(server.connections instanceof Set, broken('SMTPServer.connections is no longer a Set'));
  assert.equal(typeof server._onError, 'function', broken('SMTPServer._onError() is gone'));
  assert.equal(typeof server._onClientConnect, 'function', broken('SMTPServer._onClientConnect() is gone'));
  assert.match(String(SMTPServer.prototype.connect), /this\.connections\.add\(connection\)/, broken('SMTPServer.connect() no longer registers the connection (startSession() does what it does)'));
});

test('the 220 greeting comes at once, not after smtp-server\'s 100 ms: it comes while that timer cannot fire', async (t) => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com' });
  // setTimeout is frozen: smtp-server's init() would wait for its 100 ms timer forever.
  // The bounded wait for the greeting runs on setInterval, which stays real.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
    try {
      const greeted = await new Promise<boolean>((resolve) => {
        let polls = 0;
        const poll = setInterval(() => {
          polls += 1;
          if (/\r\n/.test(client.received()) || polls >= 200) {
            clearInterval(poll);
            resolve(/\r\n/.test(client.received()));
          }
        }, 10);
      });
      assert.ok(greeted, 'a greeting within 2 s of real time, with setTimeout frozen');
      assert.match(client.received(), /^220 mx1\.example\.net ESMTP/);
    } finally {
      await client.close();
    }
  } finally {
    t.mock.timers.reset();
    await policy.close();
  }
});

test('ETRN: before HELO 503, syntax 501, outside fast_flush_domains 459, inside 250 and the flush hook runs', async () => {
  const flushed: string[] = [];
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32', deps: { etrn: (domain) => flushed.push(domain) } });
  try {
    await runTranscript(
      policy,
      `
      C: ETRN example.com
      S: 503 5.5.1 Error: send HELO/EHLO first
      C: EHLO client.example
      S~ ^250 ENHANCEDSTATUSCODES$
      C: ETRN
      S: 501 5.5.4 Syntax: ETRN domain
      C: ETRN other.example
      S: 459 <other.example>: service unavailable
      C: ETRN example.com
      S: 250 Queuing started
      C: MAIL FROM:<a@b.example>
      S: 250
      C: ETRN example.com
      S: 503 Error: MAIL transaction in progress`,
    );
    assert.deepEqual(flushed, ['example.com']);
  } finally {
    await policy.close();
  }
});

test('ETRN: smtpd_etrn_restrictions can refuse', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32\nsmtpd_etrn_restrictions = permit_mynetworks, reject' });
  try {
    await runTranscript(policy, `C: EHLO c.example\nS: 250\nC: ETRN example.com\nS: 554 5.7.1 <example.com>: Etrn command rejected: Access denied`);
  } finally {
    await policy.close();
  }
});

function monitor(failAfter: number): DeepTestMonitor & { asked: number } {
  const state = {
    asked: 0,
    failure() {
      state.asked++;
      return state.asked > failAfter ? { test: 'pregreet' as const, reply: { code: 450, enhanced: '4.3.2', text: 'Service currently unavailable' } } : undefined;
    },
  };
  return state;
}

test('deep tests: a failure at MAIL FROM is the reply and a NOQUEUE: reject line', async () => {
  const deepTests = monitor(0);
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com', verdict: { deepTests } });
  try {
    await runTranscript(policy, `C: EHLO c.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 450 4.3.2 Service currently unavailable`);
    assert.ok(policy.logs.some((line) => line.event === 'NOQUEUE: reject' && String(line.msg).startsWith('NOQUEUE: reject: MAIL from')));
  } finally {
    await policy.close();
  }
});

test('deep tests: asked again at RCPT TO and at DATA (before 354)', async () => {
  const atRcpt = monitor(1);
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com', verdict: { deepTests: atRcpt } });
  try {
    await runTranscript(policy, `C: EHLO c.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 450 4.3.2 Service currently unavailable`);
  } finally {
    await policy.close();
  }
  const atData = monitor(2);
  const second = await startPolicy({ mainCf: 'relay_domains = example.com', verdict: { deepTests: atData } });
  try {
    // The client pushes its message after the refused DATA: its lines are commands, not
    // mail, and a header sent as a command ends the session (smtpd(8)).
    await runTranscript(
      second,
      `C: EHLO c.example\nS: 250\nC: MAIL FROM:<a@b.example>\nS: 250\nC: RCPT TO:<joe@example.com>\nS: 250\nC: DATA\nS: 450 4.3.2 Service currently unavailable
      C: Subject: x\nS: 221 2.7.0 Error: I can break rules, too. Goodbye.`,
    );
    assert.equal(second.queued.length, 0);
    assert.equal(second.logs.filter((line) => line.event === 'queued').length, 0);
  } finally {
    await second.close();
  }
});

test('smtpd_hard_error_limit: the client gets 421 4.7.0 too many errors and is disconnected', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32\nsmtpd_hard_error_limit = 3\nsmtpd_error_sleep_time = 0' });
  try {
    const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
    await lastLine(client);
    client.send('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n');
    await lastLine(client);
    await lastLine(client);
    for (let i = 0; i < 2; i++) {
      client.send('RCPT TO:<x@elsewhere.example>\r\n');
      assert.match(await lastLine(client), /^454 /);
    }
    client.send('RCPT TO:<x@elsewhere.example>\r\n');
    const reply = await client.readReply(2000);
    assert.match(reply.lines[0]!, /^454 /);
    assert.equal(await lastLine(client), '421 4.7.0 mx1.example.net Error: too many errors');
    await client.waitForEnd(1000);
    await client.close();
  } finally {
    await policy.close();
  }
});

test('HELP and commands smtpd(8) does not take: Postfix 3.7\'s replies, each an error toward smtpd_hard_error_limit (not smtp-server\'s limit of 10 unknown commands)', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32\nsmtpd_hard_error_limit = 14\nsmtpd_error_sleep_time = 0' });
  const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
  try {
    await lastLine(client);
    client.send('EHLO c.example\r\n');
    await lastLine(client);
    const said = (line: string) => command(client, line, 2000);
    assert.equal(await said('HELP'), '500 5.5.2 Error: command not recognized');
    assert.equal(await said('HELP MAIL'), '500 5.5.2 Error: command not recognized');
    assert.equal(await said('EXPN staff'), '500 5.5.2 Error: command not recognized');
    assert.equal(await said('TURN'), '500 5.5.2 Error: command not recognized');
    assert.equal(await said('STARTTLS'), '502 5.5.1 Error: command not implemented', 'no TLS configured');
    assert.equal(await said('AUTH PLAIN AGFiYwBkZWY='), '503 5.5.1 Error: authentication not enabled');
    // VRFY is no error: 252 with the argument as given (Postfix 3.7 answers so).
    assert.equal(await said('VRFY  Joe   <joe@example.com>'), '252 2.0.0 Joe <joe@example.com>');
    for (let i = 0; i < 7; i++) assert.equal(await said(`XYZZY${i}`), '500 5.5.2 Error: command not recognized', `unknown command ${i + 7}`);
    // 13 errors: the session goes on, and a real command still works.
    assert.equal(await said('NOOP'), '250 2.0.0 Ok');
    client.send('FOO\r\n');
    const reply = await client.readReply(2000);
    assert.equal(reply.lines[0], '500 5.5.2 Error: command not recognized');
    assert.equal(await lastLine(client), '421 4.7.0 mx1.example.net Error: too many errors');
    await client.waitForEnd(1000);
  } finally {
    await client.close(); // first, or a failed assertion would leave policy.close() waiting for it
    await policy.close();
  }
});

test('VRFY as smtpd(8): advertised in EHLO, 252 2.0.0 with the argument, 501 5.5.4 without; disable_vrfy_command takes it out of EHLO and answers 502 5.5.1', async () => {
  for (const disabled of [false, true]) {
    const policy = await startPolicy({ mainCf: `relay_domains = example.com\nmynetworks = 127.0.0.1/32\ndisable_vrfy_command = ${disabled ? 'yes' : 'no'}` });
    const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
    try {
      await lastLine(client);
      client.send('EHLO c.example\r\n');
      const ehlo = await client.readReply(2000);
      assert.equal(ehlo.lines.includes('250-VRFY'), !disabled, ehlo.lines.join(' | '));
      assert.ok(ehlo.lines.includes('250-ETRN') || ehlo.lines.includes('250 ETRN'));
      const said = (line: string) => command(client, line, 2000);
      if (disabled) {
        assert.equal(await said('VRFY info@example.com'), '502 5.5.1 VRFY command is disabled');
      } else {
        assert.equal(await said('VRFY info@example.com'), '252 2.0.0 info@example.com');
        assert.equal(await said('VRFY <info@example.com>'), '252 2.0.0 <info@example.com>');
        assert.equal(await said('VRFY'), '501 5.5.4 Syntax: VRFY address [SMTPUTF8]');
      }
    } finally {
      await client.close();
      await policy.close();
    }
  }
});

test('command order and syntax in Postfix 3.7\'s words, taken from a real session with the same lines: 503 5.5.1, 501 5.5.4 Syntax, 554 5.5.1 no valid recipients, an address without brackets taken (strict_rfc821_envelopes = no), RSET with an argument, a blank line, smtp-server\'s own commands refused', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32\nsmtpd_hard_error_limit = 100\nsmtpd_error_sleep_time = 0' });
  try {
    await runTranscript(
      policy,
      `
      C: EHLO x.example
      S~ ^250-ENHANCEDSTATUSCODES$|^250 ENHANCEDSTATUSCODES$
      C: RCPT TO:<info@example.com>
      S~ ^503 5.5.1 Error: need MAIL command$
      C: DATA
      S~ ^503 5.5.1 Error: need RCPT command$
      C: MAIL TO:<a@b.example>
      S~ ^501 5.5.4 Syntax: MAIL FROM:<address>$
      C: MAIL FROM:
      S~ ^501 5.5.4 Syntax: MAIL FROM:<address>$
      C: MAIL FROM:a@b.example
      S~ ^250 2.1.0 Ok$
      C: MAIL FROM:<c@b.example>
      S~ ^503 5.5.1 Error: nested MAIL command$
      C: MAIL TO:<c@b.example>
      S~ ^503 5.5.1 Error: nested MAIL command$
      C: DATA
      S~ ^554 5.5.1 Error: no valid recipients$
      C: RCPT FROM:<info@example.com>
      S~ ^501 5.5.4 Syntax: RCPT TO:<address>$
      C: RCPT TO:<>
      S~ ^501 5.1.3 Bad recipient address syntax$
      C: RCPT TO:info@example.com
      S~ ^250 2.1.5 Ok$
      C: ETRN example.com
      S~ ^503 Error: MAIL transaction in progress$
      C: RSET now
      S~ ^501 5.5.4 Syntax: RSET$
      C: RCPT TO:<info@example.com>
      S~ ^250 2.1.5 Ok$
      C: RSET
      S~ ^250 2.0.0 Ok$
      C:
      S~ ^500 5.5.2 Error: bad syntax$
      C: WIZ
      S~ ^500 5.5.2 Error: command not recognized$
      C: SHELL
      S~ ^500 5.5.2 Error: command not recognized$
      C: XCLIENT NAME=x
      S~ ^550 5.7.0 Error: insufficient authorization$
      C: HELO
      S~ ^501 Syntax: HELO hostname$
      C: EHLO
      S~ ^501 Syntax: EHLO hostname$
      C: QUIT
      S~ ^221 2.0.0 Bye$
      `,
    );
  } finally {
    await policy.close();
  }
});

test('smtpd_forbidden_commands and a header sent as a command: 221 2.7.0 Error: I can break rules, too. Goodbye., the connection closed, a non-SMTP command line logged', async () => {
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32' });
  try {
    for (const line of ['GET / HTTP/1.1', 'connect mail.example.com:25 HTTP/1.0', 'Subject: hello']) {
      const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
      try {
        await lastLine(client);
        client.send('EHLO c.example\r\n');
        await lastLine(client);
        client.send(`${line}\r\n`);
        assert.equal(await lastLine(client), '221 2.7.0 Error: I can break rules, too. Goodbye.', line);
        await client.waitForEnd(2000);
      } finally {
        await client.close();
      }
    }
    const logged = policy.logs.filter((entry) => entry.event === 'non-SMTP command');
    assert.deepEqual(logged.map((entry) => entry.command), ['GET / HTTP/1.1', 'connect mail.example.com:25 HTTP/1.0', 'Subject: hello']);
    assert.ok(logged.every((entry) => entry.level === 'warn'));
  } finally {
    await policy.close();
  }
});

test('smtpd_soft_error_limit: past it every reply waits smtpd_error_sleep_time, in order', async () => {
  const clock = new ManualClock();
  const policy = await startPolicy({ mainCf: 'relay_domains = example.com\nmynetworks = 127.0.0.1/32\nsmtpd_soft_error_limit = 1\nsmtpd_error_sleep_time = 150ms', clock });
  try {
    const client = await connectClient({ port: policy.port, localAddress: '127.0.0.2' });
    await lastLine(client);
    client.send('EHLO c.example\r\n');
    await lastLine(client);
    client.send('MAIL FROM:<a@b.example>\r\n');
    await lastLine(client);
    // The clock never moves here: a delayed reply would never come.
    client.send('RCPT TO:<x@elsewhere.example>\r\n');
    assert.match(await lastLine(client), /^454 /, 'first error is not delayed');
    client.send('RCPT TO:<y@elsewhere.example>\r\nNOOP\r\n');
    // Bounded wait (2 s) for the reply to be put on the clock.
    for (let i = 0; i < 200 && !clock.pending().includes(150); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(clock.pending().includes(150), 'the second error waits smtpd_error_sleep_time on the clock');
    assert.doesNotMatch(client.received(), /<y@/, 'not sent before its time');
    clock.advance(149);
    assert.ok(clock.pending().includes(1), 'still waiting 1 ms before its time');
    clock.advance(1);
    assert.match(await lastLine(client), /^454 4\.7\.1 <y@/);
    assert.match(await lastLine(client), /^250/, 'NOOP answered after the delayed reply, in order');
    await client.close();
  } finally {
    clock.advance(60_000); // timers close() sets
    await policy.close();
  }
});

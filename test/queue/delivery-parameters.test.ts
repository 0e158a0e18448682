// Queue and delivery parameters proven through the queue manager: each setting is read
// from main.cf text (queueSettingsFromConfig), handed to a QueueManager on a ManualClock,
// and its effect is seen at a real SMTP server on loopback (the fake mailbox servers) or
// in the in-process DNS server's query log; set back to its default, the test fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromText } from '../../src/config/config.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { queueSettingsFromConfig, type QueueSettings } from '../../src/queue/queue-settings.js';
import { Sink } from '../../src/sink/sink.js';
import { makeCertificate } from '../fakes/certificate.js';
import { withDnsServer } from '../fakes/dns-server.js';
import { startStarttlsMailboxServer } from '../fakes/starttls-mailbox-server.js';
import { startUnansweredConnect } from '../fakes/unanswered-connect.js';
import { delivered, notices, withWorld } from './queue-world.js';

/** Queue settings from main.cf `lines` (the rest at their defaults). */
function settingsFrom(lines: readonly string[]): QueueSettings {
  return queueSettingsFromConfig(configFromText(`${lines.join('\n')}\n`, { file: '/etc/mxscreen/main.cf', directory: '/etc/mxscreen' }));
}

/** A message of about `size` bytes: a Subject header and a body of x lines. */
function messageOf(size: number): string {
  const line = `${'x'.repeat(76)}\r\n`;
  return `Subject: big\r\nX-Marker: original-header\r\n\r\n${line.repeat(Math.ceil(size / line.length))}`;
}

test('bounce_size_limit: a bounced message over the limit comes back as its headers only, one under it whole', async () => {
  for (const { lines, size, whole } of [
    { lines: ['bounce_size_limit = 1000'], size: 4000, whole: false },
    { lines: ['bounce_size_limit = 1000'], size: 500, whole: true },
    { lines: [], size: 4000, whole: true }, // default 50000
  ]) {
    const { bounceSizeLimit } = settingsFrom(lines);
    await withWorld(
      async (world) => {
        await world.manager.start();
        world.manager.kick(await world.queue(['x@bounce.test'], messageOf(size)));
        await world.manager.whenIdle();
        const [notice] = notices(world);
        assert.ok(notice, 'the sender got a bounce');
        const text = notice.body.toString('latin1');
        assert.match(text, /X-Marker: original-header/, 'the original headers are returned');
        assert.equal(/Content-Type: message\/rfc822/.test(text), whole, `${lines.join()} size ${size}: message/rfc822`);
        assert.equal(/Content-Type: text\/rfc822-headers/.test(text), !whole, `${lines.join()} size ${size}: text/rfc822-headers`);
        assert.equal(text.includes('x'.repeat(76)), whole, 'the original body is returned only whole');
      },
      { bounceSizeLimit },
    );
  }
});

test('smtp_connect_timeout: a nexthop that never completes the TCP handshake defers after the time limit', { timeout: 20_000 }, async () => {
  const silent = await startUnansweredConnect();
  try {
    // 300ms; the default (30s) would outlast this test's time limit.
    const { connectTimeout } = settingsFrom(['smtp_connect_timeout = 300ms']);
    await withWorld(
      async (world) => {
        world.routes['silent.test'] = `smtp:[127.0.0.1]:${silent.port}`;
        await world.manager.start();
        world.manager.kick(await world.queue(['x@silent.test']));
        await world.manager.whenIdle();
        const [deferred] = world.capture.events('status=deferred');
        assert.ok(deferred, 'the attempt ended');
        assert.equal(deferred['dsn'], '4.4.1');
        assert.match(String(deferred['reply']), new RegExp(`connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${silent.port}: Connection timed out`));
      },
      { connectTimeout, commandTimeout: 60_000 },
    );
  } finally {
    await silent.close();
  }
});

test('smtp_tls_security_level = may: STARTTLS when the mailbox server offers it; the default (none) stays in clear text', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-tls-'));
  try {
    const files = makeCertificate(directory, 'tls-mailbox.test');
    if (!files) return t.skip('openssl is not available');
    const server = await startStarttlsMailboxServer(files);
    try {
      for (const { lines, tls } of [
        { lines: ['smtp_tls_security_level = may'], tls: true },
        { lines: [], tls: false },
      ]) {
        const { tlsLevel } = settingsFrom(lines);
        const before = server.received.length;
        await withWorld(
          async (world) => {
            world.routes['tls.test'] = server.nexthop;
            await world.manager.start();
            world.manager.kick(await world.queue(['x@tls.test']));
            await world.manager.whenIdle();
            assert.equal(world.capture.events('status=sent').length, 1, JSON.stringify(world.capture.events('status=deferred')));
          },
          { tlsLevel },
        );
        assert.deepEqual(server.received.slice(before), [{ sender: 'alice@example.org', recipients: ['x@tls.test'], tls }], lines.join() || 'default');
      }
    } finally {
      await server.close();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('MX delivery through DNS: the most preferred MX host gets the mail, the next one when it is down', async () => {
  await withDnsServer(async (dns) => {
    await withWorld(
      async (world) => {
        const port = world.mailbox.port;
        // mail1 (preference 10) is a second server on 127.0.0.2, same port; mail2 (20) the world's mailbox server.
        const first = await Sink.start({ listen: `127.0.0.2:${port}`, keep: 10 });
        dns.setMx('mx.test', [
          { exchange: 'mail2.mx.test', priority: 20 },
          { exchange: 'mail1.mx.test', priority: 10 },
        ]);
        dns.setA('mail1.mx.test', ['127.0.0.2']);
        dns.setA('mail2.mx.test', ['127.0.0.1']);
        // No brackets: the nexthop mx.test is looked up as MX (transport(5)).
        world.routes['mx.test'] = `smtp:mx.test:${port}`;
        try {
          await world.manager.start();
          world.manager.kick(await world.queue(['one@mx.test']));
          await world.manager.whenIdle();
          assert.deepEqual(first.received.map((m) => m.recipients), [['one@mx.test']]);
          assert.equal(world.capture.events('status=sent')[0]?.['relay'], `mail1.mx.test[127.0.0.2]:${port}`);
        } finally {
          await first.close();
        }
        world.manager.kick(await world.queue(['two@mx.test']));
        await world.manager.whenIdle();
        assert.deepEqual(delivered(world).map((m) => m.recipients), [['two@mx.test']]);
        assert.equal(world.capture.events('status=sent')[1]?.['relay'], `mail2.mx.test[127.0.0.1]:${port}`);
        assert.ok(dns.queryCount('mx.test', 'MX') >= 1, 'the nexthop was looked up as MX');
      },
      {},
      { resolver: createNodeResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 }) },
    );
  });
});

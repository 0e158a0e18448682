import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { delivered, MINUTE, notices, withWorld } from './queue-world.js';
import { encodeQueueFileHead } from '../../src/queue/queue-file.js';
import { encodeDeliveryState } from '../../src/queue/delivery-state.js';
import { newQueueId, queueIdTime } from '../../src/queue/queue-id.js';

test('metrics: queue oldest seconds by queue', async () => {
  await withWorld(async (world) => {
    // Queue ids carry their arrival time and never go back within a process (queue-id.ts);
    // another test's clock may have taken them past this world's start. Bring the clock up
    // to them, so that this test passes wherever it runs in the file.
    const idTime = queueIdTime(newQueueId(world.clock.now()));
    world.clock.advance(Math.max(0, idTime - world.clock.now()));
    await world.mailbox.down();
    await world.manager.start();
    world.manager.kick(await world.queue(['bob@example.com']));
    await world.manager.whenIdle();
    world.clock.advance(2 * MINUTE); // two queue runs count the queues; the message waits for its backoff
    await world.manager.whenIdle();
    assert.match(await world.metrics.registry.metrics(), /mxscreen_queue_oldest_seconds\{queue="deferred"\} 120\n/);
    assert.match(await world.metrics.registry.metrics(), /mxscreen_queue_oldest_seconds\{queue="incoming"\} 0\n/);
  }, { queueRunDelay: MINUTE });
});

test('bounces: a 5xx sends the sender a DSN naming the recipient, from <>', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'gone@example.com');
    world.manager.kick(await world.queue(['bob@example.com', 'gone@example.com']));
    await world.manager.whenIdle();
    const [dsn] = notices(world);
    assert.ok(dsn, 'a notice arrived');
    assert.deepEqual(dsn.recipients, ['alice@example.org']);
    const text = dsn.body.toString();
    assert.match(text, /^Final-Recipient: rfc822; gone@example\.com\r$/m);
    assert.match(text, /^Status: 5\.1\.1\r$/m);
    assert.ok(!/Final-Recipient: rfc822; bob@example\.com/.test(text));
  });
});

test('bounces: mail from the null sender never gets a bounce', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'gone@example.com');
    world.manager.kick(await world.queue(['gone@example.com'], undefined, { sender: '' }));
    await world.manager.whenIdle();
    assert.equal(world.capture.events('status=bounced').length, 1);
    assert.equal(world.capture.events('sender non-delivery notification').length, 0);
    assert.deepEqual(await world.files('incoming'), []);
    assert.deepEqual(await world.files('deferred'), []);
  });
});

test('bounces: NOTIFY=NEVER suppresses the bounce', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'gone@example.com');
    world.manager.kick(await world.queue([{ address: 'gone@example.com', notify: ['NEVER'] }]));
    await world.manager.whenIdle();
    assert.equal(world.capture.events('status=bounced').length, 1);
    assert.equal(notices(world).length, 0);
  });
});

test('bounces: NOTIFY=SUCCESS to a server without DSN sends a relayed notice', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.manager.kick(await world.queue([{ address: 'bob@example.com', notify: ['SUCCESS'], orcpt: 'rfc822;bob@example.com' }]));
    await world.manager.whenIdle();
    assert.equal(world.capture.events('sender delivery status notification').length, 1);
    const text = notices(world)[0]!.body.toString();
    assert.match(text, /^Action: relayed\r$/m);
    assert.match(text, /^Original-Recipient: rfc822;bob@example\.com\r$/m);
  });
});

test('bounces: bounce_queue_lifetime gives up mail from <> sooner, without a notice', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      await world.mailbox.down();
      const id = await world.queue(['bob@example.com'], undefined, { sender: '' });
      world.manager.kick(id);
      await world.manager.whenIdle();
      world.clock.advance(5 * MINUTE);
      await world.manager.whenIdle();
      world.clock.advance(10 * MINUTE);
      await world.manager.whenIdle();
      assert.equal(world.capture.events('status=bounced').length, 1);
      assert.match(String(world.capture.events('status=bounced')[0]!['reply']), /bounce_queue_lifetime/);
      assert.deepEqual(await world.files('deferred'), []);
      assert.equal(world.capture.events('sender non-delivery notification').length, 0);
    },
    { bounceQueueLifetime: 12 * MINUTE, maximalQueueLifetime: 5 * 24 * 60 * MINUTE },
  );
});

test('bounces: delay_warning_time sends one delay notice', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      world.mailbox.setMode('tempfail', 'later@example.com');
      const id = await world.queue(['later@example.com']);
      world.manager.kick(id);
      await world.manager.whenIdle();
      assert.equal(world.capture.events('sender delay notification').length, 0, 'not before delay_warning_time');
      for (let i = 0; i < 4; i += 1) {
        world.clock.advance(60 * MINUTE);
        await world.manager.whenIdle();
      }
      assert.ok(world.capture.events('status=deferred').length >= 4);
      assert.equal(world.capture.events('sender delay notification').length, 1, 'once');
      const text = notices(world)[0]!.body.toString();
      assert.match(text, /^Action: delayed\r$/m);
      assert.match(text, /^Will-Retry-Until: /m);
    },
    { delayWarningTime: 60 * MINUTE },
  );
});

test('delivery: one connection carries several messages for the same nexthop', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      for (let i = 0; i < 5; i += 1) world.manager.kick(await world.queue([`user${i}@example.com`]));
      await world.manager.whenIdle();
      assert.equal(delivered(world).length, 5);
      assert.equal(world.mailbox.connections, 1);
    },
    { concurrency: 1, connectionCacheTime: 2000 },
  );
});

test('delivery: default_destination_concurrency_limit bounds connections to a nexthop', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      const ids: string[] = [];
      for (let i = 0; i < 12; i += 1) ids.push(await world.queue([`user${i}@example.com`]));
      for (const id of ids) world.manager.kick(id);
      await world.manager.whenIdle();
      assert.equal(delivered(world).length, 12);
      assert.ok(world.mailbox.connections <= 2, `${world.mailbox.connections} connections`);
    },
    { concurrency: 10, destinationConcurrencyLimit: 2, connectionCacheTime: 2000 },
  );
});

test('delivery: a dead nexthop is not tried again by every message; each keeps its own backoff', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      await world.mailbox.down();
      const first = await world.queue(['a@example.com']);
      world.manager.kick(first);
      await world.manager.whenIdle();
      world.clock.advance(MINUTE);
      const second = await world.queue(['b@example.com']);
      world.manager.kick(second);
      await world.manager.whenIdle();
      const texts = world.capture.events('status=deferred').map((l) => String(l['reply']));
      assert.match(texts[0]!, /Connection refused/);
      assert.match(texts[1]!, /^delivery temporarily suspended: connect to .*Connection refused$/);
      assert.match(await world.metrics.registry.metrics(), /mxscreen_nexthop_up\{nexthop="\[127\.0\.0\.1\]:\d+"\} 0/);
      await world.mailbox.restart();
      world.clock.advance(4 * MINUTE); // first is due; the dead time (minimal_backoff_time) is over
      await world.manager.whenIdle();
      assert.deepEqual(delivered(world).map((m) => m.recipients[0]), ['a@example.com']);
      world.clock.advance(MINUTE); // second is due on its own backoff
      await world.manager.whenIdle();
      assert.deepEqual(delivered(world).map((m) => m.recipients[0]), ['a@example.com', 'b@example.com']);
      assert.match(await world.metrics.registry.metrics(), /mxscreen_nexthop_up\{nexthop="\[127\.0\.0\.1\]:\d+"\} 1/);
    },
    { concurrency: 1 },
  );
});

test('delivery: a nexthop list tries the next destination when the first is down', async () => {
  const dead = await MailboxServer.start();
  await dead.down();
  await withWorld(async (world) => {
    world.routes['list.test'] = `smtp:[127.0.0.1]:${dead.port}, [127.0.0.1]:${world.mailbox.port}`;
    await world.manager.start();
    world.manager.kick(await world.queue(['x@list.test']));
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world).map((m) => m.recipients[0]), ['x@list.test']);
  });
});

test('delivery: smtp_tls_security_level = encrypt defers at a server without STARTTLS', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      world.manager.kick(await world.queue(['bob@example.com']));
      await world.manager.whenIdle();
      const [deferred] = world.capture.events('status=deferred');
      assert.equal(deferred!['dsn'], '4.7.4');
      assert.match(String(deferred!['reply']), /TLS is required, but was not offered by host/);
      assert.equal(delivered(world).length, 0);
    },
    { tlsLevel: 'encrypt' },
  );
});

test('delivery: defer_transports holds mail until a flush', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      const id = await world.queue(['bob@example.com']);
      world.manager.kick(id);
      await world.manager.whenIdle();
      assert.equal(world.capture.events('status=deferred')[0]!['reply'], 'deferred transport');
      assert.deepEqual(await world.files('deferred'), [id]);
      assert.equal(await world.manager.flush(), 1);
      await world.manager.whenIdle();
      assert.equal(delivered(world).length, 1);
    },
    { deferTransports: ['smtp'] },
  );
});

test('delivery: flush DOMAIN delivers only mail for that domain', async () => {
  await withWorld(async (world) => {
    world.routes['other.test'] = world.routes['example.com']!;
    await world.manager.start();
    await world.mailbox.down();
    world.manager.kick(await world.queue(['bob@example.com']));
    world.manager.kick(await world.queue(['x@other.test']));
    await world.manager.whenIdle();
    await world.mailbox.restart();
    assert.equal(await world.manager.flush('other.test'), 1);
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world).map((m) => m.recipients[0]), ['x@other.test']);
  });
});

test('schedule: start builds the deferred schedule from state files without reading queue files', async () => {
  await withWorld(async (world) => {
    const id = newQueueId(world.clock.now());
    const envelope = { sender: 'a@example.org', recipients: [{ address: 'b@example.com' }], arrivalTime: world.clock.now(), client: { address: '127.0.0.9', port: 1 }, sessionId: 'S' };
    // A truncated queue file (no body, no END): reading it would send it to corrupt/.
    await writeFile(join(world.directory, 'deferred', id), encodeQueueFileHead(id, envelope, 10));
    await mkdir(join(world.directory, 'state'), { recursive: true });
    await writeFile(join(world.directory, 'state', id), encodeDeliveryState({ id, attempts: 1, nextAttempt: world.clock.now() + 60 * MINUTE, recipients: [{ address: 'b@example.com', status: 'deferred', attempts: 1 }] }));
    await world.manager.start();
    await world.manager.whenIdle();
    assert.equal(world.manager.scheduled, 1);
    assert.deepEqual(await world.files('corrupt'), [], 'not read before it is due');
    world.clock.advance(60 * MINUTE);
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('corrupt'), [id], 'read when due, and then quarantined');
  });
});

test('queue_minfree: below the floor the queue refuses new mail as ENOSPC and keeps what it has', async () => {
  await withWorld(async (world) => {
    const kept = await world.queue(['bob@example.com']);
    world.spool.setMinimumFree(Number.MAX_SAFE_INTEGER);
    assert.equal(await world.spool.canAccept(0), false);
    await assert.rejects(world.queue(['carol@example.com']), (error: Error & { code?: string; cause?: { code?: string } }) => error.code === 'ERR_QUEUE_IO' && error.cause?.code === 'ENOSPC');
    assert.deepEqual(await world.files('incoming'), [kept]);
    world.spool.setMinimumFree(1);
    assert.equal(await world.spool.canAccept(1000), true);
  });
});

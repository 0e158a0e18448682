import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { delivered, MINUTE, notices, withWorld } from './queue-world.js';

test('queue manager: a kicked message is delivered byte for byte and removed', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const id = await world.queue(['bob@example.com'], 'Subject: one\r\n\r\nbody\r\n');
    world.manager.kick(id);
    await world.manager.whenIdle();
    assert.equal(world.mailbox.received.length, 1);
    assert.equal(world.mailbox.received[0]!.body.toString(), 'Subject: one\r\n\r\nbody\r\n');
    for (const queue of ['incoming', 'active', 'deferred', 'state']) assert.deepEqual(await world.files(queue), [], queue);
    const sent = world.capture.events('status=sent');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!['queueId'], id);
    assert.match(String(sent[0]!['msg']), new RegExp(`^${id}: to=<bob@example.com>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${world.mailbox.port}, delay=0\\.0, dsn=2\\.\\d\\.\\d, status=sent \\(250 `));
  });
});

test('queue manager: start delivers what is already in incoming/', async () => {
  await withWorld(async (world) => {
    await world.queue(['bob@example.com']);
    await world.manager.start();
    await world.manager.whenIdle();
    assert.equal(world.mailbox.received.length, 1);
  });
});

test('queue manager: 4xx defers, then the message is delivered after the backoff', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('tempfail');
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('deferred'), [id]);
    assert.equal(world.capture.events('status=deferred').length, 1);
    world.mailbox.setMode('accept');
    world.clock.advance(5 * MINUTE - 1);
    await world.manager.whenIdle();
    assert.equal(world.mailbox.received.length, 0, 'not before the backoff');
    world.clock.advance(1);
    await world.manager.whenIdle();
    assert.equal(world.mailbox.received.length, 1);
    assert.deepEqual(await world.files('deferred'), []);
  });
});

test('queue manager: the backoff doubles per attempt', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    world.clock.advance(5 * MINUTE);
    await world.manager.whenIdle();
    assert.equal(world.capture.events('status=deferred').length, 2);
    world.clock.advance(10 * MINUTE - 1);
    await world.manager.whenIdle();
    assert.equal(world.capture.events('status=deferred').length, 2, 'second wait is 10 minutes');
    world.clock.advance(1);
    await world.manager.whenIdle();
    assert.equal(world.capture.events('status=deferred').length, 3);
  });
});

test('queue manager: a 5xx for one recipient bounces only that one', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'gone@example.com');
    const id = await world.queue(['bob@example.com', 'gone@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world).map((m) => m.recipients), [['bob@example.com']]);
    assert.deepEqual(world.capture.events('status=bounced').map((l) => l['to']), ['gone@example.com']);
    assert.deepEqual(await world.files('active'), []);
    assert.deepEqual(await world.files('deferred'), []);
  });
});

test('queue manager: only the deferred recipient is tried again', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('tempfail', 'later@example.com');
    const id = await world.queue(['bob@example.com', 'later@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('deferred'), [id]);
    world.mailbox.setMode('accept', 'later@example.com');
    world.clock.advance(5 * MINUTE);
    await world.manager.whenIdle();
    assert.deepEqual(world.mailbox.received.map((m) => m.recipients), [['bob@example.com'], ['later@example.com']]);
    assert.deepEqual(await world.files('deferred'), []);
  });
});

test('queue manager: mailbox down → deferred; up again → delivered', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    const deferred = world.capture.events('status=deferred');
    assert.equal(deferred.length, 1);
    assert.equal(deferred[0]!['dsn'], '4.4.1');
    assert.match(String(deferred[0]!['msg']), new RegExp(`^${id}: to=<bob@example.com>, relay=none, delay=0\\.0, dsn=4\\.4\\.1, status=deferred \\(connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${world.mailbox.port}: Connection refused\\)$`));
    await world.mailbox.restart();
    world.clock.advance(5 * MINUTE);
    await world.manager.whenIdle();
    assert.equal(world.mailbox.received.length, 1);
  });
});

test('queue manager: a new manager on the same directory delivers what is queued', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    const deferredId = await world.queue(['bob@example.com']);
    world.manager.kick(deferredId);
    await world.manager.whenIdle();
    await world.manager.stop();
    // A crash left a message in active/, and one arrived while nothing ran.
    const leftover = await world.queue(['carol@example.com']);
    await world.spool.move(leftover, 'incoming', 'active');
    const fresh = await world.queue(['dave@example.com']);
    await world.mailbox.restart();
    await world.restart();
    await world.manager.whenIdle();
    assert.deepEqual(world.mailbox.received.map((m) => m.recipients[0]).sort(), ['carol@example.com', 'dave@example.com']);
    const sent = world.capture.events('status=sent').map((line) => line['queueId']);
    assert.deepEqual(sent.sort(), [leftover, fresh].sort(), 'the one left in active/ and the one in incoming/ were delivered, each once');
    assert.deepEqual(await world.files('active'), []);
    assert.deepEqual(await world.files('incoming'), []);
    assert.deepEqual(await world.files('deferred'), [deferredId], 'the deferred one waits for its backoff');
    world.clock.advance(5 * MINUTE);
    await world.manager.whenIdle();
    assert.deepEqual(world.mailbox.received.map((m) => m.recipients[0]).sort(), ['bob@example.com', 'carol@example.com', 'dave@example.com']);
  });
});

test('queue manager: a corrupt file goes to corrupt/ and the rest is still delivered', async () => {
  await withWorld(async (world) => {
    const good = await world.queue(['bob@example.com']);
    // A damaged file found on disk (left by a crash), not one this process just committed.
    const bad = '18CC2A8A0000001A';
    await writeFile(join(world.directory, 'incoming', bad), 'MXSCREEN-QUEUE 1\n{"truncated":');
    await world.manager.start();
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('corrupt'), [bad]);
    assert.equal(world.capture.events('corrupt').length, 1);
    assert.deepEqual(world.mailbox.received.map((m) => m.recipients[0]), ['bob@example.com']);
    assert.deepEqual(world.capture.events('status=sent').map((line) => line['queueId']), [good]);
    assert.deepEqual(await world.files('incoming'), []);
  });
});

test('queue manager: error: transport bounces with its text', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const id = await world.queue(['x@bounce.test', 'bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    const bounced = world.capture.events('status=bounced');
    assert.deepEqual(bounced.map((l) => [l['to'], l['dsn'], l['relay']]), [['x@bounce.test', '5.1.1', 'none']]);
    assert.equal(delivered(world).length, 1);
  });
});

test('queue manager: after maximal_queue_lifetime the remaining recipients bounce', async () => {
  await withWorld(
    async (world) => {
      await world.manager.start();
      await world.mailbox.down();
      const id = await world.queue(['bob@example.com']);
      world.manager.kick(id);
      await world.manager.whenIdle();
      world.clock.advance(5 * MINUTE);
      await world.manager.whenIdle();
      world.clock.advance(10 * MINUTE);
      await world.manager.whenIdle();
      assert.equal(world.capture.events('status=bounced').length, 1);
      const [notice] = world.capture.events('sender non-delivery notification');
      assert.equal(notice!['queueId'], id);
      // Only the notice waits now (the mailbox server is still down).
      assert.deepEqual(await world.files('deferred'), [notice!['noticeId']]);
      await world.mailbox.restart();
      await world.manager.flush();
      await world.manager.whenIdle();
      assert.deepEqual(await world.files('deferred'), []);
      assert.deepEqual(await world.files('state'), []);
      assert.equal(notices(world).length, 1);
      assert.match(notices(world)[0]!.body.toString(), /Status: 4\.4\.1|Status: 5\.4\.7/);
    },
    { maximalQueueLifetime: 12 * MINUTE },
  );
});

test('queue manager: metrics count deliveries by status and nexthop', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'gone@example.com');
    world.manager.kick(await world.queue(['bob@example.com', 'gone@example.com']));
    await world.manager.whenIdle();
    const text = await world.metrics.registry.metrics();
    const nexthop = `[127.0.0.1]:${world.mailbox.port}`;
    // Sent: bob's copy and the notice (DSN) about gone@ to the sender, on the same nexthop.
    assert.match(text, new RegExp(`mxscreen_deliveries_total\\{status="sent",nexthop="\\[127\\.0\\.0\\.1\\]:${world.mailbox.port}"\\} 2`));
    assert.match(text, /mxscreen_bounces_total\{reason="rejected"\} 1/);
    assert.match(text, new RegExp(`mxscreen_deliveries_total\\{status="bounced",nexthop="${nexthop.replace(/[[\].]/g, '\\$&')}"\\} 1`));
  });
});

test('queue manager: the queue listing shows a deferred message with its last error', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    const { listQueue } = await import('../../src/queue/spool.js');
    const [entry] = await listQueue(world.directory);
    assert.equal(entry!.id, id);
    assert.equal(entry!.queue, 'deferred');
    assert.equal(entry!.recipients[0]!.status, 'deferred');
    assert.match(entry!.lastError ?? '', /Connection refused/);
  });
});

/**
 * A mailbox server that holds every transaction's final reply until the test releases it,
 * and counts the transactions open at once (MAIL FROM seen, final reply not yet sent).
 */
async function holdingMailbox() {
  const held: (() => void)[] = [];
  const state = { open: 0, peak: 0, delivered: 0 };
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    onMailFrom: (_address, _session, callback) => {
      state.open += 1;
      state.peak = Math.max(state.peak, state.open);
      callback();
    },
    onData: (stream, _session, callback) => {
      stream.resume();
      stream.on('end', () =>
        held.push(() => {
          state.open -= 1;
          state.delivered += 1;
          callback();
        }),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    state,
    held,
    nexthop: `smtp:[127.0.0.1]:${(server.server.address() as { port: number }).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('queue manager: many messages are all delivered, never more than `concurrency` at once', async () => {
  const mailbox = await holdingMailbox();
  try {
    await withWorld(async (world) => {
      world.routes['example.com'] = mailbox.nexthop;
      await world.manager.start();
      const ids: string[] = [];
      for (let i = 0; i < 30; i += 1) ids.push(await world.queue([`user${i}@example.com`]));
      for (const id of ids) world.manager.kick(id);
      // Rounds: wait (bounded, 4 s) until as many transactions are open as the limit allows,
      // then release them. A manager without the limit opens all 30 at once.
      for (let round = 0; mailbox.state.delivered < 30; round += 1) {
        assert.ok(round < 30, 'every round delivers at least one message');
        const want = Math.min(world.settings.concurrency, 30 - mailbox.state.delivered);
        for (let i = 0; i < 400 && mailbox.held.length < want; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.ok(mailbox.held.length >= want, `${want} transactions open (round ${round}), ${mailbox.held.length} seen`);
        for (const release of mailbox.held.splice(0)) release();
      }
      await world.manager.whenIdle();
      assert.equal(mailbox.state.peak, world.settings.concurrency, `at most ${world.settings.concurrency} at once, and that many`);
      assert.equal(world.capture.events('status=sent').length, 30);
      assert.deepEqual(await world.files('incoming'), []);
      assert.deepEqual(await world.files('active'), []);
    });
  } finally {
    await mailbox.close();
  }
});

test('queue manager: stop abandons a hung delivery after the grace time and loses nothing', async () => {
  // A server that accepts and never greets: the delivery hangs until stop() gives up.
  const sockets = new Set<Socket>();
  const hole = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  const holePort = (hole.address() as { port: number }).port;
  try {
    await withWorld(
      async (world) => {
        world.routes['hole.test'] = `smtp:[127.0.0.1]:${holePort}`;
        await world.manager.start();
        const hung = await world.queue(['x@hole.test']);
        const waiting = await world.queue(['bob@example.com']);
        world.manager.kick(hung);
        world.manager.kick(waiting);
        // Bounded wait (2 s) for the hung delivery to connect; a loaded machine can take a while.
        for (let i = 0; i < 400 && sockets.size === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
        assert.equal(sockets.size, 1, 'the delivery to the silent server has connected');
        const stopped = world.manager.stop();
        world.clock.advance(world.settings.stopGrace);
        await stopped;
        assert.deepEqual(await world.files('active'), [hung]);
        assert.deepEqual(await world.files('incoming'), [waiting]);
        assert.equal(world.mailbox.received.length, 0);
        world.routes['hole.test'] = world.mailbox.nexthop;
        await world.restart();
        await world.manager.whenIdle();
        assert.deepEqual(world.mailbox.received.map((m) => m.recipients[0]).sort(), ['bob@example.com', 'x@hole.test']);
      },
      // The SMTP client's own time limits run on real time: keep them far from the test's
      // few seconds so the delivery stays hung until stop() abandons it.
      { concurrency: 1, connectTimeout: 60_000, commandTimeout: 60_000 },
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => hole.close(resolve));
  }
});

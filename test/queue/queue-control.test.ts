import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { runQueueControl, queueOwnerRunning } from '../../src/queue/queue-control.js';
import { formatQueueMessage, showQueuedMessage } from '../../src/queue/queue-show.js';
import { listQueue } from '../../src/queue/spool.js';
import { delivered, MINUTE, withDeferred, withWorld } from './queue-world.js';

test('queue control: a running mxscreen owns the queue, so commands go through it', async () => {
  await withDeferred(async (world) => {
    assert.equal(await queueOwnerRunning(world.directory), true);
    await world.manager.stop();
    assert.equal(await queueOwnerRunning(world.directory), false);
  });
});

test('queue control: hold moves a deferred message to hold/, which is never delivered', async () => {
  await withDeferred(async (world, id) => {
    const reply = await runQueueControl(world.directory, { command: 'hold', target: id });
    assert.equal(reply.ok, true);
    assert.deepEqual(await world.files('hold'), [id]);
    world.clock.advance(60 * MINUTE);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 0);
    assert.equal((await listQueue(world.directory))[0]!.queue, 'hold');
  });
});

test('queue control: release puts a held message back and it is delivered', async () => {
  await withDeferred(async (world, id) => {
    await runQueueControl(world.directory, { command: 'hold', target: id });
    const reply = await runQueueControl(world.directory, { command: 'release', target: id });
    assert.equal(reply.ok, true);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
    assert.deepEqual(await world.files('hold'), []);
  });
});

test('queue control: release of a message not on hold fails', async () => {
  await withDeferred(async (world, id) => {
    const reply = await runQueueControl(world.directory, { command: 'release', target: id });
    assert.equal(reply.ok, false);
  });
});

test('queue control: delete removes a message and its state', async () => {
  await withDeferred(async (world, id) => {
    assert.equal((await runQueueControl(world.directory, { command: 'delete', target: id })).ok, true);
    assert.deepEqual(await world.files('deferred'), []);
    assert.deepEqual(await world.files('state'), []);
    world.clock.advance(60 * MINUTE);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 0);
  });
});

test('queue control: delete ALL empties every queue', async () => {
  await withDeferred(async (world) => {
    await world.manager.stop(); // nothing takes the new one from incoming/
    await world.queue(['carol@example.com']);
    const reply = await runQueueControl(world.directory, { command: 'delete', target: 'ALL' });
    assert.equal(reply.count, 2);
    assert.deepEqual(await listQueue(world.directory), []);
  });
});

test('queue control: delete of an unknown id says so', async () => {
  await withDeferred(async (world) => {
    const reply = await runQueueControl(world.directory, { command: 'delete', target: '0123456789ABCDEF' });
    assert.equal(reply.ok, false);
  });
});

test('queue control: requeue delivers a deferred message now, before its backoff', async () => {
  await withDeferred(async (world, id) => {
    assert.equal((await runQueueControl(world.directory, { command: 'requeue', target: id })).ok, true);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
  });
});

test('queue control: flush delivers deferred mail now', async () => {
  await withDeferred(async (world) => {
    const reply = await runQueueControl(world.directory, { command: 'flush', target: '' });
    assert.equal(reply.count, 1);
    await world.manager.whenIdle();
    assert.equal(delivered(world).length, 1);
  });
});

test('queue control: without a running mxscreen, commands work on the files directly', async () => {
  await withDeferred(async (world, id) => {
    await world.manager.stop();
    assert.equal((await runQueueControl(world.directory, { command: 'hold', target: id })).ok, true);
    assert.deepEqual(await world.files('hold'), [id]);
    assert.equal((await runQueueControl(world.directory, { command: 'requeue', target: id })).ok, true);
    assert.deepEqual(await world.files('incoming'), [id]);
  });
});

test('queue control: a message in delivery is deleted by aborting it, and never delivered', async () => {
  const sockets = new Set<Socket>();
  const hole = createServer((socket) => sockets.add(socket)); // accepts, never greets
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  try {
    await withWorld(async (world) => {
      world.routes['hole.test'] = `smtp:[127.0.0.1]:${(hole.address() as { port: number }).port}`;
      await world.manager.start();
      const id = await world.queue(['x@hole.test']);
      world.manager.kick(id);
      for (let i = 0; i < 400 && sockets.size === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepEqual(await world.files('active'), [id]);
      const reply = await runQueueControl(world.directory, { command: 'delete', target: id });
      assert.equal(reply.ok, true);
      await world.manager.whenIdle();
      assert.deepEqual(await world.files('active'), []);
      assert.deepEqual(await world.files('deferred'), []);
      assert.deepEqual(await world.files('state'), []);
    });
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => hole.close(resolve));
  }
});

test('queue control: hold of a message in delivery applies after its attempt', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    world.mailbox.setMode('tempfail');
    const id = await world.queue(['bob@example.com']);
    // Queue the hold while the attempt is under way: claimActive sees it owned.
    world.manager.kick(id);
    const reply = await world.manager.control({ command: 'hold', target: id });
    assert.equal(reply.ok, true);
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('hold'), [id]);
    assert.deepEqual(await world.files('deferred'), []);
  });
});

test('queue show: envelope, recipient history and the header section, not the body', async () => {
  await withDeferred(async (world, id) => {
    const view = await showQueuedMessage(world.directory, id);
    assert.equal(view!.queue, 'deferred');
    assert.equal(view!.recipients[0]!.status, 'deferred');
    assert.equal(view!.recipients[0]!.attempts, 1);
    assert.match(view!.recipients[0]!.lastError ?? '', /Connection refused/);
    const text = formatQueueMessage(view!);
    assert.match(text, /^\*\*\* ENVELOPE RECORDS deferred\//);
    assert.match(text, /^sender: <alice@example\.org>$/m);
    assert.match(text, /^Subject: test$/m);
    assert.ok(!text.includes('hello'), 'no body');
  });
});

test('queue show: an unknown id is undefined', async () => {
  await withDeferred(async (world) => {
    assert.equal(await showQueuedMessage(world.directory, '0123456789ABCDEF'), undefined);
  });
});

// A corrupt queue file is never silent: an error log line and a counter when it is
// quarantined, a marked line in `queue list`, and `queue requeue` that puts back a file
// whose body is complete (only its END record missing) and refuses anything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Envelope } from '../../src/queue/envelope.js';
import { encodeEndRecord, encodeQueueFileHead, verifyQueueFile } from '../../src/queue/queue-file.js';
import { newQueueId, queueIdTime } from '../../src/queue/queue-id.js';
import { encodeDeliveryState } from '../../src/queue/delivery-state.js';
import { runQueueControl } from '../../src/queue/queue-control.js';
import { formatQueueListing, listQueue } from '../../src/queue/spool.js';
import { delivered, withWorld, type World } from './queue-world.js';

/** SMTP-awkward: a line starting with a dot, 8-bit bytes, CRLF line ends (as accepted). */
const BODY = Buffer.concat([Buffer.from('Subject: repaired\r\n\r\n.a line starting with a dot\r\nline two\r\n'), Buffer.from([0xc3, 0xa9, 0x0d, 0x0a])]);

function envelopeAt(world: World, recipients = ['bob@example.com']): Envelope {
  return { sender: 'alice@example.org', recipients: recipients.map((address) => ({ address })), arrivalTime: world.clock.now(), client: { address: '127.0.0.9', port: 40000 }, sessionId: 'S1' };
}

/** A queue file as an interrupted commit leaves it: head and whole body, no END record. */
async function writeWithoutEnd(world: World, queue: string, recipients?: string[]): Promise<{ id: string; bytes: Buffer }> {
  const id = newQueueId(world.clock.now());
  const bytes = Buffer.concat([encodeQueueFileHead(id, envelopeAt(world, recipients), BODY.length), BODY]);
  await writeFile(join(world.directory, queue, id), bytes);
  return { id, bytes };
}

/** The file is found by the queue manager (incoming/ → active/ → corrupt/). */
async function quarantinedWithoutEnd(world: World): Promise<{ id: string; bytes: Buffer }> {
  const file = await writeWithoutEnd(world, 'incoming');
  await world.manager.start();
  await world.manager.whenIdle();
  assert.deepEqual(await world.files('corrupt'), [file.id]);
  return file;
}

test('corrupt: quarantine logs event corrupt at error level and counts mxscreen_queue_corrupt_total', async () => {
  await withWorld(async (world) => {
    const { id } = await quarantinedWithoutEnd(world);
    const [line, ...more] = world.capture.events('corrupt');
    assert.equal(more.length, 0);
    assert.equal(line!['level'], 'error');
    assert.equal(line!['queueId'], id);
    assert.equal(line!['queue'], 'active');
    assert.match(String(line!['msg']), new RegExp(`saving corrupt file "${id}" from queue "active" to queue "corrupt": .*size \\d+ bytes, head says \\d+$`));
    assert.match(await world.metrics.registry.metrics(), /^mxscreen_queue_corrupt_total\{queue="active"\} 1$/m);
    assert.equal(delivered(world).length, 0);
  });
});

test('corrupt: queue list shows corrupt/ files, marked, even one whose head cannot be read', async () => {
  await withWorld(async (world) => {
    const kept = await world.queue(['carol@example.com']);
    const { id, bytes } = await writeWithoutEnd(world, 'corrupt');
    const garbage = newQueueId(world.clock.now());
    const torn = 'MXSCREEN-QUEUE 1\n{"bodyLength":'; // torn inside the head line
    await writeFile(join(world.directory, 'corrupt', garbage), torn);
    const entries = await listQueue(world.directory);
    assert.deepEqual(entries.map((e) => [e.id, e.queue]), [[kept, 'incoming'], [id, 'corrupt'], [garbage, 'corrupt']]);
    const [, repairable, unreadable] = entries;
    assert.equal(repairable!.sender, 'alice@example.org');
    assert.equal(repairable!.size, BODY.length);
    assert.deepEqual(repairable!.corrupt, { reason: `no end record, body complete (${BODY.length} bytes)`, requeueable: true, fileSize: bytes.length });
    assert.equal(unreadable!.sender, null);
    assert.equal(unreadable!.size, torn.length);
    assert.equal(unreadable!.corrupt?.requeueable, false);
    assert.equal(unreadable!.arrivalTime, new Date(queueIdTime(garbage)).toISOString(), 'from the queue id');
    const lines = formatQueueListing(entries).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /\t-$/);
    assert.match(lines[1]!, new RegExp(`^${id}\\tcorrupt\\t.*\\t<alice@example\\.org>\\t<bob@example\\.com>=pending\\t\\(corrupt: no end record, body complete \\(\\d+ bytes\\); mxscreen queue requeue delivers it\\)$`));
    assert.match(lines[2]!, new RegExp(`^${garbage}\\tcorrupt\\t\\S+\\t${torn.length}\\t-\\t-\\t\\(corrupt: unreadable head \\(no complete head\\), file ${torn.length} bytes; cannot be requeued\\)$`));
  });
});

test('corrupt: requeue of a file missing only its END record repairs it and delivers it byte-identical', async () => {
  await withWorld(async (world) => {
    const { id } = await quarantinedWithoutEnd(world);
    // Through the running queue manager (control/ request), as an administrator would.
    const reply = await runQueueControl(world.directory, { command: 'requeue', target: id });
    assert.deepEqual(reply, { ok: true, count: 1, text: `${id}: requeued (repaired: end record restored)` });
    await world.manager.whenIdle();
    const [message, ...more] = delivered(world);
    assert.equal(more.length, 0);
    assert.deepEqual(message!.recipients, ['bob@example.com']);
    assert.deepEqual(message!.body, BODY, 'the accepted bytes, exactly');
    assert.deepEqual(await world.files('corrupt'), []);
    assert.deepEqual(await world.files('incoming'), []);
    assert.equal(world.capture.events('requeued').length, 1);
  });
});

test('corrupt: a requeued file keeps its delivery state: recipients already sent are not sent again', async () => {
  await withWorld(async (world) => {
    const { id } = await writeWithoutEnd(world, 'corrupt', ['bob@example.com', 'carol@example.com']);
    await writeFile(
      join(world.directory, 'state', id),
      encodeDeliveryState({ id, attempts: 1, nextAttempt: world.clock.now(), recipients: [{ address: 'bob@example.com', status: 'sent', attempts: 1 }, { address: 'carol@example.com', status: 'deferred', attempts: 1, lastError: 'earlier' }] }),
    );
    await world.manager.start();
    assert.equal((await runQueueControl(world.directory, { command: 'requeue', target: id })).ok, true);
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world).map((m) => m.recipients), [['carol@example.com']]);
    assert.deepEqual(await world.files('state'), []);
  });
});

test('corrupt: without a running mxscreen, requeue leaves a whole file in incoming/', async () => {
  await withWorld(async (world) => {
    const { id, bytes } = await writeWithoutEnd(world, 'corrupt');
    const reply = await runQueueControl(world.directory, { command: 'requeue', target: id });
    assert.equal(reply.ok, true);
    assert.deepEqual(await world.files('incoming'), [id]);
    assert.deepEqual(await readFile(join(world.directory, 'incoming', id)), Buffer.concat([bytes, encodeEndRecord(id)]));
    assert.equal((await verifyQueueFile(join(world.directory, 'incoming', id))).bodyLength, BODY.length);
  });
});

test('corrupt: requeue of a file whose body is short, or whose head cannot be read, is refused and the file stays', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const { id, bytes } = await writeWithoutEnd(world, 'corrupt');
    const short = bytes.subarray(0, bytes.length - 5);
    await writeFile(join(world.directory, 'corrupt', id), short);
    const reply = await runQueueControl(world.directory, { command: 'requeue', target: id });
    assert.equal(reply.ok, false);
    assert.equal(reply.text, `${id}: not requeued, left in corrupt/: body short: ${BODY.length - 5} of ${BODY.length} bytes`);
    const garbage = newQueueId(world.clock.now());
    await writeFile(join(world.directory, 'corrupt', garbage), 'not a queue file\n{}\n');
    const refused = await runQueueControl(world.directory, { command: 'requeue', target: garbage });
    assert.equal(refused.ok, false);
    assert.match(refused.text, /not requeued, left in corrupt\/: unreadable head \(bad magic "not a queue file"\)/);
    await world.manager.whenIdle();
    assert.deepEqual((await world.files('corrupt')).sort(), [id, garbage].sort());
    assert.deepEqual(await readFile(join(world.directory, 'corrupt', id)), short, 'left as it was');
    assert.deepEqual(await world.files('incoming'), []);
    assert.equal(delivered(world).length, 0);
  });
});

test('corrupt: ALL leaves corrupt/ alone; delete by id removes a corrupt file; hold does not apply', async () => {
  await withWorld(async (world) => {
    const { id } = await writeWithoutEnd(world, 'corrupt');
    assert.equal((await runQueueControl(world.directory, { command: 'requeue', target: 'ALL' })).count, 0);
    assert.equal((await runQueueControl(world.directory, { command: 'delete', target: 'ALL' })).count, 0);
    const hold = await runQueueControl(world.directory, { command: 'hold', target: id });
    assert.deepEqual(hold, { ok: false, count: 0, text: `${id}: corrupt queue file: only requeue or delete apply` });
    assert.deepEqual(await world.files('corrupt'), [id]);
    assert.equal((await runQueueControl(world.directory, { command: 'delete', target: id })).ok, true);
    assert.deepEqual(await world.files('corrupt'), []);
  });
});

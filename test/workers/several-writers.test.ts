// What several processes writing one queue directory rely on (mxscreen_workers > 1), each
// piece alone: queue id slots, the hash that picks a worker, a worker's writer-role spool,
// and the verify cache file shared by several verifiers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isQueueId, newQueueId, queueIdSlots, setQueueIdSlot } from '../../src/queue/queue-id.js';
import { workerForAddress } from '../../src/workers/client-hash.js';
import { Spool, type QueueName } from '../../src/queue/spool.js';
import { Metrics } from '../../src/ops/metrics.js';
import { createLogger } from '../../src/ops/log.js';
import { RecipientVerifier } from '../../src/policy/address-verify.js';
import type { ProbeResult } from '../../src/policy/verify-probe.js';
import { ManualClock } from '../queue/manual-clock.js';
import { captureLog } from '../queue/log-capture.js';

test('queue id slots: processes in different slots never make the same id in the same millisecond; the pattern stays', () => {
  const now = Date.UTC(2031, 5, 1);
  const slots = queueIdSlots(3);
  assert.equal(slots, 4);
  const ids = new Set<string>();
  let made = 0;
  try {
    for (let slot = 0; slot < 3; slot++) {
      setQueueIdSlot(slot, slots); // a fresh process in that slot: same clock, random start
      for (let i = 0; i < 3000; i++) {
        const id = newQueueId(now);
        assert.ok(isQueueId(id), id);
        assert.equal(parseInt(id.slice(11), 16) >> 18, slot, `${id} is in slot ${slot}`);
        ids.add(id);
        made += 1;
      }
    }
    assert.equal(ids.size, made, 'no id twice');
    assert.throws(() => setQueueIdSlot(4, 4), RangeError);
    assert.throws(() => setQueueIdSlot(0, 3), RangeError);
  } finally {
    setQueueIdSlot(0, 1);
  }
});

test('client hash: stable, within range, an IPv4-mapped address is the same client, and distinct clients spread over the workers', () => {
  assert.equal(workerForAddress('192.0.2.1', 4), workerForAddress('::ffff:192.0.2.1', 4));
  assert.equal(workerForAddress('192.0.2.1', 4), workerForAddress('192.0.2.1', 4));
  const counts = [0, 0, 0, 0];
  for (let n = 0; n < 1000; n++) {
    const worker = workerForAddress(`10.${n >> 8}.${n & 255}.7`, 4);
    assert.ok(worker >= 0 && worker < 4);
    counts[worker]! += 1;
  }
  for (const count of counts) assert.ok(count > 150, `spread: ${counts.join(', ')}`);
  assert.equal(workerForAddress('2001:db8::1', 1), 0);
});

test('spool, writer role: open neither sweeps nor counts, a commit reports its count instead of setting the gauge, nothing is recycled', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-writer-'));
  try {
    for (const name of ['state', 'recycle', 'incoming']) await mkdir(join(directory, name), { recursive: true });
    // What the owner may hold at this moment: a state file whose message it is moving, a recycled file.
    await writeFile(join(directory, 'state', '18CC2A8A0000001A'), '{}');
    await writeFile(join(directory, 'recycle', 'r1'), '');
    const metrics = new Metrics();
    const counted: [QueueName, number][] = [];
    const capture = captureLog();
    const spool = await Spool.open(directory, { log: capture.log, metrics, clock: new ManualClock(), role: 'writer', counted: (queue, delta) => counted.push([queue, delta]) });
    assert.deepEqual(await readdir(join(directory, 'state')), ['18CC2A8A0000001A'], 'no orphan sweep');
    assert.deepEqual(await readdir(join(directory, 'recycle')), ['r1'], 'the owner\'s pool is left alone');
    const message = await spool.open({ sender: 'a@example.org', recipients: [{ address: 'b@example.com' }], arrivalTime: Date.UTC(2024, 0, 1), client: { address: '127.0.0.9', port: 1 }, sessionId: 'S' });
    await message.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    await message.commit();
    assert.deepEqual(await readdir(join(directory, 'incoming')), [message.id], 'durably in incoming/');
    assert.deepEqual(counted, [['incoming', 1]]);
    const gauge = (await metrics.queueMessages.get()).values;
    assert.deepEqual(gauge, [], 'the owner sets the queue gauges');
    spool.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test('file lending: the owner lends a worker\'s spool its recycled files, the worker writes new messages into them (no file created), asks again only after a quiet time when the owner had too few, and a dead worker\'s unused ones are unlinked', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-lending-'));
  const envelope = { sender: 'a@example.org', recipients: [{ address: 'b@example.com' }], arrivalTime: Date.UTC(2024, 0, 1), client: { address: '127.0.0.9', port: 1 }, sessionId: 'S' };
  const log = createLogger({ level: 'silent' });
  const clock = new ManualClock();
  try {
    const owner = await Spool.open(directory, { log, metrics: new Metrics(), clock });
    // The owner delivered and removed 10 messages: 10 emptied files wait in recycle/.
    const delivered: string[] = [];
    for (let i = 0; i < 10; i++) {
      const message = await owner.open(envelope);
      await message.write(Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
      await message.commit();
      delivered.push(message.id);
    }
    for (const id of delivered) await owner.remove('incoming', id);
    const pooled = await readdir(join(directory, 'recycle'));
    assert.equal(pooled.length, 10);
    const inodes = new Set(await Promise.all(pooled.map(async (name) => (await stat(join(directory, 'recycle', name))).ino)));
    const wanted: number[] = [];
    const writer = await Spool.open(directory, { log, metrics: new Metrics(), clock, role: 'writer', wantFiles: (count) => wanted.push(count) });
    const write = async (subject: string) => {
      const message = await writer.open(envelope);
      await message.write(Buffer.from(`Subject: ${subject}\r\n\r\nbody\r\n`));
      await message.commit();
      return message.id;
    };
    // With none in hand the worker asks for a full stock (32) and creates this message's file.
    const first = await write('before the answer');
    assert.deepEqual(wanted, [32]);
    assert.ok(!inodes.has((await stat(join(directory, 'incoming', first))).ino), 'a new file');
    // The owner has 10: the worker takes them, oldest first, each one a message of its own.
    const lent = owner.lendFiles(32);
    assert.equal(lent.length, 10);
    assert.equal(owner.lendFiles(32).length, 0, 'lent files leave the owner\'s pool');
    writer.supplyFiles(lent);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await write(`lent ${i}`));
    for (const id of ids) {
      assert.ok(inodes.has((await stat(join(directory, 'incoming', id))).ino), `${id} is written into a lent file`);
      const head = await writer.verify('incoming', id);
      assert.equal(head.bodyLength, `Subject: lent ${ids.indexOf(id)}\r\n\r\nbody\r\n`.length);
    }
    assert.deepEqual((await readdir(join(directory, 'recycle'))).sort(), lent.slice(4).sort(), 'each taken file left recycle/');
    // 6 left (< 8): the owner answered 10 of 32, so the worker waits before it asks again.
    await write('quiet');
    assert.deepEqual(wanted, [32]);
    clock.advance(1000);
    await write('asks again');
    assert.deepEqual(wanted, [32, 27]);
    // The worker dies: the owner unlinks the names it lent that are still there; a foreign name is never touched.
    await writeFile(join(directory, 'recycle', 'not-ours'), '');
    await owner.reclaimFiles([...lent, '../incoming/' + ids[0], 'not-ours']);
    assert.deepEqual(await readdir(join(directory, 'recycle')), ['not-ours']);
    assert.ok((await readdir(join(directory, 'incoming'))).includes(ids[0]!), 'a path is not a pool name');
    writer.close();
    owner.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

const VERIFY = {
  positiveExpire: 31 * 86_400_000, positiveRefresh: 7 * 86_400_000, negativeExpire: 3 * 86_400_000, negativeRefresh: 3 * 3_600_000,
  pollCount: 3, pollDelay: 10, rejectCode: 450, cacheSize: 100, probeLimit: 10,
};

test('verify cache file shared by two workers: each save merges the other\'s results, so a restarted worker knows both', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-verify-shared-'));
  const clock = new ManualClock();
  const log = createLogger({ level: 'silent' });
  try {
    const probes: string[] = [];
    const probe = async (recipient: string): Promise<ProbeResult> => {
      probes.push(recipient);
      return { status: 'deliverable', text: 'ok' };
    };
    const one = new RecipientVerifier(VERIFY, { probe, nexthopOf: () => 'n', clock, log, directory });
    const two = new RecipientVerifier(VERIFY, { probe, nexthopOf: () => 'n', clock, log, directory });
    assert.deepEqual(await one.verify('joe@example.com'), { kind: 'deliverable' });
    await one.flushed();
    assert.deepEqual(await two.verify('ann@example.com'), { kind: 'deliverable' });
    await two.flushed();
    const saved = JSON.parse(await readFile(join(directory, 'verify_cache.json'), 'utf8')) as [string, unknown][];
    assert.deepEqual(saved.map(([key]) => key).sort(), ['ann@example.com', 'joe@example.com'], 'two\'s save kept one\'s result');
    const restarted = new RecipientVerifier(VERIFY, { probe, nexthopOf: () => 'n', clock, log, directory });
    assert.deepEqual(await restarted.verify('joe@example.com'), { kind: 'deliverable' });
    assert.deepEqual(await restarted.verify('ann@example.com'), { kind: 'deliverable' });
    assert.equal(probes.length, 2, 'both answered from the file');
    assert.deepEqual((await readdir(directory)).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

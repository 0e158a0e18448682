import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Envelope } from '../../src/queue/envelope.js';
import { formatQueueListing, listQueue, Spool } from '../../src/queue/spool.js';
import { NODE_QUEUE_FILE_SYSTEM, type QueueFileSystem } from '../../src/queue/queue-file-system.js';
import { Metrics } from '../../src/ops/metrics.js';
import { ManualClock } from './manual-clock.js';
import { captureLog } from './log-capture.js';

const envelope: Envelope = {
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com' }],
  arrivalTime: Date.UTC(2024, 0, 1),
  client: { address: '127.0.0.9', port: 40000 },
  sessionId: 'S1',
};

async function withSpool(fn: (spool: Spool, directory: string, capture: ReturnType<typeof captureLog>) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-spool-'));
  const capture = captureLog();
  try {
    const spool = await Spool.open(directory, { log: capture.log, metrics: new Metrics(), clock: new ManualClock() });
    await fn(spool, directory, capture);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('spool: open creates the queue directories', async () => {
  await withSpool(async (_spool, directory) => {
    assert.deepEqual((await readdir(directory)).sort(), ['active', 'control', 'corrupt', 'deferred', 'hold', 'incoming', 'recycle', 'state']);
  });
});

test('spool: a committed message is in incoming/ under its id, with no temporary file left', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: x\r\n\r\n'));
    await message.write(Buffer.from('body\r\n'));
    await message.commit();
    assert.deepEqual(await readdir(join(directory, 'incoming')), [message.id]);
    const head = await spool.verify('incoming', message.id);
    assert.deepEqual(head.envelope, envelope);
    assert.equal((await collect(spool.openBody('incoming', head))).toString(), 'Subject: x\r\n\r\nbody\r\n');
  });
});

test('spool: before commit only a temporary file exists, which is not a queued message', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('partial'));
    assert.deepEqual(await spool.list('incoming'), []);
    assert.deepEqual(await readdir(join(directory, 'incoming')), [`${message.id}.tmp`]);
    await message.abort();
  });
});

test('spool: abort leaves nothing behind', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('partial'));
    await message.abort();
    assert.deepEqual(await readdir(join(directory, 'incoming')), []);
  });
});

test('spool: write after commit is ERR_QUEUE_IO', async () => {
  await withSpool(async (spool) => {
    const message = await spool.open(envelope);
    await message.commit();
    await assert.rejects(message.write(Buffer.from('late')), { code: 'ERR_QUEUE_IO' });
  });
});

test('spool: an empty body commits and reads back empty', async () => {
  await withSpool(async (spool) => {
    const message = await spool.open(envelope);
    await message.commit();
    const head = await spool.verify('incoming', message.id);
    assert.equal(head.bodyLength, 0);
    assert.equal((await collect(spool.openBody('incoming', head))).length, 0);
  });
});

test('spool: delivery state is written and read back', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.commit();
    const state = {
      id: message.id,
      attempts: 1,
      nextAttempt: 1234,
      recipients: [
        { address: 'bob@example.com', status: 'sent' as const, attempts: 1 },
        { address: 'carol@example.com', status: 'deferred' as const, attempts: 1, lastError: 'connect refused', dsn: '4.4.1' },
      ],
    };
    await spool.writeState(state);
    assert.deepEqual(await spool.readState(message.id, envelope), state);
    assert.deepEqual(await readdir(join(directory, 'state')), [message.id]);
  });
});

test('spool: quarantine moves a file to corrupt/ and logs event corrupt', async () => {
  await withSpool(async (spool, directory, capture) => {
    const message = await spool.open(envelope);
    await message.commit();
    await spool.quarantine('incoming', message.id, 'test');
    assert.deepEqual(await readdir(join(directory, 'corrupt')), [message.id]);
    assert.equal(capture.events('corrupt').length, 1);
    assert.equal(capture.events('corrupt')[0]!['queueId'], message.id);
  });
});

test('spool: a state file without its message is dropped at open', async () => {
  await withSpool(async (_spool, directory, capture) => {
    await writeFile(join(directory, 'state', '18CC2A8A0000001A'), '{}');
    await Spool.open(directory, { log: capture.log, metrics: new Metrics(), clock: new ManualClock() });
    assert.deepEqual(await readdir(join(directory, 'state')), []);
  });
});

test('queue list: one entry per message with recipients, states and last error', async () => {
  await withSpool(async (spool, directory) => {
    const first = await spool.open(envelope);
    await first.write(Buffer.from('0123456789'));
    await first.commit();
    const second = await spool.open({ ...envelope, sender: '' });
    await second.commit();
    await spool.move(second.id, 'incoming', 'deferred');
    await spool.writeState({
      id: second.id,
      attempts: 1,
      nextAttempt: Date.UTC(2024, 0, 2),
      recipients: [
        { address: 'bob@example.com', status: 'sent', attempts: 1 },
        { address: 'carol@example.com', status: 'deferred', attempts: 1, lastError: 'connect to x: Connection refused' },
      ],
    });
    const entries = await listQueue(directory);
    assert.deepEqual(
      entries.map((e) => [e.id, e.queue, e.size, e.sender, e.recipients.map((r) => r.status), e.lastError]),
      [
        [first.id, 'incoming', 10, 'alice@example.org', ['pending', 'pending'], undefined],
        [second.id, 'deferred', 0, '', ['sent', 'deferred'], 'connect to x: Connection refused'],
      ],
    );
    assert.equal(entries[0]!.arrivalTime, '2024-01-01T00:00:00.000Z');
    const text = formatQueueListing(entries);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, new RegExp(`^${first.id}\\tincoming\\t2024-01-01T00:00:00.000Z\\t10\\t<alice@example.org>\\t<bob@example.com>=pending,<carol@example.com>=pending\\t-$`));
    assert.match(lines[1]!, /<carol@example.com>=deferred\t\(connect to x: Connection refused\)$/);
  });
});

test('queue list: an empty queue prints nothing', async () => {
  assert.equal(formatQueueListing([]), '');
});

test('queue list: a queue directory not created yet is an empty queue', async () => {
  assert.deepEqual(await listQueue(join(tmpdir(), 'mxscreen-no-such-queue-directory')), []);
});

test('queue list: a truncated file is skipped, not fatal', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.commit();
    await writeFile(join(directory, 'incoming', '18CC2A8A0000001A'), 'garbage');
    const entries = await listQueue(directory);
    assert.deepEqual(entries.map((e) => e.id), [message.id]);
    assert.ok((await readFile(join(directory, 'incoming', '18CC2A8A0000001A'))).length > 0);
  });
});

test('spool: a small message reaches its file only at commit, head, body and END in one write', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: x\r\n\r\n'));
    await message.write(Buffer.from('body\r\n'));
    assert.equal((await readFile(join(directory, 'incoming', `${message.id}.tmp`))).length, 0, 'nothing written before commit');
    await message.commit();
    const head = await spool.verify('incoming', message.id);
    assert.equal(head.bodyLength, 'Subject: x\r\n\r\nbody\r\n'.length);
  });
});

test('spool: a message larger than a write batch is written while it streams in and reads back whole', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(40 * 1024, 0x61 + i));
    for (const chunk of chunks) await message.write(chunk);
    assert.ok((await readFile(join(directory, 'incoming', `${message.id}.tmp`))).length >= 64 * 1024, 'written before commit');
    await message.commit();
    const head = await spool.verify('incoming', message.id);
    assert.deepEqual(await collect(spool.openBody('incoming', head)), Buffer.concat(chunks));
  });
});

test('spool: commit({ hold: true }) puts the message into hold/, never into incoming/', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: held\r\n\r\nx\r\n'));
    await message.commit({ hold: true });
    assert.deepEqual(await readdir(join(directory, 'incoming')), []);
    assert.deepEqual(await readdir(join(directory, 'hold')), [message.id]);
    assert.equal((await spool.verify('hold', message.id)).envelope.sender, envelope.sender);
  });
});

test('spool: load() of a message just committed here gives it without reading the file, once', async () => {
  await withSpool(async (spool, directory) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    await message.commit();
    const fromDisk = await spool.verify('incoming', message.id);
    await rm(join(directory, 'incoming', message.id));
    const loaded = await spool.load('incoming', message.id);
    assert.deepEqual(loaded.head, fromDisk);
    assert.equal(loaded.body?.toString(), 'Subject: x\r\n\r\nbody\r\n');
    await assert.rejects(spool.load('incoming', message.id), { code: 'ENOENT' });
  });
});

test('spool: load() of a file from disk keeps a small body in memory and verifies it', async () => {
  await withSpool(async (spool, directory, capture) => {
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    await message.commit();
    const other = await Spool.open(directory, { log: capture.log, metrics: new Metrics(), clock: new ManualClock() });
    const loaded = await other.load('incoming', message.id);
    assert.equal(loaded.body?.toString(), 'Subject: x\r\n\r\nbody\r\n');
    assert.equal((await collect(other.openBody('incoming', loaded.head, loaded.body))).toString(), 'Subject: x\r\n\r\nbody\r\n');
  });
});

test('spool: a removed message leaves its file emptied in recycle/, and the next message reuses it', async () => {
  await withSpool(async (spool, directory) => {
    const first = await spool.open(envelope);
    await first.write(Buffer.from('Subject: one\r\n\r\n' + 'x'.repeat(5000)));
    await first.commit();
    await spool.remove('incoming', first.id);
    const kept = await readdir(join(directory, 'recycle'));
    assert.equal(kept.length, 1);
    assert.equal((await readFile(join(directory, 'recycle', kept[0]!))).length, 0, 'no message content stays behind');
    const second = await spool.open(envelope);
    assert.deepEqual(await readdir(join(directory, 'recycle')), [], 'taken by the next message');
    await second.write(Buffer.from('Subject: two\r\n\r\ny\r\n'));
    await second.commit();
    const head = await spool.verify('incoming', second.id);
    assert.equal((await collect(spool.openBody('incoming', head))).toString(), 'Subject: two\r\n\r\ny\r\n');
  });
});

test('spool: files left in recycle/ are removed at open', async () => {
  await withSpool(async (_spool, directory, capture) => {
    await writeFile(join(directory, 'recycle', '1.1'), 'left over');
    await Spool.open(directory, { log: capture.log, metrics: new Metrics(), clock: new ManualClock() });
    assert.deepEqual(await readdir(join(directory, 'recycle')), []);
  });
});

/**
 * node:fs for the commit path, except that a rename or unlink (give() in remove(), the
 * commit's rename) is done on disk and then reported only when the test says: the moment
 * a thread-pool call has finished but its callback has not run yet.
 */
class LateReports implements QueueFileSystem {
  readonly #waiting: (() => void)[] = [];
  #done: (() => void) | undefined;
  open = NODE_QUEUE_FILE_SYSTEM.open.bind(NODE_QUEUE_FILE_SYSTEM);
  link = NODE_QUEUE_FILE_SYSTEM.link.bind(NODE_QUEUE_FILE_SYSTEM);
  directorySync = NODE_QUEUE_FILE_SYSTEM.directorySync.bind(NODE_QUEUE_FILE_SYSTEM);
  holding = false;

  rename(from: string, to: string): Promise<void> {
    return this.#late(NODE_QUEUE_FILE_SYSTEM.rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return this.#late(NODE_QUEUE_FILE_SYSTEM.unlink(path));
  }

  /** Resolves once a held call is done on disk. */
  done(): Promise<void> {
    return this.#waiting.length ? Promise.resolve() : new Promise((resolve) => (this.#done = resolve));
  }

  /** Reports the held calls. */
  report(): void {
    this.holding = false;
    for (const go of this.#waiting.splice(0)) go();
  }

  async #late(call: Promise<void>): Promise<void> {
    await call;
    if (!this.holding) return;
    await new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      this.#done?.();
    });
  }
}

test('spool: a count of the queue directories that reads a rename or unlink done on disk but not yet reported leaves the gauge to the report (never off by one, never below 0)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-spool-'));
  const fs = new LateReports();
  const metrics = new Metrics();
  const spool = await Spool.open(directory, { log: captureLog().log, metrics, clock: new ManualClock(), fileSystem: fs });
  const gauge = async (queue: string): Promise<number | undefined> =>
    (await metrics.queueMessages.get()).values.find((value) => value.labels.queue === queue)?.value;
  try {
    // The commit's rename into incoming/ is on disk; the count sees the file.
    fs.holding = true;
    const message = await spool.open(envelope);
    await message.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const committing = message.commit();
    await fs.done();
    await spool.countMessages();
    fs.report();
    await committing;
    assert.equal(await gauge('incoming'), 1, 'one message in incoming/');
    await spool.move(message.id, 'incoming', 'active');
    // The file left active/ for recycle/; the count no longer sees it.
    fs.holding = true;
    const removing = spool.remove('active', message.id);
    await fs.done();
    await spool.countMessages();
    fs.report();
    await removing;
    assert.equal(await gauge('active'), 0, 'active/ is empty');
    await spool.countMessages();
    assert.deepEqual([await gauge('incoming'), await gauge('active')], [0, 0]);
  } finally {
    spool.close();
    await rm(directory, { recursive: true, force: true });
  }
});

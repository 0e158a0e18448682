import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Envelope } from '../../src/queue/envelope.js';
import { bodyLengthPatch, encodeEndRecord, encodeQueueFileHead, readQueueFile, readQueueFileHead, verifyQueueFile } from '../../src/queue/queue-file.js';
import { MxError } from '../../src/errors.js';

const envelope: Envelope = {
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.com', notify: ['FAILURE'] }],
  arrivalTime: Date.UTC(2024, 0, 1),
  client: { address: '127.0.0.9', port: 40000, helo: 'client.example.org' },
  sessionId: 'S1',
};
const id = '18CC2A8A0000001A';
const body = Buffer.from('Subject: hi\r\n\r\nline one\r\n.dot line\r\n\u00e9t\u00e9\r\n', 'utf8');

async function withFile(bytes: Buffer, fn: (path: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-qf-'));
  try {
    const path = join(directory, id);
    await writeFile(path, bytes);
    await fn(path);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function wholeFile(): Buffer {
  const head = encodeQueueFileHead(id, envelope, 0);
  const patch = bodyLengthPatch(body.length);
  patch.bytes.copy(head, patch.offset);
  return Buffer.concat([head, body, encodeEndRecord(id)]);
}

test('queue file: round trip of envelope and body', async () => {
  await withFile(wholeFile(), async (path) => {
    const head = await verifyQueueFile(path);
    assert.equal(head.id, id);
    assert.deepEqual(head.envelope, envelope);
    assert.equal(head.bodyLength, body.length);
    const bytes = await readFile(path);
    assert.deepEqual(bytes.subarray(head.bodyOffset, head.bodyOffset + head.bodyLength), body);
  });
});

test('queue file: the head alone is readable without the body', async () => {
  await withFile(wholeFile().subarray(0, encodeQueueFileHead(id, envelope, 0).length), async (path) => {
    const head = await readQueueFileHead(path);
    assert.equal(head.envelope.sender, 'alice@example.org');
    assert.equal(head.bodyLength, body.length);
  });
});

const damaged: { name: string; input: (whole: Buffer) => Buffer }[] = [
  { name: 'truncated body', input: (whole) => whole.subarray(0, whole.length - 20) },
  { name: 'missing end record', input: (whole) => whole.subarray(0, whole.length - encodeEndRecord(id).length) },
  { name: 'end record of another message', input: (whole) => Buffer.concat([whole.subarray(0, whole.length - encodeEndRecord(id).length), encodeEndRecord('18CC2A8A0000001B')]) },
  { name: 'extra bytes after the end record', input: (whole) => Buffer.concat([whole, Buffer.from('x')]) },
  { name: 'wrong magic', input: (whole) => Buffer.concat([Buffer.from('MXSCREEN-QUEUE 9'), whole.subarray(16)]) },
  { name: 'head not JSON', input: (whole) => Buffer.from(`MXSCREEN-QUEUE 1\n{not json\n${whole.toString('latin1')}`, 'latin1') },
  { name: 'empty file', input: () => Buffer.alloc(0) },
];

for (const { name, input } of damaged) {
  test(`queue file: ${name} is ERR_QUEUE_CORRUPT`, async () => {
    await withFile(input(wholeFile()), async (path) => {
      await assert.rejects(verifyQueueFile(path), (error: unknown) => error instanceof MxError && error.code === 'ERR_QUEUE_CORRUPT');
    });
  });
}

test('queue file: truncation on disk is detected', async () => {
  await withFile(wholeFile(), async (path) => {
    await truncate(path, wholeFile().length - 1);
    await assert.rejects(verifyQueueFile(path), { code: 'ERR_QUEUE_CORRUPT' });
  });
});

test('queue file: readQueueFile keeps the body of a small file, not of one over the limit', async () => {
  await withFile(wholeFile(), async (path) => {
    const small = await readQueueFile(path, 64 * 1024);
    assert.deepEqual(small.body, body);
    assert.deepEqual(small.head, await verifyQueueFile(path));
    assert.equal((await readQueueFile(path, 0)).body, undefined);
  });
});

/** A queue file of message `id` with `bytes` as its body and `envelope` as its envelope. */
function fileOf(bytes: Buffer, on: Envelope = envelope): Buffer {
  const head = encodeQueueFileHead(id, on, 0);
  const patch = bodyLengthPatch(bytes.length);
  patch.bytes.copy(head, patch.offset);
  return Buffer.concat([head, bytes, encodeEndRecord(id)]);
}

test('queue file: readQueueFile reads a 10 KiB message into a buffer of the file size, no larger (external memory per delivery)', async () => {
  const tenKiB = Buffer.alloc(10 * 1024, 'x');
  const whole = fileOf(tenKiB);
  await withFile(whole, async (path) => {
    const loaded = await readQueueFile(path, 64 * 1024);
    assert.deepEqual(loaded.body, tenKiB);
    assert.equal(loaded.body!.buffer.byteLength, whole.length, 'the memory behind the body is the file, not a 64 KiB read buffer');
  });
});

test('queue file: readQueueFile reads a head longer than its first read, and checks the end record of a file over the limit', async () => {
  const many: Envelope = { ...envelope, recipients: Array.from({ length: 300 }, (_, n) => ({ address: `user${n}@example.com` })) };
  await withFile(fileOf(body, many), async (path) => {
    const over = await readQueueFile(path, 0);
    assert.equal(over.body, undefined);
    assert.equal(over.head.envelope.recipients.length, 300);
    assert.ok(over.head.bodyOffset > 4096, 'the head does not fit the first read');
  });
  await withFile(Buffer.concat([fileOf(body, many).subarray(0, -encodeEndRecord(id).length), encodeEndRecord('18CC2A8A0000001B')]), async (path) => {
    await assert.rejects(readQueueFile(path, 0), { code: 'ERR_QUEUE_CORRUPT' });
  });
});

for (const { name, input } of damaged) {
  test(`queue file: readQueueFile finds ${name} ERR_QUEUE_CORRUPT too`, async () => {
    await withFile(input(wholeFile()), async (path) => {
      await assert.rejects(readQueueFile(path, 64 * 1024), { code: 'ERR_QUEUE_CORRUPT' });
    });
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { MxError } from '../../src/errors.js';
import type { Envelope, IncomingMessage, QueueWriter } from '../../src/queue/envelope.js';
import { cleanupReply, receiveMessage, type CleanupOutcome } from '../../src/policy/cleanup.js';

const envelope: Envelope = {
  sender: 's@sender.example',
  recipients: [{ address: 'joe@example.com' }],
  arrivalTime: 0,
  client: { address: '192.0.2.10', port: 40000, helo: 'client.example' },
  sessionId: 'S1',
};

/** An in-memory queue that records what happens to the one message it opens. */
function recordingQueue(fail: { open?: string; write?: string; commit?: string } = {}) {
  const events: string[] = [];
  const written: Buffer[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const ioError = (errno: string) => new MxError('ERR_QUEUE_IO', 'queue trouble', { cause: Object.assign(new Error(errno), { code: errno }) });
  const queue: QueueWriter = {
    async open(): Promise<IncomingMessage> {
      if (fail.open) throw ioError(fail.open);
      events.push('open');
      return {
        id: 'Q1',
        async write(chunk) {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((resolve) => setImmediate(resolve));
          inFlight--;
          if (fail.write) throw ioError(fail.write);
          written.push(chunk);
        },
        async commit() {
          if (fail.commit) throw ioError(fail.commit);
          events.push('commit');
        },
        async abort() {
          events.push('abort');
        },
      };
    },
  };
  return { queue, events, written, maxInFlight: () => maxInFlight };
}

const header = (id: string) => `Received: by test id ${id}\r\n`;

const cases: { name: string; input: { chunks: string[]; limit: number; fail?: { open?: string; write?: string; commit?: string } }; want: { kind: CleanupOutcome['kind']; events: string[]; reply: string } }[] = [
  { name: 'queued', input: { chunks: ['a\r\n', 'b\r\n'], limit: 100 }, want: { kind: 'queued', events: ['open', 'commit'], reply: '250 2.0.0 Ok: queued as Q1' } },
  { name: 'exactly at the limit is accepted', input: { chunks: ['12345', '67890'], limit: 10 }, want: { kind: 'queued', events: ['open', 'commit'], reply: '250 2.0.0 Ok: queued as Q1' } },
  { name: 'one byte over the limit', input: { chunks: ['12345', '678901'], limit: 10 }, want: { kind: 'too-big', events: ['open', 'abort'], reply: '552 5.3.4 Message size exceeds fixed limit' } },
  { name: 'no limit when 0', input: { chunks: ['x'.repeat(5000)], limit: 0 }, want: { kind: 'queued', events: ['open', 'commit'], reply: '250 2.0.0 Ok: queued as Q1' } },
  { name: 'open fails', input: { chunks: ['a'], limit: 100, fail: { open: 'EIO' } }, want: { kind: 'queue-error', events: [], reply: '451 4.3.0 Error: queue file write error' } },
  { name: 'write fails with ENOSPC', input: { chunks: ['a'], limit: 100, fail: { write: 'ENOSPC' } }, want: { kind: 'queue-error', events: ['open', 'abort'], reply: '452 4.3.1 Insufficient system storage' } },
  { name: 'commit fails', input: { chunks: ['a'], limit: 100, fail: { commit: 'EIO' } }, want: { kind: 'queue-error', events: ['open', 'abort'], reply: '451 4.3.0 Error: queue file write error' } },
];

for (const { name, input, want } of cases) {
  test(`receiveMessage: ${name}`, async () => {
    const recorder = recordingQueue(input.fail);
    const outcome = await receiveMessage(Readable.from(input.chunks.map((chunk) => Buffer.from(chunk))), {
      queue: recorder.queue,
      envelope,
      sizeLimit: input.limit,
      receivedHeader: header,
    });
    assert.equal(outcome.kind, want.kind);
    assert.deepEqual(recorder.events, want.events);
    const reply = cleanupReply(outcome);
    assert.equal(`${reply.code} ${reply.enhanced} ${reply.text}`, want.reply);
  });
}

test('cleanupReply: an outcome kind its switch does not know throws (a missed case is loud, not undefined)', () => {
  const unknown = { kind: 'bogus' } as unknown as CleanupOutcome;
  assert.throws(() => cleanupReply(unknown), /^Error: unhandled cleanup outcome \{"kind":"bogus"\}$/);
});

test('receiveMessage writes the Received: header first, then the body unchanged; size counts both', async () => {
  const recorder = recordingQueue();
  const outcome = await receiveMessage(Readable.from([Buffer.from('Subject: x\r\n\r\n'), Buffer.from('body\r\n')]), {
    queue: recorder.queue,
    envelope,
    sizeLimit: 100,
    receivedHeader: header,
  });
  assert.equal(Buffer.concat(recorder.written).toString(), 'Received: by test id Q1\r\nSubject: x\r\n\r\nbody\r\n');
  assert.deepEqual(outcome, { kind: 'queued', id: 'Q1', size: 25 + 20, bodyBytes: 20 });
});

test('receiveMessage reads the next chunk only after the previous one is written (back-pressure)', async () => {
  const recorder = recordingQueue();
  // 2 MB in 2,000 chunks: the limits stage may join small chunks, but never holds much.
  const chunks = Array.from({ length: 2000 }, (_, i) => Buffer.from(`line ${String(i).padStart(4, '0')} ${'x'.repeat(987)}\r\n`));
  const outcome = await receiveMessage(Readable.from(chunks), { queue: recorder.queue, envelope, sizeLimit: 0, receivedHeader: header });
  assert.equal(outcome.kind, 'queued');
  assert.equal(recorder.maxInFlight(), 1);
  assert.equal(Buffer.concat(recorder.written.slice(1)).toString(), Buffer.concat(chunks).toString());
  // A write carries what the stream had buffered when it was read: its highWaterMark (16 KiB
  // on Node 20, 64 KiB from Node 22) plus a chunk or so; never the 2 MB message.
  const largest = Math.max(...recorder.written.map((chunk) => chunk.length));
  assert.ok(recorder.written.length > 10 && largest <= 256 * 1024, `${recorder.written.length} writes, the largest ${largest} bytes`);
});

test('receiveMessage: a stream closed without an error or its end (client gone) aborts the file', async () => {
  const recorder = recordingQueue();
  const data = new PassThrough();
  const receiving = receiveMessage(data, { queue: recorder.queue, envelope, sizeLimit: 0, receivedHeader: header });
  data.write(Buffer.from('partial\r\n'));
  setImmediate(() => setImmediate(() => data.destroy()));
  const outcome = await receiving;
  assert.equal(outcome.kind, 'client-gone');
  assert.deepEqual(recorder.events, ['open', 'abort']);
});

test('receiveMessage: a stream that breaks (client gone) aborts the file', async () => {
  const recorder = recordingQueue();
  const data = new PassThrough();
  const receiving = receiveMessage(data, { queue: recorder.queue, envelope, sizeLimit: 0, receivedHeader: header });
  data.write(Buffer.from('partial\r\n'));
  setImmediate(() => data.destroy(Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' })));
  const outcome = await receiving;
  assert.equal(outcome.kind, 'client-gone');
  assert.deepEqual(recorder.events, ['open', 'abort']);
});

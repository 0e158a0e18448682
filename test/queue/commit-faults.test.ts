// The commit path of a new queue file, as a property: whatever the message size, the write
// sizes, a recycled or a new file, and a fault at any one step (ENOSPC, EIO, a short write,
// a short write on a disk that then fills up, a write the disk only pretends to do), a
// commit either resolves with the whole file in incoming/ (size = head + body + END, body
// byte-identical) or rejects with ERR_QUEUE_IO carrying the fault's code, leaving nothing
// queued and no temporary file. Issue 8: a batch flush right before commit dropped the END record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Envelope, IncomingMessage } from '../../src/queue/envelope.js';
import { Spool } from '../../src/queue/spool.js';
import { Metrics } from '../../src/ops/metrics.js';
import { MxError } from '../../src/errors.js';
import { ManualClock } from './manual-clock.js';
import { captureLog, type LogCapture } from './log-capture.js';
import { FAULTS, FaultyFileSystem } from '../fakes/faulty-file-system.js';
import { SeededRandom } from '../fakes/seeded-random.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

const envelope: Envelope = {
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }],
  arrivalTime: Date.UTC(2026, 0, 1),
  client: { address: '127.0.0.9', port: 40000 },
  sessionId: 'S1',
};

const MIB = 1024 * 1024;

interface World {
  readonly spool: Spool;
  readonly fs: FaultyFileSystem;
  readonly directory: string;
  readonly capture: LogCapture;
  readonly metrics: Metrics;
}

async function withWorld(fn: (world: World) => Promise<void>): Promise<void> {
  const directory = temporaryDirectory('mxscreen-commit-');
  const fs = new FaultyFileSystem();
  const capture = captureLog();
  const metrics = new Metrics();
  const spool = await Spool.open(directory, { log: capture.log, metrics, clock: new ManualClock(), fileSystem: fs });
  try {
    await fn({ spool, fs, directory, capture, metrics });
  } finally {
    spool.close();
    await rm(directory, { recursive: true, force: true });
  }
}

/** `size` bytes that differ from any other message's (so a mix-up shows). */
function body(random: SeededRandom, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(Math.ceil(size / 4) * 4);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE((random.next() * 2 ** 32) >>> 0, i);
  return bytes.subarray(0, size);
}

/** `bytes` cut into writes of random sizes, each 1 byte to `largest` bytes (log-uniform). */
function chunks(random: SeededRandom, bytes: Buffer, largest: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const size = random.logInteger(1, largest);
    out.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

/** Writes a message as cleanup.ts does: a failed write aborts it; commit aborts on its own. */
async function send(spool: Spool, parts: readonly Buffer[]): Promise<IncomingMessage> {
  const message = await spool.open(envelope);
  try {
    for (const part of parts) await message.write(part);
  } catch (error) {
    await message.abort();
    throw error;
  }
  await message.commit();
  return message;
}

async function bodyOf(spool: Spool, id: string): Promise<Buffer> {
  const loaded = await spool.load('incoming', id);
  const pieces: Buffer[] = [];
  for await (const piece of spool.openBody('incoming', loaded.head, loaded.body)) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/** Files in incoming/ (queued ids and temporary files). */
async function incoming(directory: string): Promise<string[]> {
  return (await readdir(join(directory, 'incoming'))).sort();
}

function causeCode(error: unknown): string | undefined {
  // Bounded walk down the cause chain, as cleanup.ts does to pick 452 or 451.
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EIO') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

test('commit property: random sizes 0 to 8 MiB in writes of 1 byte to 1 MiB, new and recycled files, are queued whole and read back byte-identical', async () => {
  const random = new SeededRandom();
  await withWorld(async ({ spool, fs, directory }) => {
    let previous = -1;
    const recycledFrom = { larger: 0, smaller: 0 };
    for (let n = 0; n < 24; n += 1) {
      const size = n === 0 ? 0 : random.pick([random.logInteger(1, 8 * MIB), random.integer(64 * 1024 - 600, 64 * 1024 + 600), random.integer(0, 200 * 1024)]);
      const bytes = body(random, size);
      fs.arm(0, 'ENOSPC'); // count the steps only
      const message = await send(spool, chunks(random, bytes, MIB));
      const recycled = fs.steps.includes('link');
      fs.disarm();
      if (recycled && previous >= 0) recycledFrom[previous > size ? 'larger' : 'smaller'] += 1;
      const file = await stat(spool.path('incoming', message.id));
      const head = await spool.verify('incoming', message.id);
      assert.equal(file.size, head.bodyOffset + size + `END ${message.id}\n`.length, `seed ${random.seed}, message ${n}: file size`);
      assert.ok((await bodyOf(spool, message.id)).equals(bytes), `seed ${random.seed}, message ${n} (${size} bytes): body differs`);
      assert.deepEqual(await incoming(directory), [message.id]);
      await spool.remove('incoming', message.id); // its file is recycled for the next message
      previous = size;
    }
    assert.ok(recycledFrom.larger > 0 && recycledFrom.smaller > 0, `seed ${random.seed}: recycled files both larger and smaller than the new message (${JSON.stringify(recycledFrom)})`);
  });
});

/** Message shapes for the fault sweep: sizes around the 64 KiB write batch, one or many writes. */
const SHAPES: readonly { readonly name: string; readonly size: number; readonly largest: number }[] = [
  { name: 'empty', size: 0, largest: 1 },
  { name: 'small, one write', size: 300, largest: 300 },
  { name: 'one batch exactly, then the end record', size: 64 * 1024, largest: 64 * 1024 },
  { name: 'two batches in 64 KiB writes (the last write flushes)', size: 128 * 1024, largest: 64 * 1024 },
  { name: '200 KB in random writes', size: 200_000, largest: 40_000 },
];

test('commit faults: ENOSPC, EIO, a short write or a short write on a filling disk at every step of the commit never queue a partial file', async () => {
  const random = new SeededRandom();
  for (const shape of SHAPES) {
    const bytes = body(random, shape.size);
    const parts = shape.size === 0 ? [] : shape.largest >= shape.size ? [bytes] : chunks(random, bytes, shape.largest);
    const writes = shape.name.includes('64 KiB writes') ? [bytes.subarray(0, 65536), bytes.subarray(65536)] : parts;
    // On a new file, and on a recycled one (an earlier message's, removed before each try).
    for (const recycledFile of [false, true]) {
      await withWorld(async ({ spool, fs, directory }) => {
        const prepare = async (): Promise<void> => {
          if (recycledFile) await spool.remove('incoming', (await send(spool, [body(random, random.integer(1, 300_000))])).id);
        };
        const discard = async (id: string): Promise<void> => {
          // A recycled-file run gives the file back; a new-file run keeps the pool empty.
          if (recycledFile) await spool.remove('incoming', id);
          else await rm(spool.path('incoming', id));
        };
        await prepare();
        fs.arm(0, 'ENOSPC');
        const dry = await send(spool, writes);
        const steps = [...fs.steps];
        fs.disarm();
        assert.equal(steps.includes('link'), recycledFile, `${shape.name}: a recycled file is taken exactly when the pool has one`);
        await discard(dry.id);
        for (let at = 1; at <= steps.length; at += 1) {
          for (const fault of FAULTS) {
            const where = `${shape.name}, ${recycledFile ? 'recycled' : 'new'} file, ${fault} at step ${at} (${steps[at - 1]}), seed ${random.seed}`;
            await prepare();
            fs.arm(at, fault);
            let outcome: { ok: true; id: string } | { ok: false; error: unknown };
            try {
              outcome = { ok: true, id: (await send(spool, writes)).id };
            } catch (error) {
              outcome = { ok: false, error };
            }
            const struck = fs.struck;
            const step = fs.steps[at - 1];
            fs.disarm();
            if (outcome.ok) {
              const file = await stat(spool.path('incoming', outcome.id));
              const head = await spool.verify('incoming', outcome.id);
              assert.equal(file.size, head.bodyOffset + shape.size + `END ${outcome.id}\n`.length, where);
              assert.ok((await bodyOf(spool, outcome.id)).equals(bytes), `${where}: body differs`);
              assert.deepEqual(await incoming(directory), [outcome.id], where);
              // Only faults a commit rightly survives: a short write (the rest is written
              // after it), a failed unlink of a recycled file's old name in recycle/.
              assert.ok(!struck || fault === 'short' || step === 'unlink', `${where}: committed despite the fault`);
              await discard(outcome.id);
            } else {
              assert.ok(outcome.error instanceof MxError && outcome.error.code === 'ERR_QUEUE_IO', `${where}: ${String(outcome.error)}`);
              assert.ok(struck && fault !== 'short', `${where}: failed without a fault: ${String(outcome.error)}`);
              assert.equal(causeCode(outcome.error), fault === 'EIO' ? 'EIO' : 'ENOSPC', `${where}: the cause picks 452 or 451`);
              assert.deepEqual(await incoming(directory), [], `${where}: nothing queued, no temporary file left`);
            }
          }
        }
      });
    }
  }
});

test('commit: a file whose size is not head + body + end record is not renamed; the bug is logged and the client gets 451', async () => {
  const random = new SeededRandom();
  await withWorld(async ({ spool, directory, capture }) => {
    // A recycled file that was never emptied (a file-pool bug): the new message is shorter.
    await spool.remove('incoming', (await send(spool, [body(random, 100_000)])).id);
    const recycle = join(directory, 'recycle');
    const [kept] = await readdir(recycle);
    assert.ok(kept, 'a file waits in recycle/');
    const handle = await open(join(recycle, kept), 'r+');
    await handle.write(Buffer.alloc(5000, 0x41), 0, 5000, 0);
    await handle.close();
    await assert.rejects(send(spool, [Buffer.from('Subject: short\r\n\r\nbody\r\n')]), (error: unknown) => error instanceof MxError && error.code === 'ERR_QUEUE_IO' && causeCode(error) === 'EIO');
    assert.deepEqual(await incoming(directory), []);
    const bug = capture.events('queue error').find((line) => line['bug'] === true);
    assert.ok(bug, 'logged as a bug');
    assert.equal(bug['level'], 'error');
    assert.equal(bug['size'], 5000);
  });
});

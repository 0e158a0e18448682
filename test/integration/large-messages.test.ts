// Every message that got 250 is delivered byte-identical, as a property over the whole
// chain: random sizes from 0 to 8 MiB, sent in socket writes of 1 byte to 1 MiB, one
// session at a time (each message waits until the last one is delivered, so its queue
// file is a recycled one) and several sessions at once. Issue 8: messages sent in large
// writes were 250'd, then found without their END record and moved to corrupt/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startChain, waitForMessages, withoutFirstHeader, type Chain } from './harness.js';
import { SeededRandom } from '../fakes/seeded-random.js';

const MIB = 1024 * 1024;
/** Postfix's default message_size_limit (bytes): an 8 MiB message and its headers fit. */
const SIZE_LIMIT = 10_240_000;

/**
 * Message `n` of `size` bytes (at least its three header lines): CRLF lines of up to 998
 * octets (RFC 5322 §2.1.1), some starting with a dot, ending in CRLF.
 */
function message(random: SeededRandom, n: number, size: number): Buffer {
  const head = `Message-ID: <${n}@client.example.net>\r\nSubject: message ${n}\r\n\r\n`;
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-='.repeat(17);
  const parts = [head];
  let remaining = Math.max(0, size - head.length);
  // Bounded: each line takes at least its CRLF; a remainder of 1 is never left.
  while (remaining >= 2) {
    let width = Math.min(random.integer(0, 998), remaining - 2);
    if (remaining - 2 - width === 1) width = width > 0 ? width - 1 : 1;
    const start = random.integer(0, 64);
    const line = alphabet.slice(start, start + width);
    parts.push(random.next() < 0.05 && width > 0 ? `.${line.slice(1)}` : line, '\r\n');
    remaining -= width + 2;
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** RFC 5321 §4.5.2 transparency: a dot doubled at the start of every line, the final CRLF . CRLF. */
function dataStream(content: Buffer): Buffer {
  const text = content.toString('latin1');
  const stuffed = (text.startsWith('.') ? '.' : '') + text.replace(/\r\n\./g, '\r\n..');
  const ending = stuffed === '' || stuffed.endsWith('\r\n') ? '.\r\n' : '\r\n.\r\n';
  return Buffer.from(stuffed + ending, 'latin1');
}

/** One SMTP session sending `content` in socket writes of random sizes; resolves with the reply to the final dot. */
async function sendInPieces(port: number, localAddress: string, content: Buffer, random: SeededRandom): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.setNoDelay(true);
  const replies = replyReader(socket);
  try {
    const expect = async (code: string): Promise<string> => {
      const reply = await replies.next();
      if (!reply.startsWith(code)) throw new Error(`expected ${code}, got ${reply}`);
      return reply;
    };
    await expect('220');
    socket.write('EHLO client.example.net\r\n');
    await expect('250');
    socket.write(`MAIL FROM:<sender@example.net> SIZE=${content.length}\r\n`);
    await expect('250');
    socket.write('RCPT TO:<joe@example.com>\r\n');
    await expect('250');
    socket.write('DATA\r\n');
    await expect('354');
    const stream = dataStream(content);
    // Bounded by the stream's length: each write takes at least one byte.
    for (let offset = 0; offset < stream.length; ) {
      const size = random.logInteger(1, MIB);
      if (!socket.write(stream.subarray(offset, offset + size))) await new Promise((resolve) => socket.once('drain', resolve));
      offset += size;
    }
    const reply = await replies.next();
    socket.write('QUIT\r\n');
    return reply;
  } finally {
    socket.end();
  }
}

/** Final reply lines (`250 …`, not `250-…`) of `socket`, one per next(). */
function replyReader(socket: Socket): { next(): Promise<string> } {
  let buffered = '';
  const lines: string[] = [];
  let waiting: ((line: string) => void) | undefined;
  let failure: Error | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (text: string) => {
    buffered += text;
    // Bounded by the text received.
    for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (line[3] === '-') continue;
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve(line);
      } else lines.push(line);
    }
  });
  socket.on('error', (error) => {
    failure = error;
  });
  return {
    next: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 20 s')), 20_000);
        waiting = (reply) => {
          clearTimeout(timer);
          resolve(reply);
        };
      });
    },
  };
}

/** Sizes to try: 0, the 64 KiB write batch ± a few hundred bytes, 8 MiB, and log-uniform draws. */
function sizes(random: SeededRandom, count: number): number[] {
  const fixed = [0, random.integer(64 * 1024 - 400, 64 * 1024 + 400), 8 * MIB];
  const drawn = Array.from({ length: Math.max(0, count - fixed.length) }, () => random.logInteger(1, 8 * MIB));
  return [...fixed, ...drawn].sort(() => random.next() - 0.5);
}

/** Checks that every 250'd message arrived byte-identical (without our Received: header). */
async function assertDelivered(chain: Chain, sent: ReadonlyMap<string, Buffer>, seed: number): Promise<void> {
  const received = await waitForMessages(chain.mailbox, sent.size, 60_000);
  const byId = new Map<string, Buffer>();
  for (const message of received) {
    const body = withoutFirstHeader(message.body);
    const id = /^Message-ID: <(\d+)@/.exec(body.toString('latin1'))?.[1] ?? `unnamed ${byId.size}`;
    byId.set(id, body);
  }
  for (const [id, content] of sent) {
    const body = byId.get(id) ?? (content.length < 64 ? [...byId.values()].find((candidate) => candidate.equals(content)) : undefined);
    assert.ok(body, `seed ${seed}: message ${id} (${content.length} bytes) was 250'd but not delivered`);
    assert.ok(body.equals(content), `seed ${seed}: message ${id} (${content.length} bytes) delivered with ${body.length} different bytes`);
  }
  assert.deepEqual(chain.log.events('corrupt'), [], `seed ${seed}: no queue file was found corrupt`);
}

test('large messages: one session at a time, random sizes to 8 MiB in random writes, recycled queue files — every 250 is delivered byte-identical', { timeout: 120_000 }, async () => {
  const random = new SeededRandom();
  const chain = await startChain([`message_size_limit = ${SIZE_LIMIT}`]);
  try {
    const sent = new Map<string, Buffer>();
    let recycled = 0;
    for (const [n, size] of sizes(random, 10).entries()) {
      const content = message(random, n, size);
      if ((await readdir(join(chain.directory, 'queue', 'recycle'))).length > 0) recycled += 1;
      const reply = await sendInPieces(chain.port, '127.0.0.1', content, random);
      assert.match(reply, /^250 2\.0\.0 Ok: queued as /, `seed ${random.seed}: message ${n} (${size} bytes)`);
      sent.set(String(n), content);
      await waitForMessages(chain.mailbox, sent.size, 60_000); // delivered: its file goes to recycle/
    }
    assert.ok(recycled >= 5, `seed ${random.seed}: messages were written into recycled files (${recycled})`);
    await assertDelivered(chain, sent, random.seed);
  } finally {
    await chain.close();
  }
});

test('large messages: four sessions at once, random sizes to 8 MiB in random writes — every 250 is delivered byte-identical', { timeout: 120_000 }, async () => {
  const random = new SeededRandom();
  const chain = await startChain([`message_size_limit = ${SIZE_LIMIT}`]);
  try {
    const sent = new Map<string, Buffer>();
    const all = sizes(random, 12);
    await Promise.all(
      [0, 1, 2, 3].map(async (session) => {
        for (let n = session; n < all.length; n += 4) {
          const content = message(random, n, all[n]!);
          const reply = await sendInPieces(chain.port, `127.0.0.${session + 11}`, content, random);
          assert.match(reply, /^250 2\.0\.0 Ok: queued as /, `seed ${random.seed}: message ${n} (${all[n]} bytes)`);
          sent.set(String(n), content);
        }
      }),
    );
    await assertDelivered(chain, sent, random.seed);
  } finally {
    await chain.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Sink } from '../../src/sink/sink.js';
import { deliverMessage } from '../../src/delivery/smtp-delivery.js';

function send(port: number, recipients: string[], body = 'Subject: s\r\n\r\nx\r\n') {
  return deliverMessage({
    targets: [{ hostname: '127.0.0.1', address: '127.0.0.1', port }],
    sender: 's@example.org',
    recipients,
    size: body.length,
    body: () => Readable.from([Buffer.from(body)]),
    helo: 'client.test',
    connectTimeout: 2000,
    commandTimeout: 2000,
  });
}

test('sink: counts messages without keeping them unless asked', async () => {
  const sink = await Sink.start({ listen: '127.0.0.1:0' });
  try {
    await send(sink.port, ['a@example.com']);
    await send(sink.port, ['b@example.com']);
    assert.equal(sink.count, 2);
    assert.deepEqual(sink.received, []);
  } finally {
    await sink.close();
  }
});

test('sink: keeps at most `keep` recent messages', async () => {
  const sink = await Sink.start({ listen: '127.0.0.1:0', keep: 1 });
  try {
    await send(sink.port, ['a@example.com']);
    await send(sink.port, ['b@example.com']);
    assert.deepEqual(sink.received.map((m) => m.recipients), [['b@example.com']]);
  } finally {
    await sink.close();
  }
});

test('sink: stores DIR/<n>.eml when a directory is given', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-sink-'));
  const sink = await Sink.start({ listen: '127.0.0.1:0', directory });
  try {
    await send(sink.port, ['a@example.com'], 'Subject: stored\r\n\r\nbody\r\n');
    assert.equal(await readFile(join(directory, '1.eml'), 'utf8'), 'Subject: stored\r\n\r\nbody\r\n');
  } finally {
    await sink.close();
    await rm(directory, { recursive: true, force: true });
  }
});

const modes = [
  { name: 'tempfail answers 451 4.3.0', input: 'tempfail' as const, want: { status: 'deferred', dsn: '4.3.0' } },
  { name: 'reject answers 550 5.1.1', input: 'reject' as const, want: { status: 'bounced', dsn: '5.1.1' } },
  { name: 'accept takes the message', input: 'accept' as const, want: { status: 'sent', dsn: '2.0.0' } },
];

for (const { name, input, want } of modes) {
  test(`sink: mode ${name}`, async () => {
    const sink = await Sink.start({ listen: '127.0.0.1:0' });
    try {
      sink.setMode(input);
      const result = await send(sink.port, ['a@example.com']);
      assert.deepEqual({ status: result.recipients[0]!.status, dsn: result.recipients[0]!.dsn }, want);
    } finally {
      await sink.close();
    }
  });
}

test('sink: a bad listen address is ERR_CONFIG', async () => {
  await assert.rejects(Sink.start({ listen: 'nonsense' }), { code: 'ERR_CONFIG' });
});

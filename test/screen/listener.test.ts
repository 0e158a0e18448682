import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { SmtpListener } from '../../src/screen/listener.js';
import { connectClient } from '../fakes/scripted-client.js';

test('listen binds every address and reports the ephemeral ports', async () => {
  const listener = new SmtpListener(['127.0.0.1:0', '127.0.0.2:0'], (socket) => socket.destroy());
  try {
    const bound = await listener.listen();
    assert.equal(bound.length, 2);
    assert.equal(bound[0]?.address, '127.0.0.1');
    assert.equal(bound[1]?.address, '127.0.0.2');
    assert.ok(bound.every((b) => b.port > 0));
  } finally {
    await listener.close();
  }
});

test('every accepted socket goes to the callback', async () => {
  const accepted: Socket[] = [];
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => {
    accepted.push(socket);
    socket.end('220 hello\r\n');
  });
  try {
    const [bound] = await listener.listen();
    const client = await connectClient({ port: bound!.port, localAddress: '127.0.40.1' });
    assert.equal(await client.readLine(1000), '220 hello');
    assert.equal(accepted[0]?.remoteAddress, '127.0.40.1');
    await client.close();
  } finally {
    await listener.close();
  }
});

test('close stops accepting but leaves accepted connections open', async () => {
  const accepted: Socket[] = [];
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => accepted.push(socket));
  const [bound] = await listener.listen();
  const client = await connectClient({ port: bound!.port });
  for (let i = 0; i < 400 && accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await listener.close();
  accepted[0]!.write('220 still here\r\n');
  assert.equal(await client.readLine(1000), '220 still here');
  await assert.rejects(connectClient({ port: bound!.port, timeoutMs: 500 }), { code: 'ECONNREFUSED' });
  await client.close();
  accepted[0]!.destroy();
});

test('a port in use rejects with EADDRINUSE and nothing stays bound', async () => {
  const first = new SmtpListener(['127.0.0.1:0'], (socket) => socket.destroy());
  const [bound] = await first.listen();
  const second = new SmtpListener(['127.0.0.3:0', `127.0.0.1:${bound!.port}`], (socket) => socket.destroy());
  try {
    await assert.rejects(second.listen(), { code: 'EADDRINUSE' });
  } finally {
    await first.close();
    await second.close();
  }
});

test('a malformed address rejects with ERR_CONFIG', async () => {
  const listener = new SmtpListener(['127.0.0.1'], (socket) => socket.destroy());
  await assert.rejects(listener.listen(), { code: 'ERR_CONFIG' });
});

// The deep tests on a live smtp-server session over loopback: the monitor is attached
// before smtp-server's pipe, as the screener does at handover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { DeepTestSession, type DeepTest, type DeepTestSettings } from '../../src/screen/deep-tests.js';
import { TimerQueue } from '../../src/screen/timer-queue.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';

interface LogLine {
  event?: string;
  msg?: string;
}

function settings(overrides: Partial<DeepTestSettings> = {}): DeepTestSettings {
  return {
    tests: new Set<DeepTest>(['pipelining', 'non_smtp_command', 'bare_newline']),
    actions: { pipelining: 'enforce', non_smtp_command: 'drop', bare_newline: 'enforce' },
    ttlMs: { pipelining: 30_000, non_smtp_command: 40_000, bare_newline: 50_000 },
    ignoreTtlMs: 5_000,
    forbiddenCommands: ['CONNECT', 'GET', 'POST'],
    commandCountLimit: 20,
    commandTimeLimitMs: 5_000,
    lineLengthLimit: 2048,
    hostname: 'mx.deep.test',
    ...overrides,
  };
}

/** A loopback listener whose sockets get a monitor, then a real smtp-server session. */
async function startSession(options: Partial<DeepTestSettings> = {}) {
  const logs: LogLine[] = [];
  const log = createLogger({ destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const metrics = new Metrics();
  const records: { passes: Partial<Record<DeepTest, number>>; failed: readonly DeepTest[] }[] = [];
  const messages: string[] = [];
  const monitors: DeepTestSession[] = [];
  const smtp = new SMTPServer({
    name: 'mx.deep.test',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onRcptTo: (_address, _session, callback) => {
      const failure = monitors[0]?.failure();
      callback(failure ? Object.assign(new Error(failure.reply.text), { responseCode: failure.reply.code }) : null);
    },
    onData: (stream, _session, callback) => {
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      stream.on('end', () => {
        messages.push(text);
        callback();
      });
    },
  });
  smtp.on('error', () => undefined);
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.pause();
    monitors.push(
      new DeepTestSession(socket, settings(options), {
        clock: new TimerQueue(systemClock),
        log,
        metrics,
        clientText: `[${socket.remoteAddress}]:${socket.remotePort}`,
        record: (passes, failed) => void records.push({ passes, failed }),
      }),
    );
    smtp.connect(socket, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const clients: ScriptedClient[] = [];
  return {
    logs,
    metrics,
    records,
    messages,
    monitors,
    events: () => logs.map((line) => line.event).filter(Boolean),
    async connect(): Promise<ScriptedClient> {
      const client = await connectClient({ port, localAddress: '127.0.40.1' });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) await client.close();
      for (const socket of sockets) socket.destroy();
      server.close();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    },
  };
}

/** Sends `line` and reads one reply. */
async function say(client: ScriptedClient, line: string): Promise<number> {
  client.send(`${line}\r\n`);
  return (await client.readReply(1000)).code;
}

test('a client that waits for every reply passes every test at RCPT, and its message arrives intact', async () => {
  const session = await startSession();
  try {
    const client = await session.connect();
    assert.equal((await client.readReply(1000)).code, 220);
    assert.equal(await say(client, 'EHLO good.example'), 250);
    assert.equal(await say(client, 'MAIL FROM:<a@good.example>'), 250);
    assert.equal(await say(client, 'RCPT TO:<b@deep.test>'), 250);
    assert.equal(await say(client, 'DATA'), 354);
    assert.equal(await say(client, 'Subject: hi\r\n\r\nline one\r\n.'), 250);
    assert.equal(session.monitors[0]?.failure(), undefined);
    assert.deepEqual(Object.keys(session.records[0]?.passes ?? {}).sort(), ['bare_newline', 'non_smtp_command', 'pipelining']);
    assert.equal(session.messages[0], 'Subject: hi\r\n\r\nline one\r\n');
    assert.equal(session.monitors[0]?.watching, false, 'the monitor stops after the first message');
  } finally {
    await session.close();
  }
});

test('RFC 2920: after EHLO offered PIPELINING, MAIL RCPT DATA in one group is allowed', async () => {
  const session = await startSession();
  try {
    const client = await session.connect();
    await client.readReply(1000);
    assert.equal(await say(client, 'EHLO good.example'), 250);
    client.send('MAIL FROM:<a@good.example>\r\nRCPT TO:<b@deep.test>\r\nDATA\r\n');
    assert.equal((await client.readReply(1000)).code, 250);
    assert.equal((await client.readReply(1000)).code, 250);
    assert.equal((await client.readReply(1000)).code, 354);
    assert.equal(await say(client, 'hello\r\n.'), 250);
    assert.deepEqual(session.events(), []);
    assert.equal(session.monitors[0]?.failure(), undefined);
  } finally {
    await session.close();
  }
});

const pipeliningCases = [
  { name: 'a command before the greeting', steps: [] as string[], send: 'EHLO bot.example\r\n', after: 'greeting' },
  { name: 'after HELO (PIPELINING not offered)', steps: ['HELO bot.example'], send: 'MAIL FROM:<a@bot.example>\r\nRCPT TO:<b@deep.test>\r\n', after: 'MAIL' },
  { name: 'EHLO pipelined with MAIL', steps: [], send: '', after: 'EHLO', pipelineEhlo: true },
  { name: 'DATA with the message before 354', steps: ['EHLO bot.example', 'MAIL FROM:<a@bot.example>', 'RCPT TO:<b@deep.test>'], send: 'DATA\r\nspam spam spam\r\n', after: 'DATA' },
];
for (const { name, steps, send, after, pipelineEhlo } of pipeliningCases) {
  test(`COMMAND PIPELINING: ${name}`, async () => {
    const session = await startSession();
    try {
      const client = await session.connect();
      if (pipelineEhlo) {
        await client.readReply(1000);
        client.send('EHLO bot.example\r\nMAIL FROM:<a@bot.example>\r\n');
      } else {
        if (steps.length > 0 || send !== 'EHLO bot.example\r\n') await client.readReply(1000);
        for (const step of steps) await say(client, step);
        client.send(send);
      }
      for (let i = 0; i < 400 && !session.events().includes('COMMAND PIPELINING'); i++) await new Promise((r) => setTimeout(r, 5));
      const line = session.logs.find((entry) => entry.event === 'COMMAND PIPELINING');
      assert.match(String(line?.msg), new RegExp(`^COMMAND PIPELINING from \\[127\\.0\\.40\\.1\\]:\\d+ after ${after}: `));
      assert.deepEqual(session.monitors[0]?.failure(), { test: 'pipelining', reply: { code: 550, enhanced: '5.5.1', text: 'Protocol error' } });
    } finally {
      await session.close();
    }
  });
}

test('a failed pipelining test is never recorded as passed; the others pass at RCPT', async () => {
  const session = await startSession();
  try {
    const client = await session.connect();
    await client.readReply(1000);
    client.send('HELO bot.example\r\nMAIL FROM:<a@bot.example>\r\n');
    await client.readReply(1000);
    await client.readReply(1000);
    assert.equal(await say(client, 'RCPT TO:<b@deep.test>'), 550);
    assert.deepEqual(Object.keys(session.records[0]?.passes ?? {}).sort(), ['bare_newline', 'non_smtp_command']);
  } finally {
    await session.close();
  }
});

test('NON-SMTP COMMAND under drop: 521 5.7.0 Error: I can break rules, too. Goodbye. and close', async () => {
  const session = await startSession();
  try {
    const client = await session.connect();
    await client.readReply(1000);
    client.send('CONNECT smtp.example:25 HTTP/1.0\r\n');
    const reply = await client.readReply(1000);
    assert.deepEqual(reply.lines, ['521 5.7.0 Error: I can break rules, too. Goodbye.']);
    await client.waitForEnd(1000);
    const line = session.logs.find((entry) => entry.event === 'NON-SMTP COMMAND');
    assert.match(String(line?.msg), /^NON-SMTP COMMAND from \[127\.0\.40\.1\]:\d+ after CONNECT: CONNECT CONNECT smtp\.example:25 HTTP\/1\.0$/);
  } finally {
    await session.close();
  }
});

test('NON-SMTP COMMAND: a header-like command under enforce', async () => {
  const session = await startSession({ actions: { pipelining: 'enforce', non_smtp_command: 'enforce', bare_newline: 'enforce' } });
  try {
    const client = await session.connect();
    await client.readReply(1000);
    assert.equal(await say(client, 'EHLO bot.example'), 250);
    await say(client, 'Subject: free money');
    assert.equal(session.monitors[0]?.failure()?.test, 'non_smtp_command');
  } finally {
    await session.close();
  }
});

test('BARE NEWLINE under enforce: a command ended by LF alone', async () => {
  const session = await startSession();
  try {
    const client = await session.connect();
    await client.readReply(1000);
    client.send('EHLO bare.example\n');
    await client.readReply(1000);
    const line = session.logs.find((entry) => entry.event === 'BARE NEWLINE');
    assert.match(String(line?.msg), /^BARE NEWLINE from \[127\.0\.40\.1\]:\d+ after EHLO bare\.example$/);
    assert.equal(session.monitors[0]?.failure()?.test, 'bare_newline');
  } finally {
    await session.close();
  }
});

test('BARE NEWLINE under ignore: logged, then passed for the shortest TTL only', async () => {
  const session = await startSession({ actions: { pipelining: 'enforce', non_smtp_command: 'drop', bare_newline: 'ignore' } });
  try {
    const client = await session.connect();
    await client.readReply(1000);
    client.send('EHLO bare.example\n');
    await client.readReply(1000);
    await say(client, 'MAIL FROM:<a@bare.example>');
    const before = Date.now();
    assert.equal(await say(client, 'RCPT TO:<b@deep.test>'), 250);
    const passes = session.records[0]?.passes ?? {};
    assert.ok((passes.bare_newline ?? 0) <= Date.now() + 5_000 && (passes.bare_newline ?? 0) >= before + 4_000);
    assert.ok((passes.pipelining ?? 0) >= before + 29_000);
  } finally {
    await session.close();
  }
});

test('COMMAND COUNT LIMIT before RCPT: 421 and close', async () => {
  const session = await startSession({ commandCountLimit: 3 });
  try {
    const client = await session.connect();
    await client.readReply(1000);
    for (let i = 0; i < 3; i++) assert.equal(await say(client, 'NOOP'), 250);
    client.send('NOOP\r\n');
    assert.equal((await client.readReply(1000)).lines[0], '421 mx.deep.test Service unavailable - try again later');
    await client.waitForEnd(1000);
    assert.ok(session.events().includes('COMMAND COUNT LIMIT'));
  } finally {
    await session.close();
  }
});

test('COMMAND TIME LIMIT: no command within the limit after the last reply', async () => {
  const session = await startSession({ commandTimeLimitMs: 100 });
  try {
    const client = await session.connect();
    await client.readReply(1000);
    assert.equal((await client.readReply(1000)).lines[0], '421 4.4.2 mx.deep.test Error: timeout exceeded');
    assert.ok(session.events().includes('COMMAND TIME LIMIT'));
  } finally {
    await session.close();
  }
});

test('COMMAND LENGTH LIMIT: a command longer than line_length_limit', async () => {
  const session = await startSession({ lineLengthLimit: 64 });
  try {
    const client = await session.connect();
    await client.readReply(1000);
    client.send(`EHLO ${'x'.repeat(100)}`);
    assert.equal((await client.readReply(1000)).code, 421);
    assert.ok(session.events().includes('COMMAND LENGTH LIMIT'));
  } finally {
    await session.close();
  }
});

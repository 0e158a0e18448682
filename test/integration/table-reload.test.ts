// Tables reload when their file changes on disk, without a restart and without dropping
// open sessions; a table with an error keeps the last good version and logs file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient } from '../fakes/scripted-client.js';
import { startChain } from './harness.js';

async function rcpt(port: number, to: string): Promise<string> {
  const client = await connectClient({ port, localAddress: '127.0.0.1' }); // mynetworks: no screening wait
  try {
    await client.waitForCode(220, 3000);
    client.send('EHLO client.example\r\n');
    await client.waitForCode(250, 2000);
    client.send('MAIL FROM:<a@sender.example>\r\n');
    await client.waitForCode(250, 2000);
    client.send(`RCPT TO:<${to}>\r\n`);
    const reply = await client.readReply(2000);
    return reply.lines[reply.lines.length - 1]!;
  } finally {
    await client.close();
  }
}

test('relay_recipients edited on disk: the new user is accepted; a broken edit keeps the last good table and logs file:line', async () => {
  const chain = await startChain(['postscreen_greet_wait = 10ms']);
  try {
    assert.match(await rcpt(chain.port, 'new@example.com'), /^550 5\.1\.1 /);
    writeFileSync(join(chain.directory, 'relay_recipients'), 'info@example.com OK\njoe@example.com OK\nnew@example.com OK\n');
    await chain.log.waitFor((line) => line.event === 'RELOAD' && line.msg === 'configuration reloaded', 3000);
    assert.match(await rcpt(chain.port, 'new@example.com'), /^250 /);

    writeFileSync(join(chain.directory, 'transport'), 'example.com\n'); // no right-hand side: an error at line 1
    const failed = await chain.log.waitFor((line) => line.event === 'RELOAD FAILED', 3000);
    assert.ok((failed.problems as string[]).some((problem) => problem.startsWith(`${join(chain.directory, 'transport')}:1:`)), JSON.stringify(failed.problems));
    assert.match(await rcpt(chain.port, 'new@example.com'), /^250 /, 'the last good configuration still runs');
  } finally {
    await chain.close();
  }
});

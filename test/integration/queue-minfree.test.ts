// queue_minfree through a running mxscreen: MAIL FROM is refused with 452 4.3.1 while the
// queue file system has less free space than max(queue_minfree, 1.5 × message_size_limit)
// (postconf(5) queue_minfree). The limits are set relative to the free space the test
// measures on the temporary directory's file system, where the harness puts the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { runTranscript } from '../policy/transcript.js';
import { startChain } from './harness.js';

const MAIL = 'C: EHLO client.example\nS: 250\nC: MAIL FROM:<a@sender.example>\n';

async function mailFromReply(lines: readonly string[], reply: string): Promise<void> {
  const chain = await startChain(lines);
  try {
    await runTranscript({ port: chain.port }, `${MAIL}S: ${reply}`, '127.0.0.1');
    if (reply.startsWith('452')) assert.ok(chain.log.lines.some((line) => line.event === 'NOQUEUE: reject' && line.reason === 'queue_minfree'));
  } finally {
    await chain.close();
  }
}

test('queue_minfree: MAIL FROM gets 452 4.3.1 below max(queue_minfree, 1.5 × message_size_limit), 250 above it', async () => {
  const info = await statfs(tmpdir());
  const free = Number(info.bavail) * Number(info.bsize);
  const refused = '452 4.3.1 Insufficient system storage';
  // 1.5 × (free / 1.2) is more than the free space: refused (a factor of 1 would accept).
  await mailFromReply([`message_size_limit = ${Math.floor(free / 1.2)}`], refused);
  // 1.5 × (free / 1.8) is less: accepted (a factor of 2 would refuse).
  await mailFromReply([`message_size_limit = ${Math.floor(free / 1.8)}`], '250');
  // queue_minfree above the free space wins over a small message_size_limit.
  await mailFromReply([`queue_minfree = ${free * 2}`], refused);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorySync } from '../../src/queue/group-commit.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An fsync the test completes by hand, recording when each one started. */
function manualFsync() {
  const runs: { done: () => void; startedAfter: number }[] = [];
  let calls = 0;
  return {
    runs,
    calls: () => calls,
    fsync: () => {
      calls += 1;
      return new Promise<void>((resolve) => runs.push({ done: resolve, startedAfter: requested }));
    },
  };
}
let requested = 0;

test('group commit: callers during a running fsync share the single next one', async () => {
  const fake = manualFsync();
  const sync = new DirectorySync('/unused', fake.fsync);
  const resolved: number[] = [];
  requested = 1;
  const first = sync.sync().then(() => resolved.push(1));
  requested = 10;
  const waiting = Array.from({ length: 9 }, (_, i) => sync.sync().then(() => resolved.push(i + 2)));
  assert.equal(fake.calls(), 1);
  fake.runs[0]!.done();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fake.calls(), 2, 'one more fsync covers the nine that came during the first');
  assert.deepEqual(resolved, [1], 'the nine wait for an fsync that started after them');
  fake.runs[1]!.done();
  await Promise.all(waiting);
  assert.equal(resolved.length, 10);
  assert.equal(fake.calls(), 2);
});

test('group commit: an fsync error reaches every caller that shared it', async () => {
  const sync = new DirectorySync('/unused', () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' })));
  const results = await Promise.allSettled([sync.sync(), sync.sync(), sync.sync()]);
  assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'EIO'));
});

test('group commit: the kept directory descriptor fsyncs a real directory again, and after close()', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-gc-'));
  try {
    const sync = new DirectorySync(directory);
    await sync.sync();
    await sync.sync();
    sync.close();
    await sync.sync();
    sync.close();
    await assert.rejects(new DirectorySync(join(directory, 'missing')).sync(), { code: 'ENOENT' });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

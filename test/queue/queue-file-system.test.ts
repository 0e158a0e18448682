// The default queue file handle (a plain descriptor, fstat and close on the calling
// thread) keeps FileHandle's meaning: positioned writes, the size the kernel reports, an
// idempotent close, and a clear error for a call after close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_QUEUE_FILE_SYSTEM } from '../../src/queue/queue-file-system.js';

test('the default handle writes at positions, fstats, fsyncs, closes once and refuses calls after close', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-qfs-'));
  try {
    const path = join(directory, 'file.tmp');
    const file = await NODE_QUEUE_FILE_SYSTEM.open(path, 'wx');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(await file.writev([Buffer.from('head '), Buffer.from('body')], 0), { bytesWritten: 9 });
    assert.deepEqual(await file.writev([Buffer.from('HEAD')], 0), { bytesWritten: 4 });
    await file.sync();
    assert.deepEqual(await file.stat(), { size: 9 });
    await file.close();
    await file.close();
    await assert.rejects(file.stat(), { code: 'EBADF' });
    await assert.rejects(file.writev([Buffer.from('x')], 9), { code: 'EBADF' });
    assert.equal(readFileSync(path, 'latin1'), 'HEAD body');
    await assert.rejects(NODE_QUEUE_FILE_SYSTEM.open(path, 'wx'), { code: 'EEXIST' });
    const again = await NODE_QUEUE_FILE_SYSTEM.open(path, 'w');
    assert.deepEqual(await again.stat(), { size: 0 });
    await again.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

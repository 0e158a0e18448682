import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SourceWatcher } from '../../src/config/config-watch.js';
import type { Clock } from '../../src/clock.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

/** A clock whose timers run only when the test says so. */
function steppedClock(): Clock & { fire(): void } {
  let pending: (() => void) | undefined;
  return {
    now: () => 0,
    setTimer: (_ms, fn) => {
      pending = fn;
      return { cancel: () => (pending = undefined) };
    },
    fire: () => pending?.(),
  };
}

test('SourceWatcher: an edit, a rename into place and a deletion are each one change; nothing else is', () => {
  const directory = temporaryDirectory('mxscreen-watch-');
  try {
    const file = join(directory, 'access');
    writeFileSync(file, 'a OK\n');
    const clock = steppedClock();
    const seen: string[][] = [];
    const watcher = new SourceWatcher([file], { clock, intervalMs: 1000, onChange: (files) => seen.push([...files]) });
    clock.fire();
    assert.deepEqual(seen, []);
    writeFileSync(file, 'a OK\nb OK\n');
    clock.fire();
    assert.deepEqual(seen, [[file]]);
    writeFileSync(join(directory, 'new'), 'c OK\n');
    renameSync(join(directory, 'new'), file);
    clock.fire();
    assert.equal(seen.length, 2);
    unlinkSync(file);
    clock.fire();
    assert.equal(seen.length, 3);
    watcher.stop();
    writeFileSync(file, 'd OK\n');
    clock.fire();
    assert.equal(seen.length, 3, 'stopped');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

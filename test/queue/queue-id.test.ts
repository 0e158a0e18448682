import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQueueId, newQueueId } from '../../src/queue/queue-id.js';

test('queue id: 16 uppercase hex digits', () => {
  assert.match(newQueueId(Date.now()), /^[0-9A-F]{16}$/);
});

test('queue id: unique and sorted by time within one process', () => {
  const ids: string[] = [];
  const start = Date.UTC(2030, 0, 1);
  for (let i = 0; i < 2000; i += 1) ids.push(newQueueId(start + Math.floor(i / 100)));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
});

test('queue id: temporary names are not queue ids', () => {
  const id = newQueueId(Date.now());
  assert.equal(isQueueId(id), true);
  assert.equal(isQueueId(`${id}.tmp`), false);
  assert.equal(isQueueId(id.toLowerCase()), false);
});

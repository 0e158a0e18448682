import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../src/queue/backoff.js';

const cases = [
  { name: 'first failure waits the minimum', input: { attempts: 1, minimal: 300_000, maximal: 4_000_000 }, want: 300_000 },
  { name: 'second failure doubles', input: { attempts: 2, minimal: 300_000, maximal: 4_000_000 }, want: 600_000 },
  { name: 'fourth failure', input: { attempts: 4, minimal: 300_000, maximal: 4_000_000 }, want: 2_400_000 },
  { name: 'capped at the maximum', input: { attempts: 5, minimal: 300_000, maximal: 4_000_000 }, want: 4_000_000 },
  { name: 'many failures stay capped', input: { attempts: 500, minimal: 300_000, maximal: 4_000_000 }, want: 4_000_000 },
  { name: 'maximum below minimum means minimum', input: { attempts: 3, minimal: 1000, maximal: 10 }, want: 1000 },
];

for (const { name, input, want } of cases) {
  test(`backoff: ${name}`, () => {
    assert.equal(backoffDelay(input.attempts, input.minimal, input.maximal), want);
  });
}

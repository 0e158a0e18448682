// The Logger every stage writes to: `event` is typed against LOG_EVENTS, so a misspelt event
// is a compile error (the @ts-expect-error below fails the build if it ever compiles), pino's
// own logger is one, and child() keeps the type while binding its fields onto every line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createLogger, LOG_EVENTS, type LogEvent, type Logger } from '../../src/ops/log.js';

test('Logger: a misspelt event does not compile; pino\'s logger is a Logger; child() binds fields and stays typed', () => {
  const lines: Record<string, unknown>[] = [];
  const log: Logger = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const first: LogEvent = LOG_EVENTS[0];
  // @ts-expect-error 'nexthop upp' is not one of LOG_EVENTS
  const misspelt: Parameters<Logger['info']>[0] = { event: 'nexthop upp' };
  assert.ok(misspelt);
  const plain: Logger = pino({ level: 'silent' });
  assert.equal(typeof plain.child({ session: 'S0' }).info, 'function');

  const child: Logger = log.child({ session: 'S1', client: '[127.0.0.1]:25' });
  child.warn({ event: first, count: 2 }, 'text %s', 'formatted');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!['session'], 'S1');
  assert.equal(lines[0]!['client'], '[127.0.0.1]:25');
  assert.equal(lines[0]!['event'], first);
  assert.equal(lines[0]!['count'], 2);
  assert.equal(lines[0]!['level'], 'warn');
  assert.equal(lines[0]!['msg'], 'text formatted');
});

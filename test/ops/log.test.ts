// The Logger every stage writes to: `event` is typed against LOG_EVENTS, so a misspelt event
// is a compile error (the @ts-expect-error below fails the build if it ever compiles), pino's
// own logger is one, and child() keeps the type while binding its fields onto every line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger, LOG_EVENTS, type LogEvent, type Logger } from '../../src/ops/log.js';
import { repositoryRoot } from '../fakes/repository-root.js';

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

/**
 * Runs a process that logs a line to stdout whose reader is gone, then exits (as a worker
 * does when its owner died: one write in flight, one line buffered); `abandon` says whether it abandons stdout first. Resolves with
 * its exit code, or 'hung' when it has not exited within `waitMs`.
 */
async function exitWithReaderGone(abandon: boolean, waitMs: number): Promise<number | 'hung'> {
  const log = pathToFileURL(join(repositoryRoot(), 'dist/src/ops/log.js')).href;
  const script = [
    `const { createLogger, StdoutDestination } = await import(${JSON.stringify(log)});`,
    'const stdout = new StdoutDestination();',
    'const log = createLogger({ destination: stdout });',
    'process.stdin.once("data", () => {', // the reader is gone now
    // The first line's write is in flight when exit comes, the second waits in the buffer.
    '  log.info({ event: "STOP" }, "a line nobody reads");',
    '  log.info({ event: "STOP" }, "another");',
    `  if (${abandon}) stdout.abandon();`,
    '  process.exit(0);',
    '});',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  await new Promise((resolve) => setTimeout(resolve, 300)); // started and waiting on stdin
  child.stdout!.destroy();
  child.stdin!.write('go\n');
  const timer = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), waitMs).unref());
  const outcome = await Promise.race([exited, timer]);
  child.kill('SIGKILL');
  return outcome;
}

test('StdoutDestination: a process whose stdout reader is gone (EPIPE) exits once it abandons stdout; sonic-boom alone would retry the write at exit forever', async () => {
  assert.equal(await exitWithReaderGone(true, 5000), 0, 'abandoned: exits at once');
  assert.equal(await exitWithReaderGone(false, 1000), 'hung', 'the hazard abandon() exists for (if sonic-boom stops retrying an EPIPE, abandon() may go)');
});

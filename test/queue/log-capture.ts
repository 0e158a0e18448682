/*
 * log-capture — a real pino logger whose JSON lines a test can read back.
 *
 * Decides: every line is parsed and kept in memory, in order.
 * Leaves to others: what is logged.
 */
import { createLogger, type Logger } from '../../src/ops/log.js';

export interface LogCapture {
  readonly log: Logger;
  /** Parsed log lines so far. */
  readonly lines: Record<string, unknown>[];
  /** Lines whose `event` is `event`. */
  events(event: string): Record<string, unknown>[];
}

export function captureLog(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { log, lines, events: (event) => lines.filter((line) => line['event'] === event) };
}

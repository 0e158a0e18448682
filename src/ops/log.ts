/*
 * log — the structured log every stage writes to.
 *
 * Decides: pino JSON lines on stdout (or a given stream), one line per decision, with a
 * fixed `event` field in postscreen's and smtpd's words (LOG_EVENTS; Logger types it, so a
 * misspelt or undeclared event does not compile), the session id as `session` and the
 * client as `client: "[ip]:port"`; stdout is written asynchronously, and a process whose
 * stdout reader is gone can abandon it (StdoutDestination) so that its exit cannot hang.
 * Leaves to others: which decision to log and with which fields (each stage), and when a
 * reader is gone (a worker knows: its owner reads its stdout).
 */
import { pino, type DestinationStream } from 'pino';

/** Every `event` value a log line can carry; README's "Log events" section explains each. */
export const LOG_EVENTS = [
  'START', 'STOP', 'RELOAD', 'RELOAD FAILED', 'LISTEN', 'PRIVILEGES',
  'CONNECT', 'ALLOWLISTED', 'DENYLISTED', 'PASS NEW', 'PASS OLD', 'PREGREET', 'DNSBL rank',
  'DNSBL error', 'HANGUP', 'DISCONNECT', 'NOQUEUE: reject', 'reject',
  'Connection concurrency limit exceeded', 'Connection rate limit exceeded',
  'WARN', 'hold', 'ETRN', 'address verify',
  'ALLOWLIST VETO', 'COMMAND PIPELINING', 'NON-SMTP COMMAND', 'BARE NEWLINE', 'COMMAND COUNT LIMIT',
  'COMMAND TIME LIMIT', 'COMMAND LENGTH LIMIT', 'STRESS', 'DNSBL health', 'PROXY', 'non-SMTP command',
  'queued', 'status=sent', 'status=deferred', 'status=bounced', 'removed', 'corrupt', 'queue error',
  'sender non-delivery notification', 'sender delay notification', 'sender delivery status notification',
  'placed on hold', 'released from hold', 'requeued', 'flush', 'nexthop dead', 'nexthop up',
  'smtp error', 'SELF LISTED', 'SELF DELISTED', 'SELF LISTING CHECK', 'WORKER START', 'WORKER EXIT', 'CACHE BACKEND UP', 'CACHE BACKEND DOWN',
] as const;
export type LogEvent = (typeof LOG_EVENTS)[number];

/** The fields of one log line: `event` is one of LOG_EVENTS (so a misspelt event does not compile); the rest are the stage's own. */
export interface LogFields {
  readonly event?: LogEvent;
  readonly [field: string]: unknown;
}

/** One log level: the line's fields, then its text (printf-style `args` as pino formats them). */
export type LogMethod = (fields: LogFields, message?: string, ...args: unknown[]) => void;

/**
 * The logger every stage writes to: pino's, seen through typed fields. `child` binds fields
 * (`session`, `client`) onto every line of the returned logger.
 */
export interface Logger {
  readonly info: LogMethod;
  readonly warn: LogMethod;
  readonly error: LogMethod;
  readonly debug: LogMethod;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: string): boolean;
  /** Writes buffered lines out (the stdout destination is asynchronous). */
  flush(): void;
}

/**
 * PIPE_BUF on Linux (POSIX: at least 512): a write(2) of at most this many bytes to a pipe
 * is atomic, so writers sharing one pipe never interleave within it.
 */
const PIPE_BUF = 4096;

/**
 * The logger's stdout: JSON lines written asynchronously by sonic-boom (pino.destination,
 * flushed synchronously by pino at exit). Each write(2) is whole lines of at most PIPE_BUF
 * bytes (sonic-boom's maxWrite joins whole writes up to it), so the owner and its workers,
 * which share one stdout, never cut into each other's lines: a pipe takes such a write
 * atomically, a file shares one offset between the processes that inherited it (Linux
 * serializes their writes), journald's stream socket takes it as one piece. Only a line
 * longer than PIPE_BUF is written on its own and could be cut on a pipe.
 * abandon() is for a reader that is gone: lines buffered are dropped and later ones
 * ignored. Without it the exit of such a process never ends: sonic-boom 4.2's flushSync
 * retries every failed write, an EPIPE too, forever.
 */
export class StdoutDestination implements DestinationStream {
  readonly #stream = pino.destination({ dest: 1, sync: false, maxWrite: PIPE_BUF });
  #abandoned = false;

  write(line: string): void {
    if (!this.#abandoned) this.#stream.write(line);
  }

  /** pino's logger.flush(): starts writing what is buffered; `callback` once written (or at once when abandoned). */
  flush(callback: (error?: Error) => void = () => undefined): void {
    if (this.#abandoned) callback();
    else this.#stream.flush(callback);
  }

  /** The reader is gone: drops what is buffered and writes nothing more (stdout is closed). */
  abandon(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    this.#stream.destroy();
  }
}

/** Creates the root logger. `destination` defaults to stdout; tests pass a capture stream. */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'mxscreen' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? new StdoutDestination(),
  );
}

/** The client as every log line writes it: `[ip]:port` (postscreen(8) style). */
export function formatClient(address: string, port: number): string {
  return `[${address}]:${port}`;
}

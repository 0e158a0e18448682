/*
 * log — the structured log every stage writes to.
 *
 * Decides: pino JSON lines on stdout (or a given stream), one line per decision, with a
 * fixed `event` field in postscreen's and smtpd's words (LOG_EVENTS), the session id as
 * `session` and the client as `client: "[ip]:port"`.
 * Leaves to others: which decision to log and with which fields (each stage).
 */
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/** Every `event` value a log line can carry; README's "Log events" section explains each. */
export const LOG_EVENTS = [
  'START', 'STOP', 'RELOAD', 'RELOAD FAILED', 'LISTEN',
  'CONNECT', 'ALLOWLISTED', 'DENYLISTED', 'PASS NEW', 'PASS OLD', 'PREGREET', 'DNSBL rank',
  'DNSBL error', 'HANGUP', 'DISCONNECT', 'NOQUEUE: reject', 'reject',
  'Connection concurrency limit exceeded', 'Connection rate limit exceeded',
  'WARN', 'hold', 'ETRN', 'address verify',
  'ALLOWLIST VETO', 'COMMAND PIPELINING', 'NON-SMTP COMMAND', 'BARE NEWLINE', 'COMMAND COUNT LIMIT',
  'COMMAND TIME LIMIT', 'COMMAND LENGTH LIMIT', 'STRESS', 'DNSBL health', 'PROXY',
  'queued', 'status=sent', 'status=deferred', 'status=bounced', 'removed', 'corrupt', 'queue error',
  'sender non-delivery notification', 'sender delay notification', 'sender delivery status notification',
  'placed on hold', 'released from hold', 'requeued', 'flush', 'nexthop dead', 'nexthop up',
  'smtp error',
] as const;
export type LogEvent = (typeof LOG_EVENTS)[number];

export type Logger = PinoLogger;

/** Creates the root logger. `destination` defaults to stdout; tests pass a capture stream. */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'mxscreen' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** The client as every log line writes it: `[ip]:port` (postscreen(8) style). */
export function formatClient(address: string, port: number): string {
  return `[${address}]:${port}`;
}

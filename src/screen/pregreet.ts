/*
 * pregreet — the pregreet test: does the client talk before its turn?
 *
 * Decides (postscreen(8) "Pregreet test", postscreen_early.c): the teaser line
 * `220-$postscreen_greet_banner\r\n` (none when the banner is empty), that the first
 * bytes a client sends before the real greeting fail the test, and how that is logged:
 * `PREGREET n after s from [ip]:port: text`, n = bytes in that first read, s = seconds
 * since connect with two decimals, text = those bytes escaped as Postfix escape() does
 * (`\r`, `\n`, `\ooo`), cut at 100 characters. Everything the client sends afterwards
 * during the screen is read and thrown away: smtp-server would answer bytes that arrive
 * before its greeting with "421 You talk too soon" and hang up, so the screener consumes
 * them (Postfix instead lets its dummy SMTP engine read them).
 * Leaves to others: the greet wait timer (early-tests.ts), the action and the verdict
 * (screen-decision.ts, screener.ts).
 * Bugs: a pipelining bot's early commands are lost, not answered.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';

export type PregreetEvent =
  /** The client sent `bytes` bytes before its turn (the test fails). Reported once. */
  | { readonly kind: 'talk'; readonly bytes: number; readonly afterMs: number; readonly text: string }
  /** The client closed or reset the connection during the screen. Reported once. */
  | { readonly kind: 'hangup'; readonly afterMs: number };

export interface PregreetWatch {
  /** Stops watching: removes every listener this watch added to the socket. */
  stop(): void;
}

/** The teaser line for `banner`, or undefined when the banner is empty (no teaser). */
export function teaserLine(banner: string): string | undefined {
  return banner === '' ? undefined : `220-${banner}\r\n`;
}

const NAMED_ESCAPES: Readonly<Record<number, string>> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 92: '\\\\' };

/** Postfix escape(3) of `bytes`, cut at `max` characters (postscreen logs `%.100s`). */
export function escapeBytes(bytes: Uint8Array, max = 100): string {
  let text = '';
  for (const byte of bytes) {
    const named = NAMED_ESCAPES[byte];
    text += named ?? (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '\\' + byte.toString(8).padStart(3, '0'));
    if (text.length >= max) break;
  }
  return text.slice(0, max);
}

/** Elapsed time as postscreen logs it, seconds with two decimals: 1234 ms → "1.23". */
export function formatSeconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(2);
}

/** The PREGREET log line (postscreen(8)); `client` is `[ip]:port`. */
export function formatPregreet(event: { bytes: number; afterMs: number; text: string }, client: string): string {
  return `PREGREET ${event.bytes} after ${formatSeconds(event.afterMs)} from ${client}: ${event.text}`;
}

/**
 * Sends the teaser (if `banner` is not empty) and watches `socket` for early bytes and
 * hangups, reporting each kind once to `onEvent`. Times are measured from
 * `connectedAt` (ms since the epoch) on `clock`. Later bytes are consumed silently.
 * The caller owns the greet wait and must call `stop()` before handing the socket on.
 */
export function watchPregreet(socket: Socket, options: { banner: string; connectedAt: number; clock: Clock }, onEvent: (event: PregreetEvent) => void): PregreetWatch {
  let talked = false;
  let hungUp = false;
  const elapsed = () => options.clock.now() - options.connectedAt;
  const onData = (chunk: Buffer) => {
    if (talked || hungUp) return;
    talked = true;
    onEvent({ kind: 'talk', bytes: chunk.length, afterMs: elapsed(), text: escapeBytes(chunk) });
  };
  const onGone = () => {
    if (hungUp) return;
    hungUp = true;
    onEvent({ kind: 'hangup', afterMs: elapsed() });
  };
  socket.on('data', onData);
  socket.on('end', onGone);
  socket.on('close', onGone);
  socket.on('error', onGone);
  const teaser = teaserLine(options.banner);
  if (teaser !== undefined && socket.writable) socket.write(teaser);
  return {
    stop() {
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
    },
  };
}

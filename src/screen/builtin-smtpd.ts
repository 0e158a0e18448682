/*
 * builtin-smtpd — postscreen's own SMTP engine, for a session that must never reach smtpd.
 *
 * Decides (postscreen_smtpd.c, postscreen(8)): the replies of the engine postscreen runs in
 * its NOFORWARD state (a new client on a postscreen_allowlist_interfaces backup-MX address,
 * "ALLOWLIST VETO"): `220 $smtpd_banner` (none after a pregreet failure under enforce), HELO
 * `250 $myhostname`, EHLO without PIPELINING (SIZE, VRFY, ETRN, ENHANCEDSTATUSCODES, 8BITMIME,
 * DSN), MAIL `250 2.1.0 Ok` (never refused, addresses not checked), every RCPT TO refused
 * with the session's reply (default `450 4.3.2 Service currently unavailable`, or the 550 of
 * a test that failed under enforce) and logged `NOQUEUE: reject: RCPT from [ip]:port: …;
 * from=<…>, to=<…>, proto=…, helo=<…>`, VRFY the same reply, DATA `554 5.5.1 Error: no valid
 * recipients`, ETRN `458 Unable to queue messages`, RSET/NOOP `250 2.0.0 Ok`, QUIT `221 2.0.0
 * Bye` and close, STARTTLS `502 5.5.1` (no TLS here), anything else (AUTH, XCLIENT, …)
 * `502 5.5.2 Error: command not recognized`. No mail is ever accepted.
 * Leaves to others: the deep tests and the command count, time and length limits, which a
 * DeepTestSession (deep-tests.ts) watching the same socket runs for the whole session and
 * which may close it; the verdict cache (a vetoed session stores nothing); the end of the
 * session (screener.ts: HANGUP, DISCONNECT, the slot).
 * Bugs: from the Postfix 2.10 engine's texts (no SMTPUTF8 or CHUNKING in EHLO); when one
 * read holds several commands the watching tests see them all before any is answered (a
 * pipelining failure under drop then closes before the first reply).
 */
import type { Socket } from 'node:net';
import { formatReply, type SmtpReply } from '../errors.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';

/** What the engine announces and enforces, from main.cf. */
export interface BuiltinSmtpdProfile {
  /** smtpd_banner, after `220 ` in the greeting. */
  readonly banner: string;
  /** myhostname, in the HELO and EHLO replies. */
  readonly hostname: string;
  /** message_size_limit in bytes (EHLO SIZE; 0: SIZE without a number). */
  readonly messageSizeLimit: number;
  /** disable_vrfy_command (postscreen_disable_vrfy_command). */
  readonly disableVrfy: boolean;
  /** smtpd_helo_required (postscreen_helo_required): MAIL and ETRN need HELO/EHLO first. */
  readonly heloRequired: boolean;
}

export interface BuiltinSmtpdOptions {
  readonly profile: BuiltinSmtpdProfile;
  /** Send the `220` greeting (false after a pregreet failure under enforce). */
  readonly greeting: boolean;
  /** line_length_limit: longest command line kept, bytes (the watching tests close the session beyond it). */
  readonly lineLengthLimit: number;
  /** The reply to every RCPT TO and VRFY, asked at each one (a deep test may fail under enforce meanwhile). */
  readonly rcptReply: () => SmtpReply;
}

export interface BuiltinSmtpdDeps {
  /** The session's logger (session id and client bound). */
  readonly log: Logger;
  readonly metrics: Metrics;
  /** `[ip]:port` of the client, for log texts. */
  readonly clientText: string;
  /** True once the watching tests have closed the connection (drop, limits): nothing more is answered. */
  readonly closedByTests: () => boolean;
  /** The socket closed: `quit` after QUIT and 221, `tests` when closedByTests(), else `hangup` (the client left). */
  readonly onEnd: (how: 'quit' | 'tests' | 'hangup') => void;
}

/** postscreen_smtpd.c's default rcpt_reply (postscreen_state.c). */
export const NOFORWARD_RCPT_REPLY: SmtpReply = { code: 450, enhanced: '4.3.2', text: 'Service currently unavailable' };

const OK: SmtpReply = { code: 250, enhanced: '2.0.0', text: 'Ok' };
const NOT_RECOGNIZED: SmtpReply = { code: 502, enhanced: '5.5.2', text: 'Error: command not recognized' };

/** psc_extract_addr(): the address of MAIL FROM:/RCPT TO: arguments, unquoted, source route dropped. */
export function extractAddress(text: string): string {
  let at = 0;
  while (text[at] === ' ') at++;
  let stopAt = ' ';
  if (text[at] === '<') {
    at++;
    stopAt = '>';
  }
  let address = '';
  let quoted = false;
  for (; at < text.length; at++) {
    const char = text[at]!;
    if (!quoted && char === stopAt) break;
    if (char === '"') {
      quoted = !quoted;
    } else if (char === '\\') {
      at++;
      if (at >= text.length) break;
      address += text[at];
    } else {
      address += char;
    }
  }
  const colon = address.indexOf(':');
  return address.startsWith('@') && colon >= 0 ? address.slice(colon + 1) : address;
}

/** One engine session on `socket`. Start it after the DeepTestSession that watches the socket. */
export class BuiltinSmtpdSession {
  readonly #socket: Socket;
  readonly #options: BuiltinSmtpdOptions;
  readonly #deps: BuiltinSmtpdDeps;
  #line: Buffer[] = [];
  #lineBytes = 0;
  #helo: string | undefined;
  #sender: string | undefined;
  #protocol: 'SMTP' | 'ESMTP' = 'SMTP';
  #quit = false;

  constructor(socket: Socket, options: BuiltinSmtpdOptions, deps: BuiltinSmtpdDeps) {
    this.#socket = socket;
    this.#options = options;
    this.#deps = deps;
    socket.on('error', () => undefined); // the 'close' that follows ends the session
    socket.on('data', (chunk: Buffer) => this.#input(chunk));
    socket.once('close', () => deps.onEnd(this.#quit ? 'quit' : deps.closedByTests() ? 'tests' : 'hangup'));
    if (options.greeting) this.#reply({ code: 220, enhanced: '', text: options.profile.banner });
    socket.resume();
  }

  #answering(): boolean {
    return !this.#quit && !this.#deps.closedByTests() && !this.#socket.destroyed && !this.#socket.writableEnded;
  }

  #input(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline >= 0 && this.#answering(); newline = chunk.indexOf(0x0a, start)) {
      this.#keep(chunk.subarray(start, newline));
      start = newline + 1;
      const line = Buffer.concat(this.#line).toString('latin1').replace(/\r$/, '');
      this.#line = [];
      this.#lineBytes = 0;
      this.#command(line);
    }
    if (start < chunk.length) this.#keep(chunk.subarray(start));
  }

  /** Keeps at most line_length_limit + 2 bytes of a line: the tests close the session beyond the limit. */
  #keep(bytes: Buffer): void {
    const room = this.#options.lineLengthLimit + 2 - this.#lineBytes;
    if (room <= 0) return;
    const kept = bytes.subarray(0, room);
    this.#line.push(Buffer.from(kept));
    this.#lineBytes += kept.length;
  }

  #command(line: string): void {
    const text = line.replace(/^[ \t]+/, '');
    const space = text.indexOf(' ');
    const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : text.slice(space + 1);
    const firstWord = args.trim().split(/ +/, 1)[0] ?? '';
    const { profile } = this.#options;
    switch (verb) {
      case 'HELO':
      case 'EHLO': {
        if (firstWord === '') return this.#reply({ code: 501, enhanced: '', text: `Syntax: ${verb} hostname` });
        this.#helo = firstWord;
        this.#sender = undefined;
        if (verb === 'HELO') return this.#reply({ code: 250, enhanced: '', text: profile.hostname });
        this.#protocol = 'ESMTP';
        return this.#write(this.#ehloReply(), 250);
      }
      case 'STARTTLS':
        if (firstWord !== '') return this.#reply({ code: 501, enhanced: '', text: 'Syntax: EHLO hostname' }); // sic, postscreen_smtpd.c
        return this.#reply({ code: 502, enhanced: '5.5.1', text: 'Error: command not implemented' });
      case 'MAIL': {
        if (profile.heloRequired && this.#helo === undefined) return this.#reply({ code: 503, enhanced: '5.5.1', text: 'Error: send HELO/EHLO first' });
        if (this.#sender !== undefined) return this.#reply({ code: 503, enhanced: '5.5.1', text: 'Error: nested MAIL command' });
        const colon = args.indexOf(':');
        if (colon < 0) return this.#reply({ code: 501, enhanced: '5.5.4', text: 'Syntax: MAIL FROM:<address>' });
        this.#sender = extractAddress(args.slice(colon + 1));
        return this.#reply({ code: 250, enhanced: '2.1.0', text: 'Ok' });
      }
      case 'RCPT': {
        if (this.#sender === undefined) return this.#reply({ code: 503, enhanced: '5.5.1', text: 'Error: need MAIL command' });
        const colon = args.indexOf(':');
        if (colon < 0) return this.#reply({ code: 501, enhanced: '5.5.4', text: 'Syntax: RCPT TO:<address>' });
        const recipient = extractAddress(args.slice(colon + 1));
        const reply = this.#options.rcptReply();
        this.#deps.log.info(
          { event: 'NOQUEUE: reject', reason: 'postscreen', code: reply.code, from: this.#sender, to: recipient },
          `NOQUEUE: reject: RCPT from ${this.#deps.clientText}: ${formatReply(reply)}; ` +
            `from=<${this.#sender}>, to=<${recipient}>, proto=${this.#protocol}, helo=<${this.#helo ?? ''}>`,
        );
        return this.#reply(reply);
      }
      case 'DATA':
        if (firstWord !== '') return this.#reply({ code: 501, enhanced: '5.5.4', text: 'Syntax: DATA' });
        if (this.#sender === undefined) return this.#reply({ code: 503, enhanced: '5.5.1', text: 'Error: need RCPT command' });
        return this.#reply({ code: 554, enhanced: '5.5.1', text: 'Error: no valid recipients' });
      case 'RSET':
        this.#sender = undefined;
        return this.#reply(OK);
      case 'NOOP':
        return this.#reply(OK);
      case 'VRFY':
        if (firstWord === '') return this.#reply({ code: 501, enhanced: '5.5.4', text: 'Syntax: VRFY address' });
        if (profile.disableVrfy) return this.#reply({ code: 502, enhanced: '5.5.1', text: 'VRFY command is disabled' });
        return this.#reply(this.#options.rcptReply());
      case 'ETRN':
        if (profile.heloRequired && this.#helo === undefined) return this.#reply({ code: 503, enhanced: '5.5.1', text: 'Error: send HELO/EHLO first' });
        if (firstWord === '') return this.#reply({ code: 500, enhanced: '', text: 'Syntax: ETRN domain' });
        return this.#reply({ code: 458, enhanced: '', text: 'Unable to queue messages' });
      case 'QUIT': {
        this.#quit = true;
        this.#deps.metrics.smtpReplies.inc({ code: '221' });
        this.#socket.end('221 2.0.0 Bye\r\n', () => this.#socket.destroy());
        this.#deps.log.info({ event: 'DISCONNECT' }, `DISCONNECT ${this.#deps.clientText}`);
        return;
      }
      default:
        return this.#reply(NOT_RECOGNIZED);
    }
  }

  /** psc_smtpd_format_ehlo_reply(): no PIPELINING, so a client that pipelines anyway shows itself. */
  #ehloReply(): string {
    const { profile } = this.#options;
    const lines = [profile.hostname, profile.messageSizeLimit > 0 ? `SIZE ${profile.messageSizeLimit}` : 'SIZE'];
    if (!profile.disableVrfy) lines.push('VRFY');
    lines.push('ETRN', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN');
    return lines.map((line, index) => `250${index === lines.length - 1 ? ' ' : '-'}${line}\r\n`).join('');
  }

  #reply(reply: SmtpReply): void {
    this.#write(`${formatReply(reply)}\r\n`, reply.code);
  }

  #write(text: string, code: number): void {
    if (!this.#answering()) return;
    this.#deps.metrics.smtpReplies.inc({ code: String(code) });
    this.#socket.write(text);
  }
}

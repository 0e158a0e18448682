/*
 * deep-tests — postscreen's "after 220" tests, run on the live SMTP session.
 * Decides (postscreen(8) "Tests after the 220 SMTP server greeting", postscreen_smtpd.c):
 * pipelining (a command before the reply to the previous one when PIPELINING was not
 * offered — before the greeting or EHLO's reply, after HELO — or, after EHLO offered it,
 * behind a command that RFC 2920 §3.1 says must end a group: EHLO, DATA, VRFY, NOOP,
 * QUIT, STARTTLS, …); non-SMTP command (postscreen_forbidden_commands, `Label:`
 * header-like words); bare newline (a command line ended by LF alone). Tests pass at RCPT
 * TO and can still fail until the first message ends. drop: 521 and close from here;
 * enforce: failure() makes the policy stage refuse MAIL/RCPT/DATA; ignore: logged, passed
 * for the shortest TTL. Before RCPT the command count/time/length limits apply (421); in
 * postscreen's own engine (builtin-smtpd.ts, `wholeSession`) they apply to the end.
 * Mechanism: a 'data' listener attached before smtp-server's pipe (or the engine's reader)
 * sees each chunk first (nothing consumed or reordered); a wrapped socket.write shows each
 * reply written.
 * Bugs: nothing is observed after STARTTLS (no pass, no fail); leaves the replies to smtpd.
 */
import type { Socket } from 'node:net';
import type { Clock, Timer } from '../clock.js';
import type { Action } from '../config/value.js';
import { formatReply, type SmtpReply } from '../errors.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { escapeBytes } from './pregreet.js';
import type { DeepTestMonitor, ScreenTest } from '../screen-verdict.js';
import { isHeaderLine } from '../message/header-field.js';

/** The deep tests, in postscreen's order. */
export const DEEP_TESTS = ['pipelining', 'non_smtp_command', 'bare_newline'] as const;
export type DeepTest = (typeof DEEP_TESTS)[number];

/** The log event of each test's failure (postscreen(8) wording). */
const FAILURE_EVENT = { pipelining: 'COMMAND PIPELINING', non_smtp_command: 'NON-SMTP COMMAND', bare_newline: 'BARE NEWLINE' } as const satisfies Record<DeepTest, string>;

export const DEEP_TEST_REPLIES = {
  protocolDrop: { code: 521, enhanced: '5.5.1', text: 'Protocol error' },
  protocolEnforce: { code: 550, enhanced: '5.5.1', text: 'Protocol error' },
  nonSmtpDrop: { code: 521, enhanced: '5.7.0', text: 'Error: I can break rules, too. Goodbye.' },
} as const satisfies Record<string, SmtpReply>;

/** RFC 2920 §3.1: the commands that may sit anywhere in a pipelined group ('.' = end of data). */
const ANYWHERE_IN_GROUP: ReadonlySet<string> = new Set(['RSET', 'MAIL', 'SEND', 'SOML', 'SAML', 'RCPT', '.']);

export interface DeepTestSettings {
  /** The tests due in this session (enabled and not valid in the cache). */
  readonly tests: ReadonlySet<DeepTest>;
  readonly actions: Readonly<Record<DeepTest, Action>>;
  /** postscreen_*_ttl, ms: how long a pass is valid. */
  readonly ttlMs: Readonly<Record<DeepTest, number>>;
  /** Validity of a failure under action ignore, ms (postscreen: the smallest TTL). */
  readonly ignoreTtlMs: number;
  /** postscreen_forbidden_commands, upper-case. */
  readonly forbiddenCommands: readonly string[];
  /** postscreen_command_count_limit. */
  readonly commandCountLimit: number;
  /** postscreen_command_time_limit (or its stress value), ms. */
  readonly commandTimeLimitMs: number;
  /** line_length_limit, bytes. */
  readonly lineLengthLimit: number;
  /** myhostname, in the 421 replies. */
  readonly hostname: string;
  /**
   * The session is postscreen's own engine (a vetoed client, builtin-smtpd.ts): the command
   * count, time and length limits hold to the end, not only until RCPT. Default false.
   */
  readonly wholeSession?: boolean;
  /** False: no 220 greeting will be written (postscreen sends none to a pregreet talker). Default true. */
  readonly greeting?: boolean;
}

export interface DeepTestDeps {
  /** Timers (the screen stage's TimerQueue). */
  readonly clock: Clock;
  /** The session's logger (session id and client bound). */
  readonly log: Logger;
  readonly metrics: Metrics;
  /** `[ip]:port` of the client, for log texts. */
  readonly clientText: string;
  /** Stores passes (test → expiry, ms since the epoch) and removes failed tests from the verdict cache. */
  readonly record: (passes: Partial<Record<DeepTest, number>>, failed: readonly DeepTest[]) => void;
}

type Phase = 'testing' | 'passed' | 'done';

/** A running monitor; `failure()` is the DeepTestMonitor contract (screen-verdict.ts). */
export class DeepTestSession implements DeepTestMonitor {
  readonly #socket: Socket;
  readonly #settings: DeepTestSettings;
  readonly #deps: DeepTestDeps;
  #phase: Phase = 'testing';
  /** Commands (upper-case words; 'greeting' first) whose reply has not been written yet. */
  readonly #outstanding: string[];
  #pipeliningOffered = false;
  #replyOffersPipelining = false;
  #replyPartial = '';
  #line: number[] = [];
  #lineBytes = 0;
  #dataMode = false;
  #dataLine = '';
  #previous = 'CONNECT';
  #commands = 0;
  #timer: Timer | undefined;
  readonly #failed = new Map<DeepTest, Action>();
  #enforce: { readonly test: ScreenTest; readonly reply: SmtpReply } | undefined;
  /** Set when this monitor closes the connection: commands already pipelined are refused too. */
  #closing: { readonly test: ScreenTest; readonly reply: SmtpReply } | undefined;
  readonly #onData: (chunk: Buffer) => void;
  readonly #onClose: () => void;
  readonly #originalWrite: Socket['write'] | undefined;
  readonly #ownWrite: boolean;

  /**
   * Starts watching `socket`. Call it before the policy stage attaches its own reader
   * (the handover), so that every chunk is seen here first.
   */
  constructor(socket: Socket, settings: DeepTestSettings, deps: DeepTestDeps) {
    this.#socket = socket;
    this.#settings = settings;
    this.#deps = deps;
    this.#outstanding = settings.greeting === false ? [] : ['greeting'];
    this.#onData = (chunk) => this.#input(chunk);
    this.#onClose = () => this.#stop();
    socket.on('data', this.#onData);
    socket.once('close', this.#onClose);
    this.#ownWrite = Object.prototype.hasOwnProperty.call(socket, 'write');
    this.#originalWrite = socket.write;
    const original = socket.write;
    const observe = (chunk: unknown) => this.#output(chunk);
    socket.write = function (this: Socket, ...args: unknown[]): boolean {
      observe(args[0]);
      return (original as (...a: unknown[]) => boolean).apply(this, args);
    } as Socket['write'];
  }

  /** The enforce failure, or the reply of a drop or limit that is closing the connection. */
  failure(): { readonly test: ScreenTest; readonly reply: SmtpReply } | undefined {
    return this.#closing ?? this.#enforce;
  }

  /** True while the socket is still watched. */
  get watching(): boolean {
    return this.#phase !== 'done';
  }

  /** True once this monitor has closed the connection (a drop or a command limit). */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** The command count, time and length limits apply now: before RCPT, or all along in postscreen's engine. */
  #limitsApply(): boolean {
    return this.#phase === 'testing' || (this.#phase === 'passed' && this.#settings.wholeSession === true);
  }

  #stop(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#timer?.cancel();
    this.#socket.off('data', this.#onData);
    this.#socket.off('close', this.#onClose);
    if (this.#ownWrite) this.#socket.write = this.#originalWrite!;
    else delete (this.#socket as { write?: unknown }).write;
  }

  // --- replies written by the policy stage ---

  #output(chunk: unknown): void {
    if (this.#phase === 'done') return;
    const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('latin1') : '';
    this.#replyPartial += text;
    for (let newline = this.#replyPartial.indexOf('\n'), guard = 0; newline >= 0 && guard < 10_000; newline = this.#replyPartial.indexOf('\n'), guard++) {
      const line = this.#replyPartial.slice(0, newline).replace(/\r$/, '');
      this.#replyPartial = this.#replyPartial.slice(newline + 1);
      if (/^\d{3}[- ]PIPELINING$/i.test(line)) this.#replyOffersPipelining = true;
      if (line.charAt(3) !== '-') this.#replyDone(Number(line.slice(0, 3)));
      if (!this.watching) return;
    }
  }

  #replyDone(code: number): void {
    const offers = this.#replyOffersPipelining;
    this.#replyOffersPipelining = false;
    const command = this.#outstanding.shift();
    switch (command) {
      case undefined:
        return; // a reply nobody asked for (421 on timeout or shutdown)
      case 'EHLO':
        this.#pipeliningOffered = code === 250 && offers;
        break;
      case 'HELO':
        this.#pipeliningOffered = false;
        break;
      case 'DATA':
        if (code === 354) {
          this.#dataMode = true;
          this.#dataLine = '';
        }
        break;
      case 'STARTTLS':
        if (code === 220) {
          this.#stop(); // the rest is TLS records: nothing to observe
          return;
        }
        break;
      case '.':
        if (this.#phase === 'passed') this.#stop(); // the first message is in: the tests are over
        return;
      default:
        break;
    }
    if (this.#outstanding.length === 0) this.#armTimeLimit();
  }

  // --- bytes sent by the client ---

  #input(chunk: Buffer): void {
    for (let index = 0; index < chunk.length && this.#phase !== 'done'; index++) {
      const byte = chunk[index]!;
      if (this.#dataMode) {
        this.#dataByte(byte);
        continue;
      }
      if (this.#lineBytes === 0) this.#commandStarts(chunk.subarray(index));
      if (!this.watching) return;
      this.#lineBytes++;
      if (byte === 0x0a) {
        const bare = this.#line[this.#line.length - 1] !== 0x0d;
        const line = Buffer.from(bare ? this.#line : this.#line.slice(0, -1));
        this.#line = [];
        this.#lineBytes = 0;
        this.#commandLine(line, bare);
        continue;
      }
      if (this.#line.length < 512) this.#line.push(byte);
      if (this.#limitsApply() && this.#lineBytes > this.#settings.lineLengthLimit) {
        this.#limit('COMMAND LENGTH LIMIT', this.#genericReply());
        return;
      }
    }
  }

  /** Message content after 354: only the end-of-data line `.` CRLF matters (smtp-server's rule). */
  #dataByte(byte: number): void {
    if (this.#dataLine.length < 3) this.#dataLine += String.fromCharCode(byte);
    if (byte !== 0x0a) return;
    const ended = this.#dataLine === '.\r\n';
    this.#dataLine = '';
    if (ended) {
      this.#dataMode = false;
      this.#outstanding.push('.');
    }
  }

  /** The first byte of a command arrived: is a reply still owed? (pipelining test) */
  #commandStarts(rest: Buffer): void {
    if (this.#outstanding.length === 0 || !this.#due('pipelining')) return;
    const allowed = this.#pipeliningOffered && this.#outstanding.every((command) => ANYWHERE_IN_GROUP.has(command));
    if (allowed) return;
    const after = this.#outstanding[this.#outstanding.length - 1]!;
    const text = escapeBytes(rest, 100);
    this.#fail('pipelining', `COMMAND PIPELINING from ${this.#deps.clientText} after ${after.slice(0, 100)}: ${text}`, { after, text });
  }

  #commandLine(line: Buffer, bare: boolean): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const text = line.toString('latin1');
    const word = (text.trimStart().split(/\s+/, 1)[0] ?? '').toUpperCase();
    if (bare && this.#due('bare_newline')) {
      const escaped = escapeBytes(line, 100);
      this.#fail('bare_newline', `BARE NEWLINE from ${this.#deps.clientText} after ${escaped}`, { after: escaped });
      if (!this.watching) return;
    }
    if (this.#due('non_smtp_command') && (this.#settings.forbiddenCommands.includes(word) || isHeaderLine(word))) {
      const escaped = escapeBytes(line, 100);
      this.#fail('non_smtp_command', `NON-SMTP COMMAND from ${this.#deps.clientText} after ${this.#previous}: ${word.slice(0, 100)} ${escaped}`, {
        after: this.#previous,
        command: word.slice(0, 100),
      });
      if (!this.watching) return;
    }
    this.#outstanding.push(word);
    if (this.#limitsApply()) {
      this.#commands++;
      const passing = word === 'RCPT' && this.#phase === 'testing';
      if (passing) this.#pass();
      // postscreen counts every command; on the live session the first RCPT ends the limits.
      if ((!passing || this.#settings.wholeSession === true) && this.#commands > this.#settings.commandCountLimit && word !== 'QUIT') {
        this.#limit('COMMAND COUNT LIMIT', this.#genericReply());
        return;
      }
    }
    this.#previous = word;
  }

  /** True when `test` is due this session and has not failed yet. */
  #due(test: DeepTest): boolean {
    return this.#phase !== 'done' && this.#settings.tests.has(test) && !this.#failed.has(test);
  }

  /** RCPT TO reached: every due test that did not fail passes (postscreen: at RCPT TO). */
  #pass(): void {
    this.#phase = 'passed';
    const now = this.#deps.clock.now();
    const passes: Partial<Record<DeepTest, number>> = {};
    for (const test of this.#settings.tests) {
      const action = this.#failed.get(test);
      if (action === undefined) {
        passes[test] = now + this.#settings.ttlMs[test];
        this.#deps.metrics.screenVerdicts.inc({ test, result: 'pass', action: 'none' });
      } else if (action === 'ignore') {
        passes[test] = now + this.#settings.ignoreTtlMs;
      }
    }
    this.#deps.record(passes, []);
  }

  #fail(test: DeepTest, message: string, fields: Record<string, string>): void {
    const action = this.#settings.actions[test];
    this.#failed.set(test, action);
    this.#deps.metrics.screenVerdicts.inc({ test, result: 'fail', action });
    this.#deps.log.info({ event: FAILURE_EVENT[test], ...fields, action }, message);
    // A pass already stored this session is void (postscreen: expire time disabled).
    if (this.#phase === 'passed') {
      if (action === 'ignore') this.#deps.record({ [test]: this.#deps.clock.now() + this.#settings.ignoreTtlMs }, []);
      else this.#deps.record({}, [test]);
    }
    switch (action) {
      case 'drop':
        this.#close(test, test === 'non_smtp_command' ? DEEP_TEST_REPLIES.nonSmtpDrop : DEEP_TEST_REPLIES.protocolDrop, 'drop');
        return;
      case 'enforce':
        this.#enforce ??= { test, reply: DEEP_TEST_REPLIES.protocolEnforce };
        return;
      case 'ignore':
        return;
      default: {
        const never: never = action;
        throw new Error(`unknown action ${String(never)}`);
      }
    }
  }

  /** COMMAND TIME LIMIT: armed when every reply is out, until the next command line. */
  #armTimeLimit(): void {
    if (!this.#limitsApply()) return;
    this.#timer?.cancel();
    this.#timer = this.#deps.clock.setTimer(this.#settings.commandTimeLimitMs, () => {
      this.#timer = undefined;
      this.#limit('COMMAND TIME LIMIT', { code: 421, enhanced: '4.4.2', text: `${this.#settings.hostname} Error: timeout exceeded` });
    });
  }

  #genericReply(): SmtpReply {
    return { code: 421, enhanced: '', text: `${this.#settings.hostname} Service unavailable - try again later` };
  }

  #limit(event: 'COMMAND COUNT LIMIT' | 'COMMAND TIME LIMIT' | 'COMMAND LENGTH LIMIT', reply: SmtpReply): void {
    this.#deps.log.info({ event, after: this.#previous }, `${event} from ${this.#deps.clientText} after ${this.#previous}`);
    this.#close('command_limit', reply, 'limit');
  }

  /** Sends `reply` and closes the connection; smtp-server writes nothing after end(). */
  #close(test: ScreenTest, reply: SmtpReply, verdict: 'drop' | 'limit'): void {
    this.#stop();
    this.#closing = { test, reply };
    const socket = this.#socket;
    this.#deps.metrics.connections.inc({ verdict });
    this.#deps.metrics.smtpReplies.inc({ code: String(reply.code) });
    this.#deps.log.info({ event: 'DISCONNECT', reply: formatReply(reply) }, `DISCONNECT ${this.#deps.clientText}`);
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(`${formatReply(reply)}\r\n`, () => socket.destroy());
  }
}

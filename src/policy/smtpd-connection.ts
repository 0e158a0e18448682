/*
 * smtpd-connection — an smtp-server session with smtpd(8)'s protocol rules.
 *
 * Decides: the 220 at once (the screener ran the pregreet test; smtp-server's init() waits
 * 100 ms); ETRN (RFC 1985) as a command, advertised in EHLO; the bytes of every command line
 * checked first (command-line.ts); smtpd_forbidden_commands and header-like commands
 * (`221 2.7.0 Error: I can break rules, too. Goodbye.`, then the connection closes); only
 * smtpd(8)'s commands reach smtp-server, the rest
 * get smtpd's replies (below); VRFY (252 2.0.0, advertised in EHLO unless disabled); RSET
 * with an argument (501 5.5.4); MAIL/RCPT in smtpd's order (nested MAIL / need MAIL
 * first, then `501 5.5.4 Syntax: MAIL FROM:<address>`), an address without angle brackets
 * taken unless strict_rfc821_envelopes; DATA after only refused recipients (554 5.5.1);
 * smtpd_helo_required (503 5.5.1), strict_rfc821_envelopes
 * (501 5.1.7 / 5.1.3), a MAIL FROM / RCPT TO address smtp-server cannot parse (the address
 * alone; 501 5.1.7 / 5.1.3 instead of its reply without an enhanced code), then their
 * parameters (DSN's too) and the SMTPUTF8 rule (esmtp-parameters.ts, with what this
 * session's EHLO offers), disable_vrfy_command
 * (502 5.5.1); HELP and unknown commands (`500 5.5.2 Error: command not recognized`, as
 * smtpd(8), which has no HELP), STARTTLS without TLS (502 5.5.1) and AUTH (503 5.5.1);
 * smtpd(8) error counting (4xx/5xx, except a reply the policy stage excuses:
 * a 452 within smtpd_recipient_overshoot_limit; past smtpd_soft_error_limit replies wait
 * smtpd_error_sleep_time in order; at smtpd_hard_error_limit `421 4.7.0 host Error: too
 * many errors`); the DATA checks before 354; commands sent ahead where pipelining is not
 * allowed (after HELO, or behind DATA) for reject_unauth_pipelining; every reply written
 * to the client, smtp-server's own included, reported by its code (onReply, for metrics).
 * XXX: relies on smtp-server 3.21 internals: SMTPConnection's constructor, init(),
 * _setListeners(), connectionReady(), send(), _onCommand(), handler_* lookup by name,
 * _parseAddressCommand(), _dataStream, _upgrading, _socket, its hide* options, and
 * SMTPServer.connect()'s wiring; package.json pins smtp-server exactly and
 * smtpd-connection.test.ts pins these internals.
 * Leaves to others: every policy decision (smtpd.ts and the restrictions); how a reply is
 * handed to smtp-server and counted (smtp-reply-adapter.ts sendReply, countReply).
 */
import type net from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPServer } from 'smtp-server';
import type { Clock } from '../clock.js';
import type { SmtpReply } from '../errors.js';
import { commandLineFault } from './command-line.js';
import { isHeaderLine } from '../message/header-field.js';
import { postfixWording, sendReply, type ServerReply } from './smtp-reply-adapter.js';
import { mailFromFault, rcptToFault, splitAddressCommand, type EsmtpOffer } from './esmtp-parameters.js';

/** smtpd(8) protocol rules from main.cf (see the file head). */
export interface ProtocolRules {
  readonly heloRequired: boolean;
  readonly strictEnvelopes: boolean;
  readonly vrfyDisabled: boolean;
  /** smtpd_forbidden_commands, upper-case. */
  readonly forbiddenCommands: readonly string[];
  readonly softErrorLimit: number;
  readonly hardErrorLimit: number;
  /** ms */
  readonly errorSleepMs: number;
}

/** What a session needs from the policy stage. */
export interface ConnectionRules extends ProtocolRules {
  /** message_size_limit in bytes; 0 means no limit. A MAIL FROM SIZE= above it gets 552 5.3.4 (esmtp-parameters.ts). */
  readonly messageSizeLimit: number;
  readonly clock: Clock;
  /** Decides an ETRN for `domain` (already syntax-checked); resolves the reply. */
  readonly etrn: (connection: PolicyConnection, domain: string) => Promise<SmtpReply>;
  /** Checks before 354 at DATA; resolves the refusal, or undefined to go on. */
  readonly data: (connection: PolicyConnection) => Promise<SmtpReply | undefined>;
  /** Called once for every reply the session writes to the client, ours and smtp-server's own, with its code (smtp-reply-adapter.ts countReply). */
  readonly onReply: (code: number) => void;
  /** A forbidden or header-like command `line` ended the session (smtpd.ts logs it). */
  readonly onNonSmtpCommand: (line: string) => void;
}

interface SocketOptions {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** The internals of smtp-server this file uses, typed once. */
interface ServerInternals {
  readonly connections: Set<unknown>;
  readonly options: { readonly maxClients?: number; readonly hide8BITMIME?: boolean; readonly hideSMTPUTF8?: boolean; readonly hideDSN?: boolean };
  _onError(err: Error): void;
  _onClientConnect(data: unknown): void;
}

const COMMANDS_NEEDING_HELO = ['MAIL', 'RCPT', 'DATA', 'ETRN', 'BDAT'] as const;
/**
 * The commands handed to smtp-server: smtpd(8)'s (STARTTLS only when TLS is configured).
 * Any other name smtp-server would take (HELP, its WIZ/SHELL/KILL jokes, LHLO) is answered here.
 */
const SMTPD_COMMANDS: readonly string[] = ['HELO', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'ETRN', 'STARTTLS'];
/** smtpd(8)'s reply to a command it does not know, HELP included (Postfix 3.7 answers so; it has no HELP). */
const NOT_RECOGNIZED: SmtpReply = { code: 500, enhanced: '5.5.2', text: 'Error: command not recognized' };
/** smtpd(8)'s last words to a client that sent a forbidden or header-like command. */
const NON_SMTP_GOODBYE: SmtpReply = { code: 221, enhanced: '2.7.0', text: 'Error: I can break rules, too. Goodbye.' };
/** smtpd(8)'s reply to an empty or blank command line. */
const BAD_SYNTAX: SmtpReply = { code: 500, enhanced: '5.5.2', text: 'Error: bad syntax' };
/** smtpd(8)'s replies to commands it knows but this session does not offer (Postfix 3.7, seen in a real session). */
const UNAVAILABLE_COMMANDS: Readonly<Record<string, SmtpReply>> = {
  STARTTLS: { code: 502, enhanced: '5.5.1', text: 'Error: command not implemented' },
  AUTH: { code: 503, enhanced: '5.5.1', text: 'Error: authentication not enabled' },
  XCLIENT: { code: 550, enhanced: '5.7.0', text: 'Error: insufficient authorization' },
  XFORWARD: { code: 550, enhanced: '5.7.0', text: 'Error: insufficient authorization' },
};

function reply(code: number, enhanced: string, text: string): SmtpReply {
  return { code, enhanced, text };
}

export class PolicyConnection extends SMTPConnection {
  readonly rules: ConnectionRules;
  /** 4xx/5xx replies so far (smtpd(8) error count). */
  errors = 0;
  /** True once the client sent a command ahead of time where that is not allowed. */
  improperPipelining = false;
  #received = 0;
  #consumed = 0;
  #held: ServerReply[] | undefined;
  #advertiseEtrn = false;
  #standInHelo = false;
  #excused = false;

  /**
   * The next 4xx/5xx reply does not count as an smtpd(8) error: Postfix counts a `452 4.5.3
   * Error: too many recipients` only past smtpd_recipient_overshoot_limit. Call it just
   * before handing smtp-server that reply.
   */
  excuseNextError(): void {
    this.#excused = true;
  }

  /** The HELO/EHLO argument the client gave, '' when none. */
  heloName(): string {
    return this.#standInHelo || typeof this.hostNameAppearsAs !== 'string' ? '' : this.hostNameAppearsAs;
  }

  constructor(server: SMTPServer, socket: net.Socket, options: SocketOptions, rules: ConnectionRules) {
    super(server as never, socket, options);
    this.rules = rules;
    socket.on('data', (chunk: Buffer) => {
      this.#received += chunk.length;
    });
  }

  /** smtp-server's init() without the fixed 100 ms early-talker delay. */
  override init(): void {
    this._setListeners(() => {
      const internals = this._server as unknown as ServerInternals;
      if (internals.options.maxClients && internals.connections.size > internals.options.maxClients) {
        this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      this.connectionReady();
    });
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (this.#advertiseEtrn && code === 250 && Array.isArray(data)) {
      this.#advertiseEtrn = false;
      // Every reply carries an RFC 3463 code (the few Postfix sends without one aside), so
      // the keyword smtp-server hides with its own code table is ours to offer.
      data = [...data, ...(this.rules.vrfyDisabled ? [] : ['VRFY']), 'ETRN', 'ENHANCEDSTATUSCODES'];
    }
    const isError = code >= 400 && code !== 421;
    const counted = isError && !this.#excused;
    if (isError) this.#excused = false;
    if (counted) this.errors++;
    const items: ServerReply[] = [postfixWording({ code, data, context }, this.name)];
    if (counted && this.rules.hardErrorLimit > 0 && this.errors === this.rules.hardErrorLimit) {
      items.push({ code: 421, data: `4.7.0 ${this.name} Error: too many errors`, context: false });
    }
    if (this.#held) {
      this.#held.push(...items);
      return;
    }
    if (isError && this.rules.errorSleepMs > 0 && this.errors > this.rules.softErrorLimit) {
      // Tarpit (smtpd(8)): this reply and every one sent meanwhile wait, in order.
      this.#held = items;
      this.rules.clock.setTimer(this.rules.errorSleepMs, () => {
        const held = this.#held ?? [];
        this.#held = undefined;
        for (const item of held) this.#write(item);
      });
      return;
    }
    for (const item of items) this.#write(item);
  }

  /**
   * Writes one reply through smtp-server's send(), the single place where it writes to the
   * client (its own replies too: EHLO, QUIT, syntax errors, the idle 421), and reports it
   * to onReply when it reaches the socket: send() writes nothing while a TLS handshake
   * runs or once the socket is gone.
   */
  #write(item: ServerReply): void {
    const socket = this._socket;
    if (!this._upgrading && !socket.destroyed && socket.readyState === 'open') this.rules.onReply(item.code);
    super.send(item.code, item.data, item.context);
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    const line = command.toString('latin1');
    const name = (line.trim().split(/\s+/)[0] ?? '').toUpperCase();
    this.#consumed = Math.min(this.#received, this.#consumed + command.length + 2);
    const ahead = this.#received > this.#consumed && !this._dataStream;
    if (ahead && this._ready && (this.openingCommand !== 'EHLO' || name === 'DATA' || name === 'EHLO' || name === 'HELO')) {
      this.improperPipelining = true;
    }
    const done = callback ?? (() => false);
    const fault = this._ready && !this._upgrading ? commandLineFault(command) : undefined;
    if (fault) {
      sendReply(this, fault);
      setImmediate(done);
      return;
    }
    if (this._ready && !this.hostNameAppearsAs && (COMMANDS_NEEDING_HELO as readonly string[]).includes(name)) {
      if (this.rules.heloRequired || name === 'ETRN') {
        sendReply(this, reply(503, '5.5.1', 'Error: send HELO/EHLO first'));
        setImmediate(done);
        return;
      }
      // smtp-server itself insists on HELO; without smtpd_helo_required it gets a stand-in
      // that heloName() hides.
      this.hostNameAppearsAs = `[${this.remoteAddress}]`;
      this.#standInHelo = true;
    }
    // A line smtp-server reads as a command (not one read during a TLS handshake, not the
    // continuation of a command it is in the middle of).
    const isCommand = this._ready && !this._upgrading && !this._nextHandler;
    if (isCommand && (this.rules.forbiddenCommands.includes(name) || isHeaderLine(name))) {
      // smtpd(8): an HTTP proxy request or a message header sent as a command: hang up.
      this.rules.onNonSmtpCommand(line);
      sendReply(this, NON_SMTP_GOODBYE);
      this.close();
      return;
    }
    if (isCommand && !(SMTPD_COMMANDS.includes(name) && this._isSupported(name))) {
      // A command smtpd(8) does not take is an error like any other: it counts toward
      // smtpd_hard_error_limit, not toward smtp-server's own limit of 10.
      sendReply(this, name === '' ? BAD_SYNTAX : (UNAVAILABLE_COMMANDS[name] ?? NOT_RECOGNIZED));
      setImmediate(done);
      return;
    }
    if (name === 'EHLO' || name === 'HELO') this.#standInHelo = false;
    if (name === 'EHLO') this.#advertiseEtrn = true;
    super._onCommand(command, callback);
  }

  /**
   * DATA: smtp-server sends 354 right after onData starts, so the checks before 354
   * (smtpd_data_restrictions, deep tests) run here first. The bytes of the content are
   * not commands: they count as consumed when DATA ends.
   */
  override handler_DATA(command: Buffer, callback: () => void): void {
    if (!this.session.envelope?.rcptTo?.length) {
      // smtpd(8): in a transaction whose recipients were all refused, 554 5.5.1; before
      // MAIL, smtp-server's 503 (postfixWording gives it smtpd's words).
      if (this.session.envelope?.mailFrom) {
        sendReply(this, reply(554, '5.5.1', 'Error: no valid recipients'));
        callback();
        return;
      }
      super.handler_DATA(command, callback);
      return;
    }
    this.rules.data(this).then(
      (refusal) => {
        if (refusal) {
          sendReply(this, refusal);
          callback();
          return;
        }
        super.handler_DATA(command, callback);
        const stream = this._dataStream;
        if (stream) stream.once('end', () => (this.#consumed = this.#received));
      },
      () => {
        sendReply(this, reply(451, '4.3.0', 'Error: internal error'));
        callback();
      },
    );
  }

  override handler_MAIL(command: Buffer, callback: () => void): void {
    // The line is valid UTF-8: _onCommand checked the bytes.
    const line = this.#bracketed(command.toString('utf8'));
    this.#refuseOr(this.#mailRefusal(line), callback, () => super.handler_MAIL(Buffer.from(line, 'utf8'), callback));
  }

  /**
   * With strict_rfc821_envelopes = no (the default), an address without its angle brackets
   * (`MAIL FROM:user@example.org`) is taken as smtpd(8) takes it: the line gets the brackets
   * before anything parses it. Strict, or already bracketed, it is left as it is.
   */
  #bracketed(line: string): string {
    if (this.rules.strictEnvelopes || !/^(MAIL\s+FROM|RCPT\s+TO):/i.test(line)) return line;
    const colon = line.indexOf(':');
    const { path, parameters } = splitAddressCommand(line);
    if (path === '' || path.includes('<') || path.includes('>')) return line;
    return [`${line.slice(0, colon + 1)}<${path}>`, ...parameters].join(' ');
  }

  /** Answers `refusal` and ends the command, or hands it to smtp-server (`next`) when there is none. */
  #refuseOr(refusal: SmtpReply | undefined, callback: () => void, next: () => void): void {
    if (!refusal) return next();
    sendReply(this, refusal);
    callback();
  }

  /**
   * Our refusal of a MAIL command line, if any, in smtpd(8)'s order: a nested MAIL (503
   * 5.5.1), the syntax (501 5.5.4), the address, then the parameters, SIZE against
   * message_size_limit (smtp-server's own 552 has no enhanced code), the SMTPUTF8 rule.
   */
  #mailRefusal(line: string): SmtpReply | undefined {
    const badSender = reply(501, '5.1.7', 'Bad sender address syntax');
    if (this.session.envelope?.mailFrom) return reply(503, '5.5.1', 'Error: nested MAIL command');
    if (!/^MAIL\s+FROM:\s*\S/i.test(line)) return reply(501, '5.5.4', 'Syntax: MAIL FROM:<address>');
    if (this.rules.strictEnvelopes && !/^MAIL FROM:\s?<[^<>]*>(\s|$)/i.test(line)) return badSender;
    return this.#parseAddress('mail from', line) ? mailFromFault(splitAddressCommand(line), this.#offer(), this.rules.messageSizeLimit) : badSender;
  }

  override handler_RCPT(command: Buffer, callback: () => void): void {
    const line = this.#bracketed(command.toString('utf8'));
    this.#refuseOr(this.#rcptRefusal(line), callback, () => super.handler_RCPT(Buffer.from(line, 'utf8'), callback));
  }

  /**
   * Our refusal of a RCPT command line, if any, in smtpd(8)'s order: RCPT before MAIL (503
   * 5.5.1), the syntax (501 5.5.4), the address, the parameters, the SMTPUTF8 rule of this
   * transaction.
   */
  #rcptRefusal(line: string): SmtpReply | undefined {
    const badRecipient = reply(501, '5.1.3', 'Bad recipient address syntax');
    if (!this.session.envelope?.mailFrom) return reply(503, '5.5.1', 'Error: need MAIL command');
    if (!/^RCPT\s+TO:\s*\S/i.test(line)) return reply(501, '5.5.4', 'Syntax: RCPT TO:<address>');
    if (this.rules.strictEnvelopes && !/^RCPT TO:\s?<[^<>]*>(\s|$)/i.test(line)) return badRecipient;
    const parsed = this.#parseAddress('rcpt to', line);
    return parsed && parsed.address ? rcptToFault(splitAddressCommand(line), this.#offer(), this.session.envelope.smtpUtf8 === true) : badRecipient;
  }

  /**
   * smtp-server's parse of the address of the MAIL FROM / RCPT TO `line`, its parameters
   * left out: a parameter it cannot take (a control character in a decoded xtext value) is
   * esmtp-parameters.ts's to answer, after the address, as Postfix does.
   */
  #parseAddress(name: 'mail from' | 'rcpt to', line: string): ReturnType<SMTPConnection['_parseAddressCommand']> {
    return this._parseAddressCommand(name, `${line.slice(0, line.indexOf(':') + 1)}${splitAddressCommand(line).path}`);
  }

  /** What this session's EHLO reply offers (smtp-server's hide* options, as smtpd.ts sets them). */
  #offer(): EsmtpOffer {
    const options = (this._server as unknown as ServerInternals).options;
    return { eightBitMime: !options.hide8BITMIME, smtputf8: !options.hideSMTPUTF8, dsn: !options.hideDSN };
  }

  /** RSET takes no argument in smtpd(8): `501 5.5.4 Syntax: RSET`, and the transaction stays. */
  override handler_RSET(command: Buffer, callback: () => void): void {
    if (command.toString('latin1').trim().split(/\s+/).length > 1) {
      sendReply(this, reply(501, '5.5.4', 'Syntax: RSET'));
      callback();
      return;
    }
    super.handler_RSET(command, callback);
  }

  /**
   * VRFY as smtpd(8) answers it: `252 2.0.0 ARGUMENT` (the argument as the client gave it,
   * RFC 5321 §3.5.3: no definite answer), `501 5.5.4 Syntax: VRFY address [SMTPUTF8]`
   * without one, `502 5.5.1 VRFY command is disabled` with disable_vrfy_command.
   * Unlike smtpd(8), the recipient restrictions are not run on the argument.
   */
  override handler_VRFY(command: Buffer, callback: () => void): void {
    const argument = command.toString('utf8').slice('VRFY'.length).trim().replace(/\s+/g, ' ');
    if (this.rules.vrfyDisabled) sendReply(this, reply(502, '5.5.1', 'VRFY command is disabled'));
    else if (argument === '') sendReply(this, reply(501, '5.5.4', `Syntax: VRFY address${this.#offer().smtputf8 ? ' [SMTPUTF8]' : ''}`));
    else sendReply(this, reply(252, '2.0.0', argument));
    callback();
  }

  /** ETRN domain (RFC 1985 §5; smtpd(8)). */
  handler_ETRN(command: Buffer, callback: () => void): void {
    const argument = command.toString('latin1').trim().split(/\s+/).slice(1);
    if (this.session.envelope?.mailFrom) {
      sendReply(this, reply(503, '', 'Error: MAIL transaction in progress')); // Postfix 3.7: no enhanced code here
      callback();
      return;
    }
    const domain = argument[0] ?? '';
    if (argument.length !== 1 || !/^[@#]?[A-Za-z0-9_.-]+$/.test(domain) || domain.startsWith('#')) {
      sendReply(this, reply(501, '5.5.4', 'Syntax: ETRN domain'));
      callback();
      return;
    }
    this.rules.etrn(this, domain.replace(/^@/, '').replace(/\.$/, '').toLowerCase()).then(
      (answer) => {
        sendReply(this, answer);
        callback();
      },
      () => {
        sendReply(this, reply(451, '4.3.0', 'Error: internal error'));
        callback();
      },
    );
  }
}

/**
 * Starts an SMTP session on `socket` as `server.connect()` would, with a PolicyConnection:
 * registered in `server.connections`, errors and connect events wired to the server.
 */
export function startSession(server: SMTPServer, socket: net.Socket, options: SocketOptions, rules: ConnectionRules): PolicyConnection {
  const connection = new PolicyConnection(server, socket, options, rules);
  const internals = server as unknown as ServerInternals;
  internals.connections.add(connection);
  connection.on('error', (err: Error) => internals._onError(err));
  connection.on('connect', (data: unknown) => internals._onClientConnect(data));
  connection.init();
  return connection;
}

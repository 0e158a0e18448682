/*
 * sink — a mailbox server that takes every message (Postfix smtp-sink(1)).
 *
 * Decides: `mxscreen sink --listen host:port [--dir DIR]` accepts all mail (no AUTH, no
 * STARTTLS, no reverse lookup), counts it, stores each message as `DIR/<n>.eml` when a
 * directory is given, and keeps the last `keep` messages in memory when asked. Its mode
 * answers RCPT: accept, tempfail (451 4.3.0) or reject (550 5.1.1), for every recipient
 * or for one address. It offers DSN (RFC 3461) only when told to (`setOfferDsn`, for
 * tests of what a DSN-capable nexthop gets) and records the MAIL FROM and RCPT TO
 * parameters of each message as smtp-server decoded them. Tests and the benchmark use it
 * as the nexthop.
 * Leaves to others: the command line (cli.ts), restarting a downed sink on the same port
 * (test/fakes/mailbox-server.ts).
 * Bugs: the body kept in memory and on disk is the DATA content after dot-unstuffing, as
 * smtp-server gives it; the stored file has no Return-Path/Delivered-To header.
 * smtp-server greets only after a fixed 100 ms early-talker pause (latency, not throughput).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { parseListenAddress } from '../ops/listen-address.js';
import type { Logger } from '../ops/log.js';

export type SinkMode = 'accept' | 'tempfail' | 'reject';

export interface ReceivedMessage {
  /** Envelope sender, empty for `<>`. */
  readonly sender: string;
  readonly recipients: readonly string[];
  /** DATA content, dot-unstuffed, without the final `.` line. */
  readonly body: Buffer;
  /**
   * The parameters of MAIL FROM and of each RCPT TO (in `recipients` order) by upper case
   * keyword, values xtext-decoded as smtp-server gives them: `{ RET: 'HDRS', ENVID: 'x' }`;
   * a keyword without value is `true`.
   */
  readonly parameters: { readonly mail: Readonly<Record<string, string | boolean>>; readonly rcpt: readonly Readonly<Record<string, string | boolean>>[] };
}

export interface SinkOptions {
  /** `host:port` (port 0: any free port; see `Sink.port`). */
  readonly listen: string;
  /** Store every message as `<directory>/<n>.eml` (n from 1). */
  readonly directory?: string | undefined;
  /** Keep up to this many most recent messages in `received` (default 0: none). */
  readonly keep?: number;
  readonly log?: Logger | undefined;
  /**
   * Called with each accepted message (its body only when `keep` or `directory` is set).
   * The reply to the final dot waits for the promise it returns, if any (a rejection is
   * ignored): a hand-off that must finish first, or a test holding the 250.
   */
  readonly onMessage?: (message: ReceivedMessage) => void | Promise<void>;
}

const RCPT_REPLIES = {
  tempfail: { responseCode: 451, text: '4.3.0 Error: queue file write error' },
  reject: { responseCode: 550, text: '5.1.1 Recipient address rejected: User unknown' },
} as const;

export class Sink {
  readonly #server: SMTPServer;
  readonly #options: SinkOptions;
  /** The bound TCP port. */
  readonly port: number;
  readonly host: string;
  /** Most recent messages, oldest first, at most `keep` of them. */
  readonly received: ReceivedMessage[] = [];
  /** Messages accepted since start. */
  count = 0;
  /** SMTP connections accepted since start (connection reuse shows as fewer connections than messages). */
  connections = 0;
  #mode: SinkMode = 'accept';
  readonly #recipientModes = new Map<string, SinkMode>();

  private constructor(server: SMTPServer, options: SinkOptions, host: string, port: number) {
    this.#server = server;
    this.#options = options;
    this.host = host;
    this.port = port;
  }

  /**
   * Starts a sink listening on `options.listen`. Rejects with the listen error
   * (EADDRINUSE…) or MxError ERR_CONFIG for a bad address.
   */
  static async start(options: SinkOptions): Promise<Sink> {
    const address = parseListenAddress(options.listen);
    if (options.directory) await mkdir(options.directory, { recursive: true });
    let sink: Sink | undefined;
    const server = new SMTPServer({
      name: 'sink.mxscreen',
      banner: 'mxscreen sink',
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      disableReverseLookup: true,
      hideDSN: true, // smtp-server's default; setOfferDsn() changes it
      logger: false,
      closeTimeout: 100,
      onConnect: (_session, callback) => {
        sink!.connections += 1;
        callback();
      },
      onRcptTo: (rcpt, _session, callback) => sink!.#onRcptTo(rcpt, callback),
      onData: (stream, session, callback) => sink!.#onData(stream, session, callback),
    });
    server.on('error', (error) => options.log?.warn({ err: error }, 'sink: connection error'));
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.server.once('error', onError);
      server.listen(address.port, address.host, () => {
        server.server.off('error', onError);
        resolve();
      });
    });
    const bound = server.server.address();
    const port = typeof bound === 'object' && bound ? bound.port : address.port;
    sink = new Sink(server, options, address.host, port);
    return sink;
  }

  /** How RCPT is answered: for every recipient, or for `address` only when given. */
  setMode(mode: SinkMode, address?: string): void {
    if (address === undefined) this.#mode = mode;
    else this.#recipientModes.set(address.toLowerCase(), mode);
  }

  /** Whether EHLO offers DSN (RFC 3461) from the next session on; off at start. */
  setOfferDsn(offer: boolean): void {
    this.#server.options.hideDSN = !offer;
  }

  /** Stops listening and closes open sessions (421) after at most 100 ms. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #onRcptTo(rcpt: SMTPServerAddress, callback: (error?: Error | null) => void): void {
    const mode = this.#recipientModes.get(rcpt.address.toLowerCase()) ?? this.#mode;
    switch (mode) {
      case 'accept':
        return callback();
      case 'tempfail':
      case 'reject': {
        const reply = RCPT_REPLIES[mode];
        return callback(Object.assign(new Error(reply.text), { responseCode: reply.responseCode }));
      }
      default: {
        const never: never = mode;
        return callback(new Error(`unknown sink mode ${String(never)}`));
      }
    }
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void): void {
    const keep = this.#options.keep ?? 0;
    const store = keep > 0 || Boolean(this.#options.directory);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => {
      if (store) chunks.push(chunk);
    });
    stream.on('end', () => {
      this.count += 1;
      const n = this.count;
      const body = Buffer.concat(chunks);
      const mailFrom = session.envelope.mailFrom;
      const message: ReceivedMessage = {
        sender: mailFrom ? mailFrom.address : '',
        recipients: session.envelope.rcptTo.map((rcpt) => rcpt.address),
        body,
        parameters: { mail: (mailFrom && mailFrom.args) || {}, rcpt: session.envelope.rcptTo.map((rcpt) => rcpt.args || {}) },
      };
      if (keep > 0) {
        this.received.push(message);
        if (this.received.length > keep) this.received.splice(0, this.received.length - keep);
      }
      this.#options.log?.debug({ sender: message.sender, recipients: message.recipients, size: body.length, n }, 'sink: message received');
      const handedOff = Promise.resolve(this.#options.onMessage?.(message)).catch(() => undefined);
      const stored = this.#options.directory ? handedOff.then(() => writeFile(join(this.#options.directory!, `${n}.eml`), body)) : handedOff;
      stored.then(
        () => callback(null, `Ok: queued as SINK${n}`),
        (error: Error) => callback(Object.assign(new Error('4.3.0 Error: cannot store message'), { responseCode: 451, cause: error })),
      );
    });
  }
}

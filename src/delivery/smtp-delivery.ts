/*
 * smtp-delivery — one delivery attempt of one message to one nexthop (Postfix smtp(8)).
 *
 * Decides: the per-recipient outcome of an attempt: accepted → sent; a 5xx reply (to
 * MAIL, RCPT or the end of DATA) → bounced for the recipients it concerns; a 4xx reply,
 * 503, a failed or lost connection, a timeout → deferred. Targets (MX hosts and their
 * addresses) are tried in order while connecting fails; once a server has answered the
 * envelope, its answer stands. With a ConnectionCache, a connection carries several
 * messages (RSET first only when the last one was not sent; a stale cached connection is
 * replaced by a new one) and connections per nexthop are bounded. TLS
 * (smtp_tls_security_level): none; may = STARTTLS when offered, unverified, clear text
 * when it fails; encrypt = defer (4.7.4) unless STARTTLS succeeds. DSN (RFC 3461 §5.2.1):
 * to a server that offers it, MAIL FROM carries the client's RET and ENVID, and each RCPT TO
 * its own recipient's NOTIFY and ORCPT (xtext.ts), all recipients in one transaction; to a
 * server that does not, none of them, and `dsnSupported` tells the queue that success
 * notices are ours to send. Postfix texts. A verify(8) probe (SmtpSession.probe, for
 * policy/verify-probe.ts) runs on the same client: EHLO, `MAIL FROM:<>`, RCPT TO, no DATA,
 * then RSET and QUIT.
 * Leaves to others: nexthop grouping and the cache key (delivery-agent.ts), nexthop and
 * targets (transport.ts, mx-lookup.ts), retries and notices (queue/), what a probe's reply
 * means (verify-probe.ts).
 * XXX: nodemailer takes one NOTIFY/ORCPT per message; DsnConnection relies on nodemailer
 * 10 internals to give each RCPT TO its own: _sendRcpt() sends the recipients in envelope
 * order, each with the text of _getDsnRcptToArgs(), and _supportedExtensions lists the
 * EHLO keywords; and nodemailer has no envelope without DATA, so the probe sends its
 * commands with _sendCommand() and _responseActions as nodemailer's reset() does.
 * package.json pins nodemailer exactly; dsn-delivery.test.ts pins these internals.
 * Bugs: no certificate verification (Postfix "encrypt", not "verify"); no pipelining
 * of several messages on one connection.
 */
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Envelope, QueueRecipient } from '../message/envelope.js';
import type { RecipientOutcome, RecipientResult, TlsLevel } from '../delivery-request.js';
import type { DeliveryTarget } from './mx-lookup.js';
import type { CachedConnection, ConnectionCache } from './connection-cache.js';
import { encodeXtext } from './xtext.js';

// Defined with the queue → delivery seam; exported here too, as the SMTP client's own API.
export { TLS_LEVELS, type RecipientOutcome, type RecipientResult, type TlsLevel } from '../delivery-request.js';

export interface DeliveryResult {
  /** `host[ip]:port` of the server that answered (or was tried last), `none` without one. */
  readonly relay: string;
  /** The server announced DSN: it, not we, reports success (NOTIFY=SUCCESS) from here on. */
  readonly dsnSupported: boolean;
  /** One result per requested recipient, in request order. */
  readonly recipients: readonly RecipientResult[];
}

export interface DeliveryRequest {
  /** Addresses to try, in order (mx-lookup.ts). Must not be empty. */
  readonly targets: readonly DeliveryTarget[];
  /** Envelope sender; empty for the null sender `<>`. */
  readonly sender: string;
  /** Addresses, or queue recipients with their RFC 3461 NOTIFY and ORCPT. */
  readonly recipients: readonly (string | QueueRecipient)[];
  /** Body size in bytes (sent as SIZE=, RFC 1870). */
  readonly size: number;
  /** A fresh stream of the body bytes for each connection that gets to DATA. */
  readonly body: () => Readable;
  /** EHLO name: myhostname. */
  readonly helo: string;
  /** smtp_connect_timeout, ms. */
  readonly connectTimeout: number;
  /** Greeting and per-command inactivity limit, ms (Postfix smtp_helo_timeout 300s). */
  readonly commandTimeout: number;
  readonly dsn?: Envelope['dsn'];
  /** Aborting closes the connection; undelivered recipients come back deferred. */
  readonly signal?: AbortSignal;
  /** smtp_tls_security_level; default may. */
  readonly tlsLevel?: TlsLevel;
  /** Connection reuse and the per-nexthop connection limit; without it, one connection per call. */
  readonly cache?: { readonly connections: ConnectionCache<SmtpSession>; readonly key: string; readonly limit: number };
}

/** What connecting a session needs: the EHLO name, the time limits and the TLS level. */
export type SessionOptions = Pick<DeliveryRequest, 'helo' | 'connectTimeout' | 'commandTimeout' | 'tlsLevel'>;

/** The shape nodemailer gives its errors (NodemailerError). */
export interface SmtpClientError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  permanent?: boolean;
  command?: string;
  recipient?: string;
  originalCode?: string;
  rejectedErrors?: SmtpClientError[];
}

/**
 * Tries the targets in order and returns per-recipient results. Never throws: every
 * failure becomes a deferred or bounced result. Source: RFC 5321 §4.2 (reply classes),
 * §5.1 (trying MX hosts in order); RFC 3461 §4 (NOTIFY, ORCPT); Postfix smtp(8) texts.
 */
export async function deliverMessage(request: DeliveryRequest): Promise<DeliveryResult> {
  const recipients = request.recipients.map(recipientOf);
  let last: DeliveryResult = {
    relay: 'none',
    dsnSupported: false,
    recipients: recipients.map(({ address }) => ({ address, status: 'deferred', dsn: '4.4.3', text: 'no delivery target' })),
  };
  const lease = request.cache ? await request.cache.connections.acquire(request.cache.key, request.cache.limit, request.signal) : undefined;
  if (request.cache && !lease) return { ...last, recipients: last.recipients.map((r) => ({ ...r, dsn: '4.3.2', text: 'delivery stopped' })) };
  let session: SmtpSession | undefined = lease?.reuse;
  const onAbort = () => session?.close();
  request.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (session && !(await session.reset())) {
      session.close();
      session = undefined;
    }
    if (session) {
      const reused = await transact(session, recipients, request);
      if (!reused.stale) return reused.result;
      session.close(); // closed while cached: try a new connection, as if none was cached
      session = undefined;
    }
    // Bounded by the number of targets (mx-lookup.ts caps it).
    for (const target of request.targets) {
      if (request.signal?.aborted) break;
      const opened = await SmtpSession.open(target, request);
      if ('failure' in opened) {
        last = { relay: opened.relay, dsnSupported: false, recipients: recipients.map(({ address }) => ({ address, ...opened.failure })) };
        if (opened.tryNext) continue;
        break;
      }
      session = opened.session;
      return (await transact(session, recipients, request)).result;
    }
    return last;
  } finally {
    request.signal?.removeEventListener('abort', onAbort);
    if (lease) lease.release(session?.open && !request.signal?.aborted ? session : undefined);
    else session?.close();
  }
}

/** One transaction for all `recipients`, each with its own DSN parameters. */
async function transact(session: SmtpSession, recipients: readonly QueueRecipient[], request: DeliveryRequest): Promise<{ stale: boolean; result: DeliveryResult }> {
  const outcome = await session.send(recipients, request);
  return { stale: outcome.stale, result: { relay: session.relay, dsnSupported: session.dsnSupported, recipients: outcome.stale ? [] : outcome.results } };
}

function recipientOf(recipient: string | QueueRecipient): QueueRecipient {
  return typeof recipient === 'string' ? { address: recipient } : recipient;
}

function relayName(target: DeliveryTarget): string {
  return `${target.hostname}[${target.address}]:${target.port}`;
}

function serverName(target: DeliveryTarget): string {
  return `${target.hostname}[${target.address}]`;
}

function connectionClosed(): SmtpClientError {
  return Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' });
}

type OpenResult =
  | { readonly session: SmtpSession }
  | { readonly failure: Omit<RecipientResult, 'address'>; readonly relay: string; readonly tryNext: boolean };

type SendOutcome = { error: SmtpClientError } | { info: { accepted: string[]; rejectedErrors?: SmtpClientError[]; response: string } };

/** How a probe's envelope ended: the reply that decided it (to MAIL FROM when refused, else to RCPT TO), or the error that came first. */
export type ProbeOutcome = { readonly command: 'MAIL FROM' | 'RCPT TO'; readonly reply: string } | { readonly error: SmtpClientError };

/** The nodemailer 10 internals the envelope-only probe sends its commands with (see the XXX in the file head). */
interface CommandInternals {
  _sendCommand(line: string): void;
  _responseActions: ((reply: string) => void)[];
}

/** nodemailer's SMTP client with the RCPT TO parameters chosen per recipient (see the XXX in the file head). */
class DsnConnection extends SMTPConnection {
  /** The parameters (` NOTIFY=… ORCPT=…` or '') of each RCPT TO still to be sent in this transaction, in envelope order. */
  rcptParameters: string[] = [];

  /** @internal nodemailer: the parameters of the RCPT TO being sent. */
  _getDsnRcptToArgs(): string {
    return this.rcptParameters.shift() ?? '';
  }

  /** True when the server announced DSN (RFC 3461) in its EHLO reply. */
  get dsnSupported(): boolean {
    return (this as unknown as { _supportedExtensions?: string[] })._supportedExtensions?.includes('DSN') ?? false;
  }

  /**
   * `MAIL FROM:<sender>`, then (when it got 2xx) `RCPT TO:<recipient>`, and no DATA: nodemailer's
   * send() always goes on to DATA, so these are sent as its own reset() sends RSET.
   * `done` gets the command and the reply (multi-line replies joined by \n) that ended it.
   */
  sendEnvelopeOnly(sender: string, recipient: string, done: (command: 'MAIL FROM' | 'RCPT TO', reply: string) => void): void {
    const internals = this as unknown as CommandInternals;
    internals._sendCommand(`MAIL FROM:<${sender}>`);
    internals._responseActions.push((reply) => {
      if (reply.charAt(0) !== '2') return done('MAIL FROM', reply);
      internals._sendCommand(`RCPT TO:<${recipient}>`);
      internals._responseActions.push((rcptReply) => done('RCPT TO', rcptReply));
    });
  }
}

/**
 * The RCPT TO parameters of `recipient` for a server that offers DSN: NOTIFY and ORCPT
 * only when the client gave them (RFC 3461 §5.2.1), ORCPT's address as xtext (§4.2).
 */
function rcptParameters(recipient: QueueRecipient): string {
  const notify = recipient.notify?.length ? ` NOTIFY=${recipient.notify.join(',')}` : '';
  if (!recipient.orcpt) return notify;
  const semicolon = recipient.orcpt.indexOf(';');
  const [type, address] = semicolon > 0 ? [recipient.orcpt.slice(0, semicolon), recipient.orcpt.slice(semicolon + 1)] : ['rfc822', recipient.orcpt];
  return `${notify} ORCPT=${type};${encodeXtext(address)}`;
}

/** One SMTP connection to one target, able to carry several transactions. */
export class SmtpSession implements CachedConnection {
  readonly relay: string;
  readonly server: string;
  readonly #connection: DsnConnection;
  #lastError: SmtpClientError | undefined;
  #closed = false;
  /** No transaction is open: the connection is new or its last message went through. */
  #clean = true;
  #onClose: (() => void) | undefined;
  readonly #endWaiters = new Set<() => void>();

  private constructor(connection: DsnConnection, target: DeliveryTarget) {
    this.#connection = connection;
    this.relay = relayName(target);
    this.server = serverName(target);
    // A failed connect is reported only as an 'error' event (then 'end'), never to the
    // connect callback; keep the last one so 'end' can say what happened.
    connection.on('error', (error: SmtpClientError) => {
      this.#lastError = error;
    });
    connection.once('end', () => {
      this.#closed = true;
      // Let a callback's more precise error win over "connection closed".
      setImmediate(() => {
        for (const waiter of [...this.#endWaiters]) waiter();
        this.#onClose?.();
      });
    });
  }

  /**
   * Connects, greets (EHLO), and upgrades with STARTTLS as `options.tlsLevel` says (default
   * may). Never throws: on failure, nodemailer's error (with `responseCode` when the server
   * answered) and the connection closed.
   */
  static async connect(target: DeliveryTarget, request: SessionOptions): Promise<{ readonly session: SmtpSession } | { readonly error: SmtpClientError }> {
    const connection = new DsnConnection({
      host: target.address,
      port: target.port,
      name: request.helo,
      connectionTimeout: request.connectTimeout,
      greetingTimeout: request.commandTimeout,
      socketTimeout: request.commandTimeout,
      socketCloseTimeout: 1000,
      ...tlsOptions(request.tlsLevel ?? 'may'),
      tls: { rejectUnauthorized: false, ...(target.hostname !== target.address ? { servername: target.hostname } : {}) },
      logger: false,
    });
    const session = new SmtpSession(connection, target);
    const error = await session.#untilEnd<SmtpClientError | undefined>((settle) => connection.connect((e) => settle(e ?? undefined)));
    if (!error) return { session };
    connection.close();
    return { error };
  }

  /**
   * Connects as connect() does. Never throws: a failure, in Postfix smtp(8) words, says
   * whether the next target should be tried.
   */
  static async open(target: DeliveryTarget, request: SessionOptions): Promise<OpenResult> {
    const level = request.tlsLevel ?? 'may';
    const connected = await SmtpSession.connect(target, request);
    if ('session' in connected) return connected;
    const error = connected.error;
    const relay = relayName(target);
    const server = serverName(target);
    if (level === 'encrypt' && (error.code === 'ETLS' || error.command === 'STARTTLS' || /STARTTLS/.test(error.message))) {
      const text = error.responseCode ? `TLS is required, but was not offered by host ${server}` : `Cannot start TLS: handshake failure with ${server}`;
      return { failure: { status: 'deferred', dsn: '4.7.4', text }, relay, tryNext: true };
    }
    if (error.responseCode) {
      const reply = replyOutcome(error);
      return { failure: { ...reply, text: `${server} refused to talk to me: ${oneLine(error.response)}` }, relay, tryNext: true };
    }
    // Postfix logs relay=none when no server answered.
    return { failure: { status: 'deferred', dsn: '4.4.1', text: `connect to ${relay}: ${connectFailureText(error)}` }, relay: 'none', tryNext: true };
  }

  get open(): boolean {
    return !this.#closed && !this.#connection.destroyed;
  }

  /** True when the server announced DSN (RFC 3461) in its EHLO reply. */
  get dsnSupported(): boolean {
    return this.#connection.dsnSupported;
  }

  setOnClose(listener: () => void): void {
    this.#onClose = listener;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#connection.stage === 'connected' && !this.#connection.destroyed) this.#connection.quit();
    else this.#connection.close();
  }

  /**
   * Readies the connection for the next transaction: RSET (RFC 5321 §4.1.1.5) when the
   * last one did not end with the message sent; false when the connection is no longer
   * good. After a clean end nothing is sent: the next MAIL FROM finds out (stale).
   */
  async reset(): Promise<boolean> {
    if (!this.open) return false;
    if (this.#clean) return true;
    return this.#untilEnd<boolean>(
      (settle) =>
        this.#connection.reset((error) => {
          this.#clean = !error;
          settle(!error);
        }),
      () => false,
    );
  }

  /**
   * One transaction for `recipients`, each RCPT TO with its own NOTIFY and ORCPT when the
   * server offers DSN. `stale`: the connection was dead before MAIL FROM got a reply.
   */
  async send(recipients: readonly QueueRecipient[], request: DeliveryRequest): Promise<{ stale: boolean; results: RecipientResult[] }> {
    // RET and ENVID: nodemailer puts them on MAIL FROM (ENVID as xtext) when the server offers DSN.
    const dsn = {
      ...(request.dsn?.envid ? { envid: request.dsn.envid } : {}),
      ...(request.dsn?.ret ? { ret: request.dsn.ret } : {}),
    };
    this.#connection.rcptParameters = this.dsnSupported ? recipients.map(rcptParameters) : [];
    // XXX: nodemailer records RCPT rejections on the envelope object it is given
    // (SMTPConnectionEnvelope.rejectedErrors); read them from there when the end of DATA
    // fails, since that error does not carry them.
    const envelope: Record<string, unknown> = {
      from: request.sender,
      to: recipients.map((r) => r.address),
      size: request.size,
      use8BitMime: true,
      ...(Object.keys(dsn).length ? { dsn } : {}),
    };
    const outcome = await this.#untilEnd<SendOutcome>(
      (settle) => this.#connection.send(envelope, request.body(), (error, info) => settle(error ? { error } : { info: info! })),
      () => ({ error: this.#lastError ?? connectionClosed() }),
    );
    this.#clean = 'info' in outcome;
    const server = this.server;
    const all = (status: RecipientOutcome, dsnCode: string, text: string): RecipientResult[] => recipients.map(({ address }) => ({ address, status, dsn: dsnCode, text }));
    if ('info' in outcome) {
      const rejected = byRecipient(outcome.info.rejectedErrors);
      return {
        stale: false,
        results: recipients.map(({ address }) => {
          const error = rejected.get(address);
          if (error) return replyResult(address, error, server);
          return { address, status: 'sent', dsn: enhancedCode(outcome.info.response) ?? '2.0.0', text: oneLine(outcome.info.response) };
        }),
      };
    }
    const error = outcome.error;
    const rejected = byRecipient(error.rejectedErrors ?? (envelope['rejectedErrors'] as SmtpClientError[] | undefined));
    if (error.responseCode) return { stale: false, results: recipients.map(({ address }) => replyResult(address, rejected.get(address) ?? error, server)) };
    if (error.code === 'EMESSAGE' && error.command === 'MAIL FROM') {
      return { stale: false, results: all('bounced', '5.3.4', `message size ${request.size} exceeds the limit of ${server}`) };
    }
    const stale = !error.command || error.command === 'CONN' || error.command === 'API' || error.command === 'MAIL FROM';
    const during = error.command && error.command !== 'CONN' && error.command !== 'API' ? ` while sending ${error.command}` : '';
    return { stale, results: all('deferred', '4.4.2', `lost connection with ${server}${during}: ${error.message}`) };
  }

  /**
   * A verify(8) probe on this new connection: `MAIL FROM:<>`, `RCPT TO:<recipient>`, no DATA,
   * then RSET and QUIT without waiting for their replies; the session closes. Never rejects.
   */
  async probe(recipient: string): Promise<ProbeOutcome> {
    const outcome = await this.#untilEnd<ProbeOutcome>(
      (settle) => this.#connection.sendEnvelopeOnly('', recipient, (command, reply) => settle({ command, reply })),
      () => ({ error: this.#lastError ?? connectionClosed() }),
    );
    if (this.open) this.#connection.reset(() => undefined);
    this.close();
    return outcome;
  }

  /** Runs `start`, settling with its callback's value or, if the connection ends first, `onEnd()`. */
  #untilEnd<T>(start: (settle: (value: T) => void) => void, onEnd?: () => T): Promise<T> {
    return new Promise<T>((resolve) => {
      let settled = false;
      const settle = (value: T) => {
        if (settled) return;
        settled = true;
        this.#endWaiters.delete(waiter);
        resolve(value);
      };
      const waiter = () => settle(onEnd ? onEnd() : ((this.#lastError ?? connectionClosed()) as T));
      this.#endWaiters.add(waiter);
      if (this.#closed) setImmediate(waiter);
      start(settle);
    });
  }
}

/** nodemailer options for a Postfix smtp_tls_security_level. */
function tlsOptions(level: TlsLevel): { ignoreTLS?: boolean; opportunisticTLS?: boolean; requireTLS?: boolean } {
  switch (level) {
    case 'none':
      return { ignoreTLS: true };
    case 'may':
      return { opportunisticTLS: true };
    case 'encrypt':
      return { requireTLS: true };
    default: {
      const never: never = level;
      throw new Error(`unknown TLS level ${String(never)}`);
    }
  }
}

function byRecipient(errors: readonly SmtpClientError[] | undefined): Map<string, SmtpClientError> {
  const map = new Map<string, SmtpClientError>();
  for (const error of errors ?? []) if (error.recipient) map.set(error.recipient, error);
  return map;
}

function replyResult(address: string, error: SmtpClientError, server: string): RecipientResult {
  const outcome = replyOutcome(error);
  const command = error.command === 'DATA' ? 'end of DATA' : (error.command ?? 'SMTP');
  return { address, status: outcome.status, dsn: outcome.dsn, text: `${server} said: ${oneLine(error.response)} (in reply to ${command} command)` };
}

/** 5xx (except 503, RFC 5321 §4.2.4 bad sequence) → bounced; anything else → deferred. */
function replyOutcome(error: SmtpClientError): { status: RecipientOutcome; dsn: string } {
  const code = error.responseCode ?? 451;
  const permanent = error.permanent ?? (code >= 500 && code !== 503);
  const enhanced = enhancedCode(error.response);
  if (permanent) return { status: 'bounced', dsn: enhanced?.startsWith('5.') ? enhanced : '5.0.0' };
  return { status: 'deferred', dsn: enhanced?.startsWith('4.') ? enhanced : '4.0.0' };
}

/** The RFC 3463 code after the reply code, e.g. `5.1.1` in `550 5.1.1 …`. */
function enhancedCode(reply: string | undefined): string | undefined {
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? '')?.[1];
}

function connectFailureText(error: SmtpClientError): string {
  switch (error.originalCode ?? error.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'No route to host';
    default:
      return oneLine(error.message);
  }
}

function oneLine(text: string | undefined): string {
  return (text ?? '').replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

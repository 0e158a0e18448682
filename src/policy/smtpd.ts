/*
 * smtpd — the policy stage: smtp-server sessions for sockets the screener hands over.
 *
 * Decides: how smtp-server is run (AUTH disabled, no reverse lookup, banner and SIZE from
 * smtpd_banner and message_size_limit, STARTTLS only with our own certificate, idle time
 * smtpd_timeout), the order of the RCPT checks (postscreen enforce verdict, then
 * smtpd_recipient_limit, relay control, relay_recipient_maps), the log lines of smtpd(8)
 * (`NOQUEUE: reject: RCPT from …`, `ID: client=…`, `disconnect from …`) and graceful stop.
 * Handover: accept() passes the verdict's sessionId to smtp-server as the connection id
 * (`server.connect(socket, { id })`); smtp-server makes it `session.id`, so every
 * handler finds the session's verdict in a Map keyed by that id. Nothing else ties them.
 * Leaves to others: the screening (screen/), reply formatting (smtp-reply-adapter.ts),
 * relay and recipient decisions, writing the message (cleanup.ts), the queue (queue/).
 * Bugs: a MAIL FROM SIZE= above the limit is refused by smtp-server itself with
 * `552 Error: message exceeds fixed maximum message size N` (no 5.3.4): the only way to
 * reply ourselves is to hide the number in EHLO, and we keep `SIZE N` (RFC 1870) visible.
 */
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/value.js';
import { ConfigError, formatReply, type ConfigProblem, type SmtpReply } from '../errors.js';
import type { Clock } from '../clock.js';
import { formatClient, type Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { Envelope, QueueRecipient, QueueWriter } from '../queue/envelope.js';
import type { ScreenVerdict } from '../screen/verdict.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { cleanupReply, receiveMessage, type CleanupOutcome } from './cleanup.js';
import { formatReceivedHeader, localUtcOffsetMinutes } from './received-header.js';
import { asciiAddress, parseRecipient } from './recipient-address.js';
import { checkRelayRecipient } from './recipient-check.js';
import { decideRelay, type RelayPolicy } from './relay-control.js';
import { countReply, SMTPD_SERVER_REPLY_OPTIONS, smtpServerText, toSmtpServerError } from './smtp-reply-adapter.js';

/** Everything the policy stage reads from main.cf, typed and loaded (TLS files read). */
export interface SmtpdSettings {
  /** Host part of smtpd_banner: smtp-server's `name` (greeting and EHLO reply). */
  readonly greetingHost: string;
  /** What follows `ESMTP` in smtpd_banner (empty: just `220 host ESMTP`). */
  readonly greetingText: string;
  /** myhostname, for the `by` clause of the Received: header. */
  readonly myhostname: string;
  /** mail_name, in the Received: header. */
  readonly mailName: string;
  /** message_size_limit in bytes; 0 means no limit. */
  readonly messageSizeLimit: number;
  /** smtpd_recipient_limit; 0 means no limit. */
  readonly recipientLimit: number;
  /** smtpd_timeout in ms. */
  readonly timeoutMs: number;
  /** smtpd_tls_cert_file/smtpd_tls_key_file contents; undefined hides STARTTLS. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly relay: RelayPolicy;
  /** relay_recipient_maps; empty accepts every recipient of a relay domain. */
  readonly relayRecipientMaps: readonly LookupTable[];
}

export interface SmtpdDeps {
  readonly queue: QueueWriter;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called with the queue id after each message is durably queued (and before the 250 goes out). */
  readonly onQueued?: (id: string) => void;
}

function problemAt(config: Config, name: Parameters<Config['where']>[0], message: string): ConfigProblem {
  const where = config.where(name);
  const colon = where.lastIndexOf(':');
  const line = colon > 0 ? Number(where.slice(colon + 1)) : NaN;
  if (Number.isInteger(line)) return { file: where.slice(0, colon), line, message: `${name}: ${message}` };
  return { file: config.file, line: 0, message: `${name}: ${message}` };
}

/**
 * Reads the smtpd(8) parameters from `config`: smtpd_banner (`host ESMTP text`),
 * myhostname, mail_name, message_size_limit (bytes), smtpd_recipient_limit,
 * smtpd_timeout (ms), smtpd_tls_cert_file/smtpd_tls_key_file (read now, relative to the
 * config directory), mynetworks, relay_domains, parent_domain_matches_subdomains,
 * relay_recipient_maps. Throws ConfigError (file:line of the setting) for a banner not of
 * the form `host ESMTP …`, or TLS files that cannot be read or do not form a key pair.
 */
export function smtpdSettingsFromConfig(config: Config): SmtpdSettings {
  const problems: ConfigProblem[] = [];
  const banner = config.get('smtpd_banner').trim();
  const bannerMatch = /^(\S+)\s+ESMTP(?:\s+(.*))?$/.exec(banner);
  if (!bannerMatch) problems.push(problemAt(config, 'smtpd_banner', 'must begin with a host name followed by ESMTP'));

  let tlsFiles: SmtpdSettings['tls'];
  const certFile = config.get('smtpd_tls_cert_file').trim();
  const keyFile = config.get('smtpd_tls_key_file').trim();
  if (certFile !== '' && keyFile !== '') {
    try {
      const cert = readFileSync(config.resolvePath(certFile));
      const key = readFileSync(config.resolvePath(keyFile));
      tls.createSecureContext({ cert, key }); // a mismatched pair fails here, at start
      tlsFiles = { cert, key };
    } catch (error) {
      problems.push(problemAt(config, 'smtpd_tls_cert_file', `cannot use ${certFile} and ${keyFile}: ${(error as Error).message}`));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    greetingHost: bannerMatch![1]!,
    greetingText: (bannerMatch![2] ?? '').trim(),
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name'),
    messageSizeLimit: config.get('message_size_limit'),
    recipientLimit: config.get('smtpd_recipient_limit'),
    timeoutMs: config.get('smtpd_timeout'),
    tls: tlsFiles,
    relay: {
      mynetworks: config.get('mynetworks'),
      relayDomains: config.get('relay_domains'),
      relayDomainsMatchSubdomains: config.get('parent_domain_matches_subdomains').includes('relay_domains'),
    },
    relayRecipientMaps: config.get('relay_recipient_maps'),
  };
}

/** One smtp-server per settings generation: a reload builds a new one for new sessions. */
interface Generation {
  readonly settings: SmtpdSettings;
  readonly server: SMTPServer;
  sessions: number;
}

interface SessionState {
  readonly key: string;
  readonly verdict: ScreenVerdict;
  readonly socket: net.Socket;
  readonly generation: Generation;
  /** `[ip]:port` */
  readonly client: string;
  readonly log: Logger;
  readonly counts: { mail: number; rcpt: number; rcptAccepted: number; data: number; queued: number };
}

type RcptDecision =
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reply: SmtpReply; readonly reason: 'postscreen' | 'recipient-limit' | 'relay' | 'recipient' };

/** `421 4.3.2 Service shutting down` (Postfix smtpd on stop). */
const SHUTTING_DOWN: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'Service shutting down' };
const LOST_SESSION: SmtpReply = { code: 421, enhanced: '4.3.0', text: 'Error: session state lost' };
const TOO_MANY_RECIPIENTS: SmtpReply = { code: 452, enhanced: '4.5.3', text: 'Error: too many recipients' };
/** Used when an enforce verdict comes without its reply (should not happen). */
const ENFORCE_FALLBACK: SmtpReply = { code: 550, enhanced: '5.7.1', text: 'Service unavailable' };
/** After close() has waited and sent 421, how long the clients get to hang up before their sockets are destroyed. */
const HANGUP_GRACE_MS = 500;

/**
 * The policy stage. One instance per process; `accept()` takes screened sockets.
 * Source: Postfix smtpd(8) and cleanup(8); postscreen(8) for the enforce verdict.
 */
export class Smtpd {
  readonly #deps: SmtpdDeps;
  #current: Generation;
  readonly #generations = new Set<Generation>();
  readonly #sessions = new Map<string, SessionState>();
  #sequence = 0;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(settings: SmtpdSettings, deps: SmtpdDeps) {
    this.#deps = deps;
    this.#current = this.#createGeneration(settings);
  }

  /** Open SMTP sessions (handed over and not yet closed). */
  get activeSessions(): number {
    return this.#sessions.size;
  }

  /**
   * Takes a screened socket (paused, no listeners of the screener left) and runs an SMTP
   * session on it with `verdict` applied. After close() has begun the client gets
   * `421 4.3.2 Service shutting down` and the socket is closed. Never throws.
   */
  accept(socket: net.Socket, verdict: ScreenVerdict): void {
    const client = formatClient(verdict.client.address, verdict.client.port);
    if (socket.destroyed) return;
    if (this.#closing) {
      countReply(this.#deps.metrics, SHUTTING_DOWN.code);
      socket.on('error', () => socket.destroy());
      socket.end(`${formatReply(SHUTTING_DOWN)}\r\n`);
      this.#deps.clock.setTimer(HANGUP_GRACE_MS, () => socket.destroy());
      return;
    }
    // The verdict's id becomes smtp-server's session.id; keep it unique in this process.
    const key = this.#sessions.has(verdict.sessionId) ? `${verdict.sessionId}.${++this.#sequence}` : verdict.sessionId;
    const generation = this.#current;
    const state: SessionState = {
      key,
      verdict,
      socket,
      generation,
      client,
      log: this.#deps.log.child({ session: verdict.sessionId, client }),
      counts: { mail: 0, rcpt: 0, rcptAccepted: 0, data: 0, queued: 0 },
    };
    this.#sessions.set(key, state);
    generation.sessions++;
    this.#deps.metrics.activeConnections.inc({ stage: 'smtpd' });
    // XXX: smtp-server waits 100 ms before its 220 (its own early-talker check, not
    // configurable); the screener has already run the real pregreet test.
    generation.server.connect(socket, {
      id: key,
      remoteAddress: verdict.client.address,
      remotePort: verdict.client.port,
      localAddress: verdict.local.address,
      localPort: verdict.local.port,
    });
  }

  /** Reload: sessions that start from now on use `settings`; open sessions keep theirs. */
  setSettings(settings: SmtpdSettings): void {
    const previous = this.#current;
    this.#current = this.#createGeneration(settings);
    this.#retireIfIdle(previous);
  }

  /**
   * Graceful stop: refuses new handovers at once, lets open sessions go on for up to
   * `timeoutMs` ms, then sends `421 4.3.2 Service shutting down` to those still open and
   * closes them (a message in DATA is aborted; one already committed stays queued).
   * Resolves when every session is gone. Idempotent.
   */
  close(timeoutMs: number): Promise<void> {
    this.#closing ??= this.#close(timeoutMs);
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    await this.#waitForSessions(timeoutMs);
    for (const state of this.#sessions.values()) {
      for (const connection of state.generation.server.connections) {
        if (connection.id !== state.key) continue;
        countReply(this.#deps.metrics, SHUTTING_DOWN.code);
        connection.send(SHUTTING_DOWN.code, smtpServerText(SHUTTING_DOWN));
        connection.close();
      }
    }
    await this.#waitForSessions(HANGUP_GRACE_MS);
    for (const state of this.#sessions.values()) state.socket.destroy();
    await this.#waitForSessions(HANGUP_GRACE_MS);
    await Promise.all([...this.#generations].map((generation) => this.#closeServer(generation)));
  }

  #waitForSessions(timeoutMs: number): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#deps.clock.setTimer(timeoutMs, () => finish());
      const finish = (): void => {
        timer.cancel();
        this.#drained = undefined;
        resolve();
      };
      this.#drained = finish;
    });
  }

  #closeServer(generation: Generation): Promise<void> {
    this.#generations.delete(generation);
    // The server never listened (sockets come from the screener); close() only clears state.
    return new Promise((resolve) => generation.server.close(() => resolve()));
  }

  #retireIfIdle(generation: Generation): void {
    if (generation !== this.#current && generation.sessions === 0) void this.#closeServer(generation);
  }

  #createGeneration(settings: SmtpdSettings): Generation {
    const log = this.#deps.log;
    const bridge = {
      // smtp-server's own log lines (bunyan style) go to pino at debug, whatever their level.
      trace: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
      debug: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
      info: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
      warn: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
      error: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
      fatal: (data: object, message?: string, ...args: unknown[]) => log.debug({ component: 'smtp-server', ...data }, message, ...args),
    };
    const tlsOptions: Partial<SMTPServerOptions> = settings.tls
      ? { key: settings.tls.key, cert: settings.tls.cert }
      : // Without our own certificate STARTTLS is neither offered nor accepted, so
        // smtp-server's built-in (published) key is never used.
        { hideSTARTTLS: true };
    const options: SMTPServerOptions = {
      ...SMTPD_SERVER_REPLY_OPTIONS,
      ...tlsOptions,
      name: settings.greetingHost,
      banner: settings.greetingText || undefined,
      heloResponse: '%s', // `250-host`, as Postfix answers EHLO
      authOptional: true,
      disabledCommands: settings.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      size: settings.messageSizeLimit > 0 ? settings.messageSizeLimit : undefined,
      // XXX: DSN is not advertised until delivery honours NOTIFY/RET; envelopeOf() keeps
      // the parameters as soon as it is.
      hideDSN: true,
      socketTimeout: settings.timeoutMs,
      logger: log.isLevelEnabled('debug') ? bridge : false,
      onConnect: (session, callback) => this.#onConnect(session, callback),
      onMailFrom: (address, session, callback) => this.#onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => this.#onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
      onClose: (session) => this.#onClose(session),
    };
    const server = new SMTPServer(options);
    // A connection error without a listener would be thrown by EventEmitter.
    server.on('error', (err) => log.debug({ component: 'smtp-server', err }, 'smtp-server error'));
    const generation: Generation = { settings, server, sessions: 0 };
    this.#generations.add(generation);
    return generation;
  }

  #onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessions.get(session.id);
    if (!state) {
      countReply(this.#deps.metrics, LOST_SESSION.code);
      callback(toSmtpServerError(LOST_SESSION));
      return;
    }
    if (this.#closing) {
      countReply(this.#deps.metrics, SHUTTING_DOWN.code);
      callback(toSmtpServerError(SHUTTING_DOWN));
      return;
    }
    countReply(this.#deps.metrics, 220);
    callback();
  }

  #onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessions.get(session.id);
    if (!state) {
      callback(toSmtpServerError(LOST_SESSION));
      return;
    }
    state.counts.mail++;
    countReply(this.#deps.metrics, 250);
    callback();
  }

  #decideRecipient(state: SessionState, address: SMTPServerAddress, session: SMTPServerSession): RcptDecision {
    const verdict = state.verdict;
    switch (verdict.outcome) {
      case 'enforce':
        // postscreen(8) enforce: the session goes on, every RCPT gets the test's reply.
        return { kind: 'reject', reply: verdict.enforce?.reply ?? ENFORCE_FALLBACK, reason: 'postscreen' };
      case 'allowlisted':
      case 'pass-new':
      case 'pass-old':
      case 'ignored-failure':
        break;
      default: {
        const never: never = verdict.outcome;
        return never;
      }
    }
    const settings = state.generation.settings;
    const recipients = session.envelope.rcptTo;
    const repeated = recipients.some((rcpt) => rcpt.address.toLowerCase() === address.address.toLowerCase());
    if (settings.recipientLimit > 0 && recipients.length >= settings.recipientLimit && !repeated) {
      return { kind: 'reject', reply: TOO_MANY_RECIPIENTS, reason: 'recipient-limit' };
    }
    const recipient = parseRecipient(address.address);
    const relay = decideRelay(settings.relay, state.verdict.client.address, recipient);
    switch (relay.kind) {
      case 'reject':
        return { kind: 'reject', reply: relay.reply, reason: 'relay' };
      case 'permit-mynetworks':
        return { kind: 'accept' };
      case 'relay-domain': {
        const check = checkRelayRecipient(settings.relayRecipientMaps, recipient);
        switch (check.kind) {
          case 'accept':
            return { kind: 'accept' };
          case 'reject':
            return { kind: 'reject', reply: check.reply, reason: 'recipient' };
          default: {
            const never: never = check;
            return never;
          }
        }
      }
      default: {
        const never: never = relay;
        return never;
      }
    }
  }

  #onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessions.get(session.id);
    if (!state) {
      callback(toSmtpServerError(LOST_SESSION));
      return;
    }
    state.counts.rcpt++;
    const decision = this.#decideRecipient(state, address, session);
    switch (decision.kind) {
      case 'accept':
        state.counts.rcptAccepted++;
        countReply(this.#deps.metrics, 250);
        callback();
        return;
      case 'reject': {
        const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        state.log.info(
          { event: 'NOQUEUE: reject', reason: decision.reason, code: decision.reply.code, from: sender, to: address.address },
          `NOQUEUE: reject: RCPT from ${state.client}: ${formatReply(decision.reply)}; ` +
            `from=<${sender}> to=<${address.address}> proto=${session.transmissionType} helo=<${heloOf(session)}>`,
        );
        countReply(this.#deps.metrics, decision.reply.code);
        callback(toSmtpServerError(decision.reply));
        return;
      }
      default: {
        const never: never = decision;
        return never;
      }
    }
  }

  #envelopeOf(state: SessionState, session: SMTPServerSession, arrivalTime: number): Envelope {
    const envelope = session.envelope;
    const keepUnicode = envelope.smtpUtf8 === true;
    const address = (value: string): string => (keepUnicode ? value : asciiAddress(value));
    const recipients: QueueRecipient[] = envelope.rcptTo.map((rcpt) => ({
      address: address(rcpt.address),
      ...(rcpt.dsn?.orcpt !== undefined ? { orcpt: rcpt.dsn.orcpt } : {}),
      ...(rcpt.dsn?.notify !== undefined ? { notify: rcpt.dsn.notify } : {}),
    }));
    const dsn = envelope.dsn;
    const ret = dsn?.ret === 'FULL' || dsn?.ret === 'HDRS' ? dsn.ret : undefined;
    const helo = heloOf(session);
    return {
      sender: envelope.mailFrom ? address(envelope.mailFrom.address) : '',
      recipients,
      arrivalTime,
      client: { address: state.verdict.client.address, port: state.verdict.client.port, ...(helo !== '' ? { helo } : {}) },
      sessionId: state.verdict.sessionId,
      ...(dsn && (dsn.envid || ret) ? { dsn: { ...(dsn.envid ? { envid: dsn.envid } : {}), ...(ret ? { ret } : {}) } } : {}),
    };
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const state = this.#sessions.get(session.id);
    if (!state) {
      callback(toSmtpServerError(LOST_SESSION));
      return;
    }
    countReply(this.#deps.metrics, 354); // smtp-server sends 354 right after this handler starts
    state.counts.data++;
    const settings = state.generation.settings;
    const arrivalTime = this.#deps.clock.now();
    const envelope = this.#envelopeOf(state, session, arrivalTime);
    const helo = heloOf(session);
    void receiveMessage(stream, {
      queue: this.#deps.queue,
      envelope,
      sizeLimit: settings.messageSizeLimit,
      receivedHeader: (queueId) =>
        formatReceivedHeader({
          ...(helo !== '' ? { helo } : {}),
          clientAddress: state.verdict.client.address,
          myhostname: settings.myhostname,
          mailName: settings.mailName,
          esmtp: session.openingCommand === 'EHLO',
          tls: session.secure,
          queueId,
          recipients: envelope.recipients.map((rcpt) => rcpt.address),
          time: arrivalTime,
          utcOffsetMinutes: localUtcOffsetMinutes(arrivalTime),
        }),
    })
      .catch((error: unknown): CleanupOutcome => ({ kind: 'queue-error', error, noSpace: false })) // a bug, not I/O
      .then((outcome) => {
        this.#logOutcome(state, session, envelope, outcome);
        const reply = cleanupReply(outcome);
        if (outcome.kind !== 'client-gone') countReply(this.#deps.metrics, reply.code);
        if (outcome.kind === 'queued') callback(null, smtpServerText(reply));
        else callback(toSmtpServerError(reply));
      });
  }

  #logOutcome(state: SessionState, session: SMTPServerSession, envelope: Envelope, outcome: CleanupOutcome): void {
    const from = envelope.sender;
    switch (outcome.kind) {
      case 'queued': {
        state.counts.queued++;
        // messagesQueued and messageBytes are counted by the queue at commit() (spool.ts),
        // the one place every QueueWriter path goes through; counting here too would double them.
        state.log.info(
          { event: 'queued', queueId: outcome.id, from, nrcpt: envelope.recipients.length, size: outcome.size },
          `${outcome.id}: client=${state.client}, from=<${from}>, nrcpt=${envelope.recipients.length}, size=${outcome.size}`,
        );
        try {
          this.#deps.onQueued?.(outcome.id);
        } catch (err) {
          state.log.error({ event: 'queue error', queueId: outcome.id, err }, `${outcome.id}: onQueued failed`);
        }
        return;
      }
      case 'too-big': {
        const reply = cleanupReply(outcome);
        state.log.info(
          { event: 'reject', code: reply.code, from, size: outcome.bodyBytes, limit: outcome.limit },
          `reject: END-OF-MESSAGE from ${state.client}: ${formatReply(reply)}; ` +
            `from=<${from}> proto=${session.transmissionType} helo=<${heloOf(session)}>`,
        );
        return;
      }
      case 'queue-error':
        state.log.error(
          { event: 'queue error', err: outcome.error, noSpace: outcome.noSpace },
          `NOQUEUE: queue file write error from ${state.client}: ${formatReply(cleanupReply(outcome))}`,
        );
        return;
      case 'client-gone':
        state.log.info({ event: 'HANGUP' }, `lost connection after DATA from ${state.client}`);
        return;
      default: {
        const never: never = outcome;
        return never;
      }
    }
  }

  #onClose(session: SMTPServerSession): void {
    const state = this.#sessions.get(session.id);
    if (!state) return;
    this.#sessions.delete(session.id);
    state.generation.sessions--;
    this.#retireIfIdle(state.generation);
    this.#deps.metrics.activeConnections.dec({ stage: 'smtpd' });
    const c = state.counts;
    state.log.info(
      { event: 'DISCONNECT', ...c },
      `disconnect from ${state.client} mail=${c.mail} rcpt=${c.rcptAccepted}/${c.rcpt} data=${c.queued}/${c.data}`,
    );
    if (this.#sessions.size === 0) this.#drained?.();
  }
}

/** The HELO/EHLO argument, or '' before one was given (smtp-server keeps `false` then). */
function heloOf(session: SMTPServerSession): string {
  return typeof session.hostNameAppearsAs === 'string' ? session.hostNameAppearsAs : '';
}

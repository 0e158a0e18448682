/*
 * smtpd — the policy stage: smtp-server sessions for sockets the screener hands over.
 *
 * Decides: how smtp-server is run (no AUTH, no reverse lookup, banner and SIZE, STARTTLS
 * only with our certificate, DSN offered, no REQUIRETLS, smtpd_timeout), one server
 * per settings generation (a reload serves new sessions, open ones keep theirs), the
 * registry of open sessions (the verdict's sessionId is the connection id, so handlers find
 * the session), MAIL FROM (deep tests, queue_minfree), the per-transaction RCPT counts
 * (every accepted RCPT, a repeated one too; the 452s past smtpd_recipient_limit, of which
 * only those past smtpd_recipient_overshoot_limit count as errors), DATA restrictions
 * before 354, ETRN (smtpd_etrn_restrictions, then fast_flush_domains), the `disconnect
 * from …` line and graceful stop (421 4.3.2).
 * Leaves to others: settings (smtpd-settings.ts), session state (smtpd-session.ts), the RCPT
 * decision (rcpt-decision.ts), NOQUEUE lines (noqueue-reject.ts), the DATA envelope and
 * outcome (end-of-message.ts), writing the message (cleanup.ts), screening, the queue.
 * Also decides: the verify(8) cache outlives reloads and takes each reload's verify settings.
 */
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { formatReply, replyText, type SmtpReply } from '../errors.js';
import { DnsError, type DnsResolver } from '../dns/resolver.js';
import { matchDomain } from '../tables/match-list.js';
import type { Clock } from '../clock.js';
import { formatClient, type Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { QueueWriter } from '../queue/envelope.js';
import type { ScreenVerdict } from '../screen-verdict.js';
import { cleanupReply, receiveMessage, type CleanupOutcome } from './cleanup.js';
import { countReply, sendReply, SMTPD_SERVER_REPLY_OPTIONS, toSmtpServerError } from './smtp-reply-adapter.js';
import type { RestrictionEnvironment } from './restriction.js';
import { evaluateRestrictions } from './restriction-list.js';
import { createPolicyServiceClient, parsePolicyTarget } from './policy-service.js';
import type { PolicyServiceClient } from './restriction-services.js';
import { createSpfVerifier } from './spf-check.js';
import { RecipientVerifier } from './address-verify.js';
import { probeNexthop, probeRecipient } from './verify-probe.js';
import { startSession, type PolicyConnection } from './smtpd-connection.js';
import type { SmtpdSettings } from './smtpd-settings.js';
import { heloName, restrictionRequest, restrictionSession, type Generation, type SessionState } from './smtpd-session.js';
import { decideRecipient, type RcptDecision } from './rcpt-decision.js';
import { hasContentChecks, queueEnvelope, receivedHeaderFor, reportCleanupOutcome } from './end-of-message.js';
import { deepTestFailure, logNoqueueReject, noqueueRejectText } from './noqueue-reject.js';

export interface SmtpdDeps {
  readonly queue: QueueWriter;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called with the queue id after each message is durably queued (and before the 250 goes out). */
  readonly onQueued?: (id: string) => void;
  /** DNS for the restrictions (client names, unknown domains, RBLs and their TXT, SPF); absent: lookups fail as temporary. */
  readonly resolver?: DnsResolver;
  /** ETRN accepted for `domain`: start delivery of its deferred mail (QueueManager.flush). */
  readonly etrn?: (domain: string) => void;
  /** Where the address verification cache is saved (queue_directory); absent: memory only. */
  readonly verifyCacheDirectory?: string;
}

/** `421 4.3.2 Service shutting down` (Postfix smtpd on stop). */
const SHUTTING_DOWN: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'Service shutting down' };
const LOST_SESSION: SmtpReply = { code: 421, enhanced: '4.3.0', text: 'Error: session state lost' };
/** Postfix smtpd's reply when the queue file system is below queue_minfree. */
const INSUFFICIENT_STORAGE: SmtpReply = { code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' };
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
      connection: undefined,
      names: undefined,
      transaction: { prepends: [], spf: undefined, recipients: 0, overshoot: 0 },
    };
    this.#sessions.set(key, state);
    generation.sessions++;
    this.#deps.metrics.activeConnections.inc({ stage: 'smtpd' });
    const protocol = generation.settings.protocol;
    // The session starts with the 220 at once (smtpd-connection.ts: no 100 ms early-talker
    // delay; the screener has already run the real pregreet test).
    state.connection = startSession(
      generation.server,
      socket,
      {
        id: key,
        remoteAddress: verdict.client.address,
        remotePort: verdict.client.port,
        localAddress: verdict.local.address,
        localPort: verdict.local.port,
      },
      {
        ...protocol,
        messageSizeLimit: generation.settings.messageSizeLimit,
        clock: this.#deps.clock,
        onReply: (code) => countReply(this.#deps.metrics, code),
        onNonSmtpCommand: (line) =>
          state.log.warn({ event: 'non-SMTP command', command: line.slice(0, 100) }, `non-SMTP command from ${verdict.client.address}: ${line.slice(0, 100)}`),
        etrn: (connection, domain) => this.#onEtrn(state, connection, domain),
        data: (connection) => this.#beforeData(state, connection),
      },
    );
  }

  /** Reload: sessions that start from now on use `settings`; open sessions keep theirs. */
  setSettings(settings: SmtpdSettings): void {
    const previous = this.#current;
    this.#current = this.#createGeneration(settings);
    this.#verifier?.setSettings(settings.verify);
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
        sendReply(connection, SHUTTING_DOWN);
        connection.close();
      }
    }
    await this.#waitForSessions(HANGUP_GRACE_MS);
    for (const state of this.#sessions.values()) state.socket.destroy();
    await this.#waitForSessions(HANGUP_GRACE_MS);
    await Promise.all([...this.#generations].map((generation) => this.#closeServer(generation)));
    await this.#verifier?.flushed();
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
    for (const client of generation.policyClients.values()) client.close();
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
      // DSN (RFC 3461): esmtp-parameters.ts checks RET/ENVID/NOTIFY/ORCPT, queueEnvelope()
      // (end-of-message.ts) keeps them, delivery passes them on and our notices honour them.
      // smtp-server hides DSN unless told otherwise. REQUIRETLS (RFC 8689) is not offered,
      // as delivery does not honour it: it gets 555 5.5.4 (esmtp-parameters.ts).
      hideDSN: false,
      hideREQUIRETLS: true,
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
    const policyClients = new Map<string, PolicyServiceClient>();
    const resolver = this.#deps.resolver ?? unavailableResolver;
    const env: RestrictionEnvironment = {
      relay: settings.relay,
      relayRecipientMaps: settings.relayRecipientMaps,
      accessMapsMatchSubdomains: settings.accessMapsMatchSubdomains,
      rblReplyMaps: settings.rblReplyMaps,
      virtualAliasMaps: settings.virtualAliasMaps,
      classes: settings.classes,
      table: settings.table,
      resolver,
      log,
      policyService: (target) => {
        let client = policyClients.get(target);
        if (client === undefined) {
          const parsed = parsePolicyTarget(target).target ?? { kind: 'unix' as const, path: target };
          client = createPolicyServiceClient(parsed, { ...settings.policyService, clock: this.#deps.clock, log });
          policyClients.set(target, client);
        }
        return client;
      },
      spf: createSpfVerifier(resolver, settings.myhostname),
      verifier: this.#verifierFor(settings),
    };
    const generation: Generation = { settings, server, env, policyClients, sessions: 0 };
    this.#generations.add(generation);
    return generation;
  }

  /**
   * The state of smtp-server's `session`, or undefined after answering `callback` with
   * LOST_SESSION (a session smtp-server still runs after ours was dropped: a bug, 421).
   */
  #sessionOf(session: SMTPServerSession, callback: (err?: Error | null) => void): SessionState | undefined {
    const state = this.#sessions.get(session.id);
    if (!state) callback(toSmtpServerError(LOST_SESSION));
    return state;
  }

  #onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessionOf(session, callback);
    if (!state) return;
    if (this.#closing) {
      callback(toSmtpServerError(SHUTTING_DOWN));
      return;
    }
    callback();
  }

  /** The verify(8) cache outlives reloads (setSettings hands it the new verify settings). */
  #verifier: RecipientVerifier | undefined;

  #verifierFor(settings: SmtpdSettings): RecipientVerifier {
    this.#verifier ??= new RecipientVerifier(settings.verify, {
      probe: (recipient) => {
        // The settings in force when the probe starts (this.#current is unset while the first generation is built).
        const current = this.#current?.settings ?? settings;
        return probeRecipient(recipient, {
          transport: current.transport,
          resolver: this.#deps.resolver ?? unavailableResolver,
          helo: current.myhostname,
          timeoutMs: current.timeoutMs,
        });
      },
      nexthopOf: (recipient) => probeNexthop(recipient, this.#current?.settings.transport ?? settings.transport),
      clock: this.#deps.clock,
      log: this.#deps.log,
      countProbe: (nexthop, result) => this.#deps.metrics.addressVerifyProbes.inc({ nexthop, result }),
      ...(this.#deps.verifyCacheDirectory !== undefined ? { directory: this.#deps.verifyCacheDirectory } : {}),
    });
    return this.#verifier;
  }

  #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessionOf(session, callback);
    if (!state) return;
    state.counts.mail++;
    const deep = deepTestFailure(state, session, { name: 'MAIL', sender: address.address });
    if (deep) {
      callback(toSmtpServerError(deep));
      return;
    }
    const accept = () => {
      state.transaction = { prepends: [], spf: undefined, recipients: 0, overshoot: 0 };
      callback();
    };
    const canAccept = this.#deps.queue.canAccept?.bind(this.#deps.queue);
    if (!canAccept) {
      accept();
      return;
    }
    // queue_minfree (postconf(5)): refuse at MAIL FROM, before the client sends a byte of
    // the message, when the queue file system is short of space; SIZE= tells how much.
    const declaredSize = Number(address.args && typeof address.args === 'object' ? (address.args as Record<string, unknown>).SIZE : 0) || 0;
    canAccept(declaredSize).then(
      (ok) => {
        if (ok) {
          accept();
          return;
        }
        state.log.warn(
          { event: 'NOQUEUE: reject', reason: 'queue_minfree', code: INSUFFICIENT_STORAGE.code, from: address.address },
          noqueueRejectText({
            command: 'MAIL',
            client: state.client,
            reply: INSUFFICIENT_STORAGE,
            from: address.address,
            to: undefined,
            proto: session.transmissionType,
            helo: heloName(state, session),
          }),
        );
        callback(toSmtpServerError(INSUFFICIENT_STORAGE));
      },
      () => accept(),
    );
  }

  #onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.#sessionOf(session, callback);
    if (!state) return;
    state.counts.rcpt++;
    void decideRecipient(state, address, session, { resolver: this.#deps.resolver ?? unavailableResolver, metrics: this.#deps.metrics })
      .catch((err: unknown): RcptDecision => {
        state.log.error({ event: 'smtp error', err }, 'recipient check failed');
        return { kind: 'reject', reply: { code: 451, enhanced: '4.3.0', text: 'Error: internal error' }, reason: 'error' };
      })
      .then((decision) => {
        switch (decision.kind) {
          case 'accept':
            state.counts.rcptAccepted++;
            state.transaction.recipients++;
            callback();
            return;
          case 'over-limit':
            // smtpd(8): no log line; an error only past smtpd_recipient_overshoot_limit.
            if (state.transaction.overshoot++ < state.generation.settings.recipientOvershootLimit) state.connection?.excuseNextError();
            callback(toSmtpServerError(decision.reply));
            return;
          case 'reject':
            logNoqueueReject(state, session, { name: 'RCPT', recipient: address.address }, decision.reply, decision.reason);
            callback(toSmtpServerError(decision.reply));
            return;
          default: {
            const never: never = decision;
            throw new Error(`unhandled recipient decision ${JSON.stringify(never)}`);
          }
        }
      });
  }

  /** At DATA before 354: deep protocol tests, then smtpd_data_restrictions (smtpd(8)). */
  async #beforeData(state: SessionState, connection: PolicyConnection): Promise<SmtpReply | undefined> {
    const session = connection.session as unknown as SMTPServerSession;
    const deep = deepTestFailure(state, session, { name: 'DATA' });
    if (deep) return deep;
    const settings = state.generation.settings;
    if (settings.restrictions.data.length === 0) return undefined;
    const request = restrictionRequest(state, session, 'DATA', {});
    const outcome = await evaluateRestrictions(settings.restrictions.data, 'data', state.generation.env, restrictionSession(state, this.#deps.resolver ?? unavailableResolver), request);
    if (outcome.kind !== 'reject') return undefined;
    this.#deps.metrics.restrictionResults.inc({ list: 'data', result: outcome.reply.code < 500 ? 'defer' : 'reject' });
    logNoqueueReject(state, session, { name: 'DATA' }, outcome.reply, outcome.by);
    return outcome.reply;
  }

  /** ETRN: smtpd_etrn_restrictions, then fast_flush_domains (smtpd(8), RFC 1985). */
  async #onEtrn(state: SessionState, connection: PolicyConnection, domain: string): Promise<SmtpReply> {
    const settings = state.generation.settings;
    const session = connection.session as unknown as SMTPServerSession;
    const request = restrictionRequest(state, session, 'ETRN', { etrnDomain: domain });
    const outcome = await evaluateRestrictions(settings.restrictions.etrn, 'etrn', state.generation.env, restrictionSession(state, this.#deps.resolver ?? unavailableResolver), request);
    if (outcome.kind === 'reject') {
      logNoqueueReject(state, session, { name: 'ETRN' }, outcome.reply, outcome.by);
      return outcome.reply;
    }
    if (!matchDomain(settings.fastFlushDomains, domain, settings.fastFlushMatchSubdomains)) {
      const reply: SmtpReply = { code: 459, enhanced: '', text: `<${domain}>: service unavailable` }; // Postfix 3.7: no enhanced code here
      logNoqueueReject(state, session, { name: 'ETRN' }, reply, 'fast_flush_domains');
      return reply;
    }
    this.#deps.etrn?.(domain);
    state.log.info({ event: 'ETRN', domain }, `ETRN ${domain} from ${state.client}`);
    return { code: 250, enhanced: '', text: 'Queuing started' };
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const state = this.#sessionOf(session, callback);
    if (!state) return;
    state.counts.data++;
    const settings = state.generation.settings;
    const arrivalTime = this.#deps.clock.now();
    const envelope = queueEnvelope(state, session, arrivalTime);
    void receiveMessage(stream, {
      queue: this.#deps.queue,
      envelope,
      sizeLimit: settings.messageSizeLimit,
      limits: settings.limits,
      ...(hasContentChecks(settings.content) ? { content: { settings: settings.content, log: state.log } } : {}),
      receivedHeader: receivedHeaderFor(state, session, arrivalTime),
    })
      .catch((error: unknown): CleanupOutcome => ({ kind: 'queue-error', error, noSpace: false })) // a bug, not I/O
      .then((outcome) => {
        reportCleanupOutcome(state, session, envelope, outcome, this.#deps);
        const reply = cleanupReply(outcome);
        if (outcome.kind === 'queued' || outcome.kind === 'discarded') callback(null, replyText(reply));
        else callback(toSmtpServerError(reply));
      });
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

/** A resolver for when none is injected: every lookup is a temporary failure. */
const unavailableResolver: DnsResolver = {
  resolve4: (name) => Promise.reject(new DnsError('other', `${name}/A`)),
  resolve6: (name) => Promise.reject(new DnsError('other', `${name}/AAAA`)),
  resolveMx: (name) => Promise.reject(new DnsError('other', `${name}/MX`)),
  reverse: (address) => Promise.reject(new DnsError('other', `${address}/PTR`)),
  resolveTxt: (name) => Promise.reject(new DnsError('other', `${name}/TXT`)),
};



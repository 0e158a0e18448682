/*
 * smtpd-session — what one smtpd(8) session carries, and what the restrictions see of it.
 *
 * Decides: the per-session record (the postscreen verdict it was handed over with, its
 * settings generation, the counts of the `disconnect from …` line, the client names looked
 * up once, the per-transaction prepended headers, SPF outcome and RCPT counts), the HELO
 * name a session reports, and the restriction request and session built from it for each
 * command.
 * Leaves to others: the registry of open sessions and their lifecycle (smtpd.ts), the
 * restrictions themselves (restriction-list.ts), the SMTP conversation (smtpd-connection.ts).
 * Bugs: the `disconnect from …` counts cover MAIL, RCPT and DATA only (Postfix also counts
 * EHLO, QUIT and all commands).
 */
import type net from 'node:net';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import type { DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { ScreenVerdict } from '../screen-verdict.js';
import { lookupClientNames } from './client-hostname.js';
import type { ClientNames, RestrictionRequest, RestrictionSession } from './restriction.js';
import type { RestrictionEnvironment } from './restriction.js';
import type { PolicyConnection } from './smtpd-connection.js';
import type { SmtpdSettings } from './smtpd-settings.js';
import type { PolicyServiceClient, SpfOutcome } from './restriction-services.js';

/** One smtp-server per settings generation: a reload builds a new one for new sessions. */
export interface Generation {
  readonly settings: SmtpdSettings;
  readonly server: SMTPServer;
  /** What the restrictions of this generation use; policy clients close with it. */
  readonly env: RestrictionEnvironment;
  readonly policyClients: Map<string, PolicyServiceClient>;
  /** Open sessions started with this generation; it is retired when 0 and no longer current. */
  sessions: number;
}

/** One open session, keyed by `key` (smtp-server's session.id: the verdict's sessionId, made unique). */
export interface SessionState {
  readonly key: string;
  readonly verdict: ScreenVerdict;
  readonly socket: net.Socket;
  readonly generation: Generation;
  /** `[ip]:port` */
  readonly client: string;
  readonly log: Logger;
  readonly counts: { mail: number; rcpt: number; rcptAccepted: number; data: number; queued: number };
  connection: PolicyConnection | undefined;
  /** The client names, looked up once (first restriction that needs them). */
  names: Promise<ClientNames> | undefined;
  /**
   * Per transaction (reset at MAIL FROM): headers to prepend, the SPF outcome, the RCPTs
   * accepted (each one, a repeated address too: smtpd_recipient_limit) and the 452s past
   * that limit so far (smtpd_recipient_overshoot_limit).
   */
  transaction: { prepends: string[]; spf: Promise<SpfOutcome> | undefined; recipients: number; overshoot: number };
}

/**
 * The HELO/EHLO name of the session for log lines and restrictions: the connection's
 * (smtpd-connection.ts) once it runs, else smtp-server's; '' before HELO/EHLO.
 */
export function heloName(state: SessionState, session: SMTPServerSession): string {
  return state.connection ? state.connection.heloName() : heloOf(session);
}

/**
 * What the restrictions may ask of the session (restriction.ts): the client names (looked
 * up with `resolver` once per session), prepending a header to this transaction's message,
 * the SPF outcome (computed once per transaction, its Received-SPF: header prepended).
 */
export function restrictionSession(state: SessionState, resolver: DnsResolver): RestrictionSession {
  return {
    clientNames: () => (state.names ??= lookupClientNames(resolver, state.verdict.client.address)),
    prepend: (header) => {
      state.transaction.prepends.push(header);
    },
    spf: (check) => {
      state.transaction.spf ??= check().then((outcome) => {
        state.transaction.prepends.push(outcome.header);
        return outcome;
      });
      return state.transaction.spf;
    },
  };
}

/**
 * The restriction request for `command` (smtpd(8) / SMTPD_POLICY_README attributes): the
 * client and local address from the verdict, HELO, sender, recipient count so far, protocol
 * (ESMTP after EHLO), improper pipelining; `extra` sets the recipient or ETRN domain.
 */
export function restrictionRequest(
  state: SessionState,
  session: SMTPServerSession,
  command: RestrictionRequest['command'],
  extra: Partial<RestrictionRequest>,
): RestrictionRequest {
  return {
    command,
    client: state.verdict.client,
    local: state.verdict.local,
    helo: heloName(state, session),
    sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
    recipient: undefined,
    recipientCount: session.envelope.rcptTo.length,
    protocol: session.openingCommand === 'EHLO' ? 'ESMTP' : 'SMTP',
    improperPipelining: state.connection?.improperPipelining ?? false,
    sessionId: state.verdict.sessionId,
    ...extra,
  };
}

/** The HELO/EHLO argument, or '' before one was given (smtp-server keeps `false` then). */
function heloOf(session: SMTPServerSession): string {
  return typeof session.hostNameAppearsAs === 'string' ? session.hostNameAppearsAs : '';
}

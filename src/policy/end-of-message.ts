/*
 * end-of-message — what smtpd does around cleanup(8) for one DATA: the queue envelope, the
 * headers it prepends, and what each cleanup outcome logs and sets off.
 *
 * Decides: the envelope (virtual_alias_maps expansion of each recipient as cleanup(8) does,
 * duplicates dropped; addresses in ASCII unless SMTPUTF8; RFC 3461 NOTIFY and ORCPT per
 * recipient, an alias's targets inheriting those of its RCPT, and ENVID/RET, all as
 * smtp-server decoded them after esmtp-parameters.ts checked them),
 * the headers before the message (restriction PREPENDs and Received-SPF:, then Received:),
 * and per outcome the log line (`ID: client=…`, `ID: warning: … header_size_limit …`, `ID:
 * hold: header …`, `reject: END-OF-MESSAGE …` (size, and a safety limit naming itself),
 * `NOQUEUE: reject: header …`, `ID: discard: header …`, `lost connection after DATA`), the
 * content_reject counter (action reject, discard, hold, limit) and the hand-off (onQueued,
 * or hold for HOLD).
 * Leaves to others: writing the message and the reply for each outcome (cleanup.ts), the
 * Received: header's wording (received-header.ts), sending the reply (smtpd.ts).
 * Bugs: the envelope's arrivalTime is the start of DATA, as in cleanup.ts. A target two
 * RCPTs lead to keeps the first one's NOTIFY/ORCPT (Postfix keeps a record per pair). No
 * ORCPT is made up when the client gave none (Postfix records the RCPT address as one).
 */
import type { SMTPServerSession } from 'smtp-server';
import { formatReply } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { Envelope, QueueRecipient } from '../queue/envelope.js';
import { cleanupReply, type CleanupOutcome } from './cleanup.js';
import type { ContentSettings } from './content-inspection.js';
import type { LimitNotice } from './content-limits.js';
import { formatReceivedHeader, localUtcOffsetMinutes } from './received-header.js';
import { asciiAddress } from './recipient-address.js';
import { heloName, type SessionState } from './smtpd-session.js';
import { expandVirtualAlias } from './virtual-alias.js';

/** What an outcome sets off besides logging: the content counter, and the hand-off of the queue id. */
export interface EndOfMessageDeps {
  readonly metrics: Metrics;
  /** Called with the queue id after each message is durably queued (and before the 250 goes out). */
  readonly onQueued?: (id: string) => void;
}

/** Whether any content check is configured (header_checks, mime/nested_header_checks, blocked attachment types). */
export function hasContentChecks(content: ContentSettings): boolean {
  return content.blockedTypes.length > 0 || Object.values(content.tables).some((tables) => tables.length > 0);
}

/**
 * The queue envelope of the session's transaction, received at `arrivalTime` (ms since the
 * epoch): sender and recipients after virtual_alias_maps (cleanup(8)), client and HELO, DSN.
 */
export function queueEnvelope(state: SessionState, session: SMTPServerSession, arrivalTime: number): Envelope {
  const envelope = session.envelope;
  const keepUnicode = envelope.smtpUtf8 === true;
  const address = (value: string): string => (keepUnicode ? value : asciiAddress(value));
  // virtual_alias_maps (cleanup(8)): each recipient goes to what its alias names.
  const settings = state.generation.settings;
  const recipients: QueueRecipient[] = [];
  for (const rcpt of envelope.rcptTo) {
    for (const target of expandVirtualAlias(settings.virtualAliasMaps, rcpt.address, state.verdict.local.address)) {
      if (recipients.some((known) => known.address.toLowerCase() === address(target).toLowerCase())) continue;
      recipients.push({
        address: address(target),
        ...(rcpt.dsn?.orcpt !== undefined ? { orcpt: rcpt.dsn.orcpt } : {}),
        ...(rcpt.dsn?.notify !== undefined ? { notify: rcpt.dsn.notify } : {}),
      });
    }
  }
  const dsn = envelope.dsn;
  const ret = dsn?.ret === 'FULL' || dsn?.ret === 'HDRS' ? dsn.ret : undefined;
  const helo = heloName(state, session);
  return {
    sender: envelope.mailFrom ? address(envelope.mailFrom.address) : '',
    recipients,
    arrivalTime,
    client: { address: state.verdict.client.address, port: state.verdict.client.port, ...(helo !== '' ? { helo } : {}) },
    sessionId: state.verdict.sessionId,
    ...(dsn && (dsn.envid || ret) ? { dsn: { ...(dsn.envid ? { envid: dsn.envid } : {}), ...(ret ? { ret } : {}) } } : {}),
  };
}

/**
 * The headers to put before the message once the queue id is known: this transaction's
 * prepended headers (restrictions' PREPEND, Received-SPF:), each CRLF-ended, then the
 * Received: header (RFC 5321 section 4.4) for a message arriving at `arrivalTime` (ms).
 * The HELO name is the one the session has now.
 */
export function receivedHeaderFor(state: SessionState, session: SMTPServerSession, arrivalTime: number): (queueId: string) => string {
  const settings = state.generation.settings;
  const helo = heloName(state, session);
  return (queueId) =>
    state.transaction.prepends.map((header) => `${header}\r\n`).join('') +
    formatReceivedHeader({
      ...(helo !== '' ? { helo } : {}),
      clientAddress: state.verdict.client.address,
      myhostname: settings.myhostname,
      mailName: settings.mailName,
      esmtp: session.openingCommand === 'EHLO',
      tls: session.secure,
      queueId,
      recipients: session.envelope.rcptTo.map((rcpt) => (session.envelope.smtpUtf8 ? rcpt.address : asciiAddress(rcpt.address))),
      time: arrivalTime,
      utcOffsetMinutes: localUtcOffsetMinutes(arrivalTime),
    });
}

/**
 * Logs the cleanup `outcome` of the message with `envelope` as smtpd(8)/cleanup(8) do, counts
 * queued messages in the session and content actions in metrics.contentRejects, and hands a
 * queued message's id to deps.onQueued (not one held by HOLD, which waits in hold/); its
 * errors are logged, never thrown.
 */
export function reportCleanupOutcome(state: SessionState, session: SMTPServerSession, envelope: Envelope, outcome: CleanupOutcome, deps: EndOfMessageDeps): void {
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
      for (const notice of outcome.notices ?? []) {
        state.log.warn({ event: 'WARN', queueId: outcome.id, limit: notice.limit, value: notice.value }, `${outcome.id}: warning: ${noticeText(notice)}`);
      }
      if (outcome.hold) {
        const { match } = outcome.hold;
        deps.metrics.contentRejects.inc({ action: 'hold' });
        state.log.info(
          { event: 'hold', queueId: outcome.id, table: match.source, line: match.line, header: match.header },
          `${outcome.id}: hold: header ${match.header} from ${state.client}: ${outcome.hold.text} (${match.source}:${match.line})`,
        );
        return; // committed into hold/: the queue manager never sees it until `queue release`
      }
      try {
        deps.onQueued?.(outcome.id);
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
          `from=<${from}> proto=${session.transmissionType} helo=<${heloName(state, session)}>`,
      );
      return;
    }
    case 'limit-exceeded': {
      const { refusal } = outcome;
      deps.metrics.contentRejects.inc({ action: 'limit' });
      state.log.info(
        { event: 'reject', action: outcome.kind, code: refusal.reply.code, limit: refusal.limit, value: refusal.value, from },
        `reject: END-OF-MESSAGE from ${state.client}: ${formatReply(refusal.reply)} (${refusal.limit} = ${refusal.value}, at ${refusal.where}); ` +
          `from=<${from}> proto=${session.transmissionType} helo=<${heloName(state, session)}>`,
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
    case 'content-rejected':
    case 'discarded': {
      const { match } = outcome;
      const action = outcome.kind === 'discarded' ? `discard: ${outcome.text}` : `reject: ${formatReply(outcome.reply)}`;
      deps.metrics.contentRejects.inc({ action: outcome.kind === 'discarded' ? 'discard' : 'reject' });
      state.log.info(
        { event: 'reject', action: outcome.kind, table: match.source, line: match.line, header: match.header, from },
        `${outcome.kind === 'discarded' ? outcome.id : 'NOQUEUE'}: ${action.split(':')[0]}: header ${match.header} from ${state.client}; ` +
          `from=<${from}> proto=${session.transmissionType} helo=<${heloName(state, session)}>: ${action.slice(action.indexOf(':') + 2)} ` +
          `(${match.source}${match.line > 0 ? `:${match.line}` : ''})`,
      );
      return;
    }
    default: {
      const never: never = outcome;
      throw new Error(`unhandled cleanup outcome ${JSON.stringify(never)}`);
    }
  }
}

/** The text of a WARN line for a limit that changed a queued message (`where` is `header NAME` or `boundary "…"`). */
function noticeText(notice: LimitNotice): string {
  switch (notice.limit) {
    case 'header_size_limit':
      return `${notice.where} is longer than header_size_limit (${notice.value} bytes): the excess is discarded`;
    case 'mime_boundary_length_limit':
      return `MIME ${notice.where} is longer than mime_boundary_length_limit (${notice.value} bytes): only its first ${notice.value} bytes are compared`;
    default: {
      const never: never = notice.limit;
      throw new Error(`unhandled limit notice ${String(never)}`);
    }
  }
}

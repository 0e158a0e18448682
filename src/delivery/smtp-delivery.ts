/*
 * smtp-delivery — one delivery attempt of one message to one nexthop (Postfix smtp(8)).
 *
 * Decides: the per-recipient outcome of an attempt: accepted → sent; a 5xx reply (to
 * MAIL, RCPT or the end of DATA) → bounced for the recipients it concerns; a 4xx reply,
 * 503, a failed or lost connection, a timeout → deferred. Targets (MX hosts and their
 * addresses) are tried in order while connecting fails; once a server has answered the
 * envelope, its answer stands. Reply texts follow Postfix: `host[ip] said: 550 … (in reply
 * to RCPT TO command)`, `connect to host[ip]:port: Connection refused`.
 * TLS: STARTTLS when offered, without certificate checks (Postfix smtp_tls_security_level
 * = may); a failed upgrade goes on in clear text.
 * Leaves to others: choosing the nexthop and targets (transport.ts, mx-lookup.ts),
 * recording results and retrying (queue-manager.ts).
 * Bugs: one connection per message (no connection cache); per-recipient DSN NOTIFY/ORCPT
 * are not passed on (nodemailer takes them per message), ENVID and RET are.
 */
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Envelope } from '../queue/envelope.js';
import type { DeliveryTarget } from './mx-lookup.js';

export type RecipientOutcome = 'sent' | 'deferred' | 'bounced';

export interface RecipientResult {
  readonly address: string;
  readonly status: RecipientOutcome;
  /** RFC 3463 status, e.g. `2.0.0`, `4.4.1`, `5.1.1`. */
  readonly dsn: string;
  /** Reply or error text as the log's `status=… (text)` shows it. */
  readonly text: string;
}

export interface DeliveryResult {
  /** `host[ip]:port` of the server that answered (or was tried last), `none` without one. */
  readonly relay: string;
  /** One result per requested recipient, in request order. */
  readonly recipients: readonly RecipientResult[];
}

export interface DeliveryRequest {
  /** Addresses to try, in order (mx-lookup.ts). Must not be empty. */
  readonly targets: readonly DeliveryTarget[];
  /** Envelope sender; empty for the null sender `<>`. */
  readonly sender: string;
  readonly recipients: readonly string[];
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
}

/** The shape nodemailer gives its errors (NodemailerError). */
interface SmtpClientError extends Error {
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
 * §5.1 (trying MX hosts in order); Postfix smtp(8) log texts.
 */
export async function deliverMessage(request: DeliveryRequest): Promise<DeliveryResult> {
  let last: DeliveryResult = {
    relay: 'none',
    recipients: request.recipients.map((address) => ({ address, status: 'deferred', dsn: '4.4.3', text: 'no delivery target' })),
  };
  // Bounded by the number of targets (mx-lookup.ts caps it).
  for (const target of request.targets) {
    if (request.signal?.aborted) break;
    const attempt = await deliverToTarget(target, request);
    last = attempt.result;
    if (!attempt.connectFailed) break;
  }
  return last;
}

function relayName(target: DeliveryTarget): string {
  return `${target.hostname}[${target.address}]:${target.port}`;
}

async function deliverToTarget(target: DeliveryTarget, request: DeliveryRequest): Promise<{ connectFailed: boolean; result: DeliveryResult }> {
  const relay = relayName(target);
  const server = `${target.hostname}[${target.address}]`;
  const connection = new SMTPConnection({
    host: target.address,
    port: target.port,
    name: request.helo,
    connectionTimeout: request.connectTimeout,
    greetingTimeout: request.commandTimeout,
    socketTimeout: request.commandTimeout,
    socketCloseTimeout: 1000,
    opportunisticTLS: true,
    tls: { rejectUnauthorized: false, ...(target.hostname !== target.address ? { servername: target.hostname } : {}) },
    logger: false,
  });
  // A failed connect is reported only as an 'error' event (then 'end'), never to the
  // connect callback; keep the last one so 'end' can say what happened.
  let lastError: SmtpClientError | undefined;
  connection.on('error', (error: SmtpClientError) => {
    lastError = error;
  });
  const closed = (): SmtpClientError => lastError ?? Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' });
  const onAbort = () => connection.close();
  request.signal?.addEventListener('abort', onAbort, { once: true });
  const all = (status: RecipientOutcome, dsn: string, text: string, via = relay): DeliveryResult => ({
    relay: via,
    recipients: request.recipients.map((address) => ({ address, status, dsn, text })),
  });
  try {
    const connectError = await new Promise<SmtpClientError | undefined>((resolve) => {
      connection.once('end', () => setImmediate(() => resolve(closed())));
      connection.connect((error) => resolve(error ?? undefined));
    });
    if (connectError) {
      if (connectError.responseCode) {
        const reply = replyOutcome(connectError);
        return { connectFailed: true, result: all(reply.status, reply.dsn, `${server} refused to talk to me: ${oneLine(connectError.response)}`) };
      }
      // Postfix logs relay=none when no server answered.
      return { connectFailed: true, result: all('deferred', '4.4.1', `connect to ${relay}: ${connectFailureText(connectError)}`, 'none') };
    }

    // XXX: nodemailer records RCPT rejections on the envelope object it is given
    // (SMTPConnectionEnvelope.rejectedErrors); read them from there when the end of DATA
    // fails, since that error does not carry them.
    const envelope: Record<string, unknown> = {
      from: request.sender,
      to: [...request.recipients],
      size: request.size,
      use8BitMime: true,
      ...(request.dsn && (request.dsn.envid || request.dsn.ret) ? { dsn: { envid: request.dsn.envid, ret: request.dsn.ret } } : {}),
    };
    const outcome = await new Promise<{ error: SmtpClientError } | { info: { accepted: string[]; rejectedErrors?: SmtpClientError[]; response: string } }>((resolve) => {
      let settled = false;
      const settle = (value: Parameters<typeof resolve>[0]) => {
        if (!settled) {
          settled = true;
          resolve(value);
        }
      };
      // 'end' may come before the callback's more precise error: let that one win.
      connection.once('end', () => setImmediate(() => settle({ error: closed() })));
      connection.send(envelope, request.body(), (error, info) => (error ? settle({ error }) : settle({ info: info! })));
    });

    if ('info' in outcome) {
      const rejected = byRecipient(outcome.info.rejectedErrors);
      return {
        connectFailed: false,
        result: {
          relay,
          recipients: request.recipients.map((address) => {
            const error = rejected.get(address);
            if (error) return replyResult(address, error, server);
            return { address, status: 'sent', dsn: enhancedCode(outcome.info.response) ?? '2.0.0', text: oneLine(outcome.info.response) };
          }),
        },
      };
    }

    const error = outcome.error;
    const rejected = byRecipient(error.rejectedErrors ?? (envelope['rejectedErrors'] as SmtpClientError[] | undefined));
    if (error.responseCode) {
      return {
        connectFailed: false,
        result: {
          relay,
          recipients: request.recipients.map((address) => replyResult(address, rejected.get(address) ?? error, server)),
        },
      };
    }
    if (error.code === 'EMESSAGE' && error.command === 'MAIL FROM') {
      return { connectFailed: false, result: all('bounced', '5.3.4', `message size ${request.size} exceeds the limit of ${server}`) };
    }
    const during = error.command && error.command !== 'CONN' && error.command !== 'API' ? ` while sending ${error.command}` : '';
    return { connectFailed: false, result: all('deferred', '4.4.2', `lost connection with ${server}${during}: ${error.message}`) };
  } finally {
    request.signal?.removeEventListener('abort', onAbort);
    if (connection.stage === 'connected' && !connection.destroyed) connection.quit();
    else connection.close();
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

/*
 * verify-probe — one address verification probe (verify(8)): does the nexthop accept
 * this recipient? Run on the delivery client, as verify(8) probes go through smtp(8)
 * (delivery/smtp-delivery.ts SmtpSession): EHLO, `MAIL FROM:<>`, `RCPT TO:<addr>`, then
 * `RSET` and `QUIT`; no DATA.
 *
 * Decides: the nexthop is the one transport_maps (then relayhost, then MX) names for the
 * recipient (delivery/transport.ts resolveNexthop), a nexthop list's destinations in order
 * (delivery/mx-lookup.ts lookupNexthopTargets); the first address that answers is used,
 * the next one tried only when one cannot be reached (no connection, or no greeting in
 * time); RCPT 2xx → `deliverable`, 5xx → `undeliverable`, anything else (4xx, no
 * connection, a timeout, transport `retry:`) → `unknown`; transport `error:` →
 * undeliverable. Every step is limited by `timeoutMs`.
 * Leaves to others: caching and limits (address-verify.ts), the SMTP dialogue (smtp-delivery.ts).
 * Bugs: no STARTTLS in probes; a greeting other than 220 is `unknown`.
 */
import type { DnsResolver } from '../dns/resolver.js';
import { formatNexthop, resolveNexthop, type TransportSettings } from '../delivery/transport.js';
import { lookupNexthopTargets, type DeliveryTarget } from '../delivery/mx-lookup.js';
import { SmtpSession, type ProbeOutcome, type SmtpClientError } from '../delivery/smtp-delivery.js';

export type ProbeStatus = 'deliverable' | 'undeliverable' | 'unknown';

export interface ProbeResult {
  readonly status: ProbeStatus;
  /** What the nexthop said (or why there was no answer), for the reply and logs. */
  readonly text: string;
}

export interface ProbeOptions {
  readonly transport: TransportSettings;
  readonly resolver: DnsResolver;
  /** Our name in EHLO (myhostname). */
  readonly helo: string;
  /** Time limit of each step (connect, each reply), ms. */
  readonly timeoutMs: number;
}

/** The nexthop label a probe of `recipient` goes to (the per-nexthop limit's key). */
export function probeNexthop(recipient: string, transport: TransportSettings): string {
  return formatNexthop(resolveNexthop(recipient, transport));
}

/** Probes `recipient`. Never rejects. Source: verify(8), RFC 5321 §3.3. */
export async function probeRecipient(recipient: string, options: ProbeOptions): Promise<ProbeResult> {
  const nexthop = resolveNexthop(recipient, options.transport);
  switch (nexthop.kind) {
    case 'error':
      return { status: 'undeliverable', text: nexthop.text };
    case 'retry':
      return { status: 'unknown', text: nexthop.text };
    case 'smtp':
      break;
    default: {
      const never: never = nexthop;
      return never;
    }
  }
  const targets = await lookupNexthopTargets(nexthop, options.resolver);
  if (targets.kind === 'failure') return { status: targets.permanent ? 'undeliverable' : 'unknown', text: targets.text };
  let last: ProbeResult = { status: 'unknown', text: 'no nexthop address' };
  // Bounded by the targets: MX_ADDRESS_LIMIT for each destination of the list.
  for (const target of targets.targets) {
    const connected = await SmtpSession.connect(target, { helo: options.helo, connectTimeout: options.timeoutMs, commandTimeout: options.timeoutMs, tlsLevel: 'none' });
    if ('session' in connected) return probeResult(await connected.session.probe(recipient), target);
    last = connectFailure(connected.error, target);
    if (connected.error.responseCode) return last; // the server answered: its answer stands
  }
  return last;
}

/** What the reply to RCPT TO (or the refusal of MAIL FROM, or a failure on the way) means. */
function probeResult(outcome: ProbeOutcome, target: DeliveryTarget): ProbeResult {
  const where = `[${target.address}]:${target.port}`;
  if ('error' in outcome) {
    return { status: 'unknown', text: outcome.error.code === 'ETIMEDOUT' ? `conversation with ${where} timed out` : `lost connection with ${where}` };
  }
  const line = lastLine(outcome.reply);
  if (outcome.command === 'MAIL FROM') return { status: 'unknown', text: `host [${target.address}] refused to talk: ${line}` };
  const code = Number(line.slice(0, 3));
  return { status: code >= 200 && code < 300 ? 'deliverable' : code >= 500 ? 'undeliverable' : 'unknown', text: `host [${target.address}] said: ${line}` };
}

/** Why no session came up: the server's refusal of the greeting or EHLO, or no connection. */
function connectFailure(error: SmtpClientError, target: DeliveryTarget): ProbeResult {
  const where = `[${target.address}]:${target.port}`;
  if (error.responseCode) return { status: 'unknown', text: `host [${target.address}] refused to talk: ${lastLine(error.response ?? '')}` };
  return { status: 'unknown', text: error.code === 'ETIMEDOUT' ? `connect with ${where} timed out` : `connect to ${where}: ${error.message}` };
}

/** The last line of a (multi-line) reply, the one with the final code. */
function lastLine(reply: string): string {
  return reply.trimEnd().split('\n').pop() ?? '';
}

/*
 * rcpt-decision — whether smtpd accepts one RCPT TO, and with which reply it refuses.
 *
 * Decides: the RCPT order: the postscreen(8) enforce verdict (every RCPT gets the test's
 * reply), a failed deep protocol test, smtpd_recipient_limit (`452 4.5.3` once the
 * transaction has that many accepted RCPTs, a repeated address counted each time as Postfix
 * counts it; smtp-server keeps the envelope free of duplicates), then smtpd_client/helo/
 * sender/relay/recipient restrictions as smtpd_delay_reject = yes (a permit ends its own
 * list, a reject ends everything), then for a local address virtual_alias_maps (`550 5.1.1
 * … User unknown in virtual alias table`) and for an authorized destination
 * smtpd_reject_unlisted_recipient (relay_recipient_maps). The decision is a typed value
 * with the reason the NOQUEUE log line names (the limit's 452 has none: not logged).
 * Leaves to others: each restriction (restriction-*.ts), logging and replying (smtpd.ts).
 * Bugs: smtpd_reject_unlisted_sender is not implemented.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { DnsResolver } from '../dns/resolver.js';
import type { SmtpReply } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import { parseRecipient } from './recipient-address.js';
import { unlistedRelayRecipient } from './recipient-check.js';
import { isLocalDestination } from './relay-control.js';
import { rejectReply } from './restriction.js';
import { evaluateRestrictions, type ListOutcome } from './restriction-list.js';
import { restrictionRequest, restrictionSession, type SessionState } from './smtpd-session.js';
import { lookupVirtualAlias } from './virtual-alias.js';

/**
 * What becomes of one RCPT TO; `reason` names the restriction (or test) in the log line.
 * `over-limit` is smtpd_recipient_limit's 452, which Postfix does not log.
 */
export type RcptDecision =
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reply: SmtpReply; readonly reason: string }
  | { readonly kind: 'over-limit'; readonly reply: SmtpReply };

/** What the RCPT decision uses besides the session: DNS for the restrictions, the restriction result counter. */
export interface RcptDecisionDeps {
  readonly resolver: DnsResolver;
  readonly metrics: Metrics;
}

const TOO_MANY_RECIPIENTS: SmtpReply = { code: 452, enhanced: '4.5.3', text: 'Error: too many recipients' };
/** Used when an enforce verdict comes without its reply (should not happen). */
const ENFORCE_FALLBACK: SmtpReply = { code: 550, enhanced: '5.7.1', text: 'Service unavailable' };

/** `550 5.1.1 <addr>: Recipient address rejected: User unknown in virtual alias table` (smtpd_check.c). */
function unknownLocalRecipient(address: string): SmtpReply {
  return rejectReply(550, '5.1.1', address, 'Recipient address', 'User unknown in virtual alias table');
}

/**
 * Decides RCPT TO `address` in `session` (state.transaction.recipients: the RCPTs accepted
 * so far in this transaction). Counts each restriction list's permit/defer/reject in
 * metrics.restrictionResults. Rejects (reason, not throws) for every refusal; throws only
 * what a restriction throws. Source: smtpd(8), smtpd_check.c, postscreen(8) "enforce".
 */
export async function decideRecipient(
  state: SessionState,
  address: SMTPServerAddress,
  session: SMTPServerSession,
  deps: RcptDecisionDeps,
): Promise<RcptDecision> {
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
      throw new Error(`unhandled screen verdict outcome ${String(never)}`);
    }
  }
  const deep = verdict.deepTests?.failure();
  if (deep) return { kind: 'reject', reply: deep.reply, reason: `postscreen ${deep.test}` };
  const settings = state.generation.settings;
  if (settings.recipientLimit > 0 && state.transaction.recipients >= settings.recipientLimit) {
    return { kind: 'over-limit', reply: TOO_MANY_RECIPIENTS };
  }
  const recipient = parseRecipient(address.address);
  const request = restrictionRequest(state, session, 'RCPT', { recipient });
  const sessionView = restrictionSession(state, deps.resolver);
  // smtpd_delay_reject = yes: every list runs now, in Postfix's order; a permit ends its
  // own list only, a reject ends everything.
  for (const stage of ['client', 'helo', 'sender', 'relay', 'recipient'] as const) {
    const outcome: ListOutcome = await evaluateRestrictions(settings.restrictions[stage], stage, state.generation.env, sessionView, request);
    if (outcome.kind !== 'dunno') {
      const result = outcome.kind === 'permit' ? 'permit' : outcome.reply.code < 500 ? 'defer' : 'reject';
      deps.metrics.restrictionResults.inc({ list: stage, result });
    }
    if (outcome.kind === 'reject') return { kind: 'reject', reply: outcome.reply, reason: outcome.by };
  }
  const local = isLocalDestination(recipient.domain, state.verdict.local.address);
  if (local) {
    // No local delivery here: a local recipient (postmaster@[our address]) must be a virtual alias.
    return lookupVirtualAlias(settings.virtualAliasMaps, recipient.address, state.verdict.local.address) === undefined
      ? { kind: 'reject', reply: unknownLocalRecipient(recipient.address), reason: 'virtual_alias_maps' }
      : { kind: 'accept' };
  }
  const unlisted = settings.rejectUnlistedRecipient ? unlistedRelayRecipient(settings, recipient, state.verdict.local.address) : undefined;
  if (unlisted) return { kind: 'reject', reply: unlisted, reason: 'smtpd_reject_unlisted_recipient' };
  return { kind: 'accept' };
}

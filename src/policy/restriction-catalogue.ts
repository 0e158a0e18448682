/*
 * restriction-catalogue — every smtpd(8) restriction mxscreen knows, listed once.
 *
 * Decides: the restriction names (postconf(5), with the old names Postfix still accepts:
 * reject_invalid_hostname, reject_non_fqdn_hostname, reject_unknown_client), which take
 * an argument (a table, a DNSBL domain, a policy server), and which function runs each.
 * The generic ones live here (permit, reject, defer, dunno, permit_mynetworks,
 * permit_sasl_authenticated, reject/defer_unauth_destination, reject_unauth_pipelining,
 * reject_unlisted_recipient); the others in their own files.
 * Leaves to others: parsing and evaluating lists (restriction-list.ts, which binds each
 * restriction's function at load), what a restriction sees and answers (restriction.ts).
 * Bugs: permit_sasl_authenticated never matches (AUTH is not offered).
 */
import { matchNetwork } from '../tables/match-list.js';
import { DUNNO, rejectReply, subjectOf, type RestrictionCall, type RestrictionRequest, type RestrictionResult } from './restriction.js';
import { checkAccess, type AccessTarget } from './access-restriction.js';
import { invalidHelo, nonFqdnHelo, nonFqdnRecipient, nonFqdnSender } from './fqdn-check.js';
import { unknownRecipientDomain, unknownSenderDomain } from './unknown-domain.js';
import { unknownClientHostname, unknownReverseClientHostname } from './client-hostname.js';
import { permitDnswlClient, rejectRblClient } from './rbl-client.js';
import { checkPolicyService, parsePolicyTarget } from './policy-service.js';
import { relayAccessDenied, unauthDestination } from './relay-control.js';
import { unlistedRelayRecipient } from './recipient-check.js';
import { rejectSpfFail } from './spf-check.js';
import { rejectUnverifiedRecipient } from './address-verify.js';

interface RestrictionSpec {
  /** `dnsbl`: a `domain[=filter]` (postscreen_dnsbl_sites syntax without a weight), parsed at load. */
  readonly argument: 'none' | 'table' | 'word' | 'dnsbl';
  /** For `word` arguments: a problem message, or undefined when the argument is good. */
  readonly check?: (argument: string) => string | undefined;
  run(call: RestrictionCall): Promise<RestrictionResult> | RestrictionResult;
}

function access(target: AccessTarget): RestrictionSpec {
  return { argument: 'table', run: (call) => checkAccess(call, target) };
}

const permitMynetworks: RestrictionSpec = {
  argument: 'none',
  run: ({ env, request, restriction }) =>
    matchNetwork(env.relay.mynetworks, request.client.address) ? { kind: 'permit', by: restriction.written } : DUNNO,
};

function unauthDestinationSpec(code: number, enhanced: string): RestrictionSpec {
  return {
    argument: 'none',
    run: ({ env, request, restriction }) => {
      if (request.recipient === undefined) return DUNNO;
      if (unauthDestination(env.relay, request.recipient, request.local.address) === 'authorized') return DUNNO;
      const denied = relayAccessDenied(request.recipient.address);
      return { kind: 'reject', by: restriction.written, reply: { ...denied, code, enhanced } };
    },
  };
}

const rejectUnlistedRecipient: RestrictionSpec = {
  argument: 'none',
  run: ({ env, request, restriction }) => {
    const reply = request.recipient === undefined ? undefined : unlistedRelayRecipient(env, request.recipient, request.local.address);
    return reply ? { kind: 'reject', by: restriction.written, reply } : DUNNO;
  },
};

/** `503 5.5.0 <CMD>: … rejected: Improper use of SMTP command pipelining` (smtpd_check.c). */
const rejectUnauthPipelining: RestrictionSpec = {
  argument: 'none',
  run: ({ request, restriction }) =>
    request.improperPipelining
      ? {
          kind: 'reject',
          by: restriction.written,
          reply: rejectReply(503, '5.5.0', request.command, request.command === 'DATA' ? 'Data command' : 'Recipient address', 'Improper use of SMTP command pipelining'),
        }
      : DUNNO,
};

function fixed(result: (call: RestrictionCall) => RestrictionResult): RestrictionSpec {
  return { argument: 'none', run: result };
}

/** Who a plain reject/defer names: the subject of the list it stands in. */
function plainReply(call: RestrictionCall, code: number, enhanced: string): RestrictionResult {
  const { what, subject } = subjectOf(call);
  return { kind: 'reject', by: call.restriction.written, reply: rejectReply(code, enhanced, what, subject, 'Access denied') };
}

/**
 * The catalogue. Keys are the lower-case names as written in main.cf (Postfix compares
 * restriction names case-insensitively, so `PERMIT` in an access table is `permit`).
 */
export const RESTRICTIONS = {
  permit: fixed((call) => ({ kind: 'permit', by: call.restriction.written })),
  ok: fixed((call) => ({ kind: 'permit', by: call.restriction.written })),
  dunno: fixed(() => DUNNO),
  reject: fixed((call) => plainReply(call, 554, '5.7.1')),
  defer: fixed((call) => plainReply(call, 450, '4.7.1')),
  restriction_class: { argument: 'none', run: (call) => ({ kind: 'list', by: call.restriction.written, words: [call.restriction.argument ?? ''] }) },
  permit_mynetworks: permitMynetworks,
  permit_sasl_authenticated: fixed(() => DUNNO),
  reject_unauth_destination: unauthDestinationSpec(554, '5.7.1'),
  defer_unauth_destination: unauthDestinationSpec(454, '4.7.1'),
  reject_unauth_pipelining: rejectUnauthPipelining,
  reject_unlisted_recipient: rejectUnlistedRecipient,
  reject_non_fqdn_helo_hostname: fixed(nonFqdnHelo),
  reject_non_fqdn_hostname: fixed(nonFqdnHelo),
  reject_invalid_helo_hostname: fixed(invalidHelo),
  reject_invalid_hostname: fixed(invalidHelo),
  reject_non_fqdn_sender: fixed(nonFqdnSender),
  reject_non_fqdn_recipient: fixed(nonFqdnRecipient),
  reject_unknown_sender_domain: { argument: 'none', run: unknownSenderDomain },
  reject_unknown_recipient_domain: { argument: 'none', run: unknownRecipientDomain },
  reject_unknown_reverse_client_hostname: { argument: 'none', run: unknownReverseClientHostname },
  reject_unknown_client_hostname: { argument: 'none', run: unknownClientHostname },
  reject_unknown_client: { argument: 'none', run: unknownClientHostname },
  reject_rbl_client: { argument: 'dnsbl', run: rejectRblClient },
  permit_dnswl_client: { argument: 'dnsbl', run: permitDnswlClient },
  check_client_access: access('client'),
  check_helo_access: access('helo'),
  check_sender_access: access('sender'),
  check_recipient_access: access('recipient'),
  check_policy_service: { argument: 'word', check: (argument) => parsePolicyTarget(argument).problem, run: checkPolicyService },
  reject_spf_fail: { argument: 'none', run: rejectSpfFail },
  reject_unverified_recipient: { argument: 'none', run: rejectUnverifiedRecipient },
} as const satisfies Record<string, RestrictionSpec>;

export type RestrictionName = keyof typeof RESTRICTIONS;

/** For tests and docs: every restriction name mxscreen accepts. */
export const RESTRICTION_NAMES = Object.keys(RESTRICTIONS).filter((name) => name !== 'restriction_class') as RestrictionName[];

export type { RestrictionRequest };

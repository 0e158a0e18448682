/*
 * restriction — what one smtpd(8) restriction sees and what it answers.
 *
 * Decides: the typed result of a restriction (permit, reject with a reply, dunno, or
 * "evaluate these restriction words in place"), the facts of the command under check
 * (RestrictionRequest), the stage's services a restriction may use (RestrictionEnvironment),
 * one parsed restriction and one call of it, the per-session memo of slow lookups (client name, FCrDNS) and
 * the replies Postfix composes around a restriction's text: `<what>: Client host
 * rejected: …`, `<addr>: Recipient address rejected: …` (smtpd_check.c wording).
 * Leaves to others: the catalogue of restrictions (restriction-catalogue.ts), evaluating
 * lists (restriction-list.ts), applying the final result (smtpd.ts).
 * Bugs: no defer_if_permit/defer_if_reject bookkeeping (warn_if_reject neither).
 */
import type { SmtpReply } from '../errors.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { DnsblSite } from '../dnsbl/dnsbl-site.js';
import type { Logger } from '../ops/log.js';
import type { LookupTable } from '../tables/lookup-table.js';
import type { RecipientAddress } from './recipient-address.js';
import type { RelayPolicy } from './relay-control.js';
import type { AddressVerifier, PolicyServiceClient, SpfOutcome, SpfVerifier } from './restriction-services.js';

/** The restriction lists of smtpd(8), in the order they are evaluated at RCPT TO. */
export const RESTRICTION_STAGES = ['client', 'helo', 'sender', 'relay', 'recipient', 'data', 'etrn'] as const;
export type RestrictionStage = (typeof RESTRICTION_STAGES)[number];

export type RestrictionResult =
  /** Stop this list: the request passes it (OK, permit, permit_mynetworks …). */
  | { readonly kind: 'permit'; readonly by: string }
  /** Stop everything: the reply goes to the client (4xx = defer, 5xx = reject). */
  | { readonly kind: 'reject'; readonly by: string; readonly reply: SmtpReply }
  /** Go on with the next restriction. */
  | { readonly kind: 'dunno' }
  /**
   * An access table answered with restriction names or a restriction class
   * (smtpd_restriction_classes): evaluate those words in place, as a nested list.
   */
  | { readonly kind: 'list'; readonly by: string; readonly words: readonly string[] };

export const DUNNO: RestrictionResult = { kind: 'dunno' };

/** What is being checked: the command and everything known about the session so far. */
export interface RestrictionRequest {
  /** The SMTP command under check. */
  readonly command: 'RCPT' | 'DATA' | 'ETRN';
  readonly client: { readonly address: string; readonly port: number };
  /** The local end of the connection (for postmaster@[our address]). */
  readonly local: { readonly address: string; readonly port: number };
  /** HELO/EHLO argument, '' before one. */
  readonly helo: string;
  /** MAIL FROM address ('' for the null sender), undefined before MAIL. */
  readonly sender: string | undefined;
  /** The RCPT TO address under check (RCPT only). */
  readonly recipient: RecipientAddress | undefined;
  /** Recipients accepted so far in this transaction. */
  readonly recipientCount: number;
  /** The ETRN argument (ETRN only). */
  readonly etrnDomain?: string;
  /** SMTP or ESMTP. */
  readonly protocol: 'SMTP' | 'ESMTP';
  /** The client sent a command ahead of time where that is not allowed (reject_unauth_pipelining). */
  readonly improperPipelining: boolean;
  /** Session id (logs, policy service `instance`). */
  readonly sessionId: string;
}

/** The client's DNS names, as smtpd(8) computes them once per session. */
export interface ClientNames {
  /** The PTR name, or 'unknown'; `reverseStatus` says why it is unknown. */
  readonly reverseName: string;
  readonly reverseStatus: 'ok' | 'not-found' | 'temporary';
  /** The PTR name when it resolves back to the client address (FCrDNS), else 'unknown'. */
  readonly name: string;
  readonly nameStatus: 'ok' | 'not-found' | 'temporary';
}

/** Per-session state that restrictions share: memoized lookups and headers to prepend. */
export interface RestrictionSession {
  /** The client names (one PTR and forward lookup per session). */
  clientNames(): Promise<ClientNames>;
  /** Adds a header (one line, no CRLF) to the message of this transaction (PREPEND, Received-SPF). */
  prepend(header: string): void;
  /**
   * The SPF outcome of this transaction: `check` runs once per MAIL FROM, its
   * Received-SPF header is prepended once.
   */
  spf(check: () => Promise<SpfOutcome>): Promise<SpfOutcome>;
}

/** The noun Postfix puts before "rejected" for each list's subject. */
export type RejectSubject = 'Client host' | 'Helo command' | 'Sender address' | 'Recipient address' | 'Data command' | 'Etrn command';

/**
 * A reject reply as smtpd(8) words it: `CODE ENH <what>: Subject rejected: text`
 * (`what` omitted when empty). An enhanced code at the head of `text` wins over
 * `enhanced` (access(5): `550 5.1.1 text`).
 */
export function rejectReply(code: number, enhanced: string, what: string, subject: RejectSubject, text: string): SmtpReply {
  const own = /^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(text);
  const detail = own ? own[2]! : text;
  let status = own ? own[1]! : enhanced;
  // The class digit of the enhanced code follows the reply code (RFC 3463 §2).
  status = `${String(code)[0]}${status.slice(1)}`;
  return { code, enhanced: status, text: `${what === '' ? '' : `<${what}>: `}${subject} rejected: ${detail}` };
}

/** What restrictions may use besides the request: settings and services of the stage. */
export interface RestrictionEnvironment {
  readonly relay: RelayPolicy;
  readonly relayRecipientMaps: readonly LookupTable[];
  /** `smtpd_access_maps` is in parent_domain_matches_subdomains: `example.com` also matches sub.example.com. */
  readonly accessMapsMatchSubdomains: boolean;
  readonly rblReplyMaps: readonly LookupTable[];
  /** virtual_alias_maps: a recipient with an alias is listed (reject_unlisted_recipient). */
  readonly virtualAliasMaps: readonly LookupTable[];
  /** smtpd_restriction_classes, parsed. */
  readonly classes: ReadonlyMap<string, readonly ParsedRestriction[]>;
  /** An opened table by spec (for restriction words in access table answers). */
  table(spec: string): LookupTable | string;
  readonly resolver: DnsResolver;
  readonly log: Logger;
  /** The client of check_policy_service for `target` (inet:host:port or unix:path). */
  policyService(target: string): PolicyServiceClient;
  /** SPF for reject_spf_fail; undefined: the restriction answers dunno and logs once. */
  readonly spf: SpfVerifier | undefined;
  /** Address verification for reject_unverified_recipient. */
  readonly verifier: AddressVerifier | undefined;
}

/** One restriction as written in a list, with everything it needs bound at load. */
export interface ParsedRestriction {
  /** The catalogue name, lower case (restriction-catalogue.ts), or `restriction_class`. */
  readonly name: string;
  /** As written (case kept), for logs. */
  readonly written: string;
  readonly argument?: string;
  /** The opened table of check_*_access. */
  readonly table?: LookupTable;
  /** The `domain[=filter]` of reject_rbl_client / permit_dnswl_client, parsed at load. */
  readonly site?: DnsblSite;
  /** What the restriction does (its catalogue entry's function). */
  readonly run: (call: RestrictionCall) => Promise<RestrictionResult> | RestrictionResult;
}

/** One evaluation of one restriction. */
export interface RestrictionCall {
  readonly env: RestrictionEnvironment;
  readonly session: RestrictionSession;
  readonly request: RestrictionRequest;
  readonly stage: RestrictionStage;
  readonly restriction: ParsedRestriction;
}

/** The `<what>` and subject Postfix names in a reply from a list of `stage`. */
export function subjectOf(call: Pick<RestrictionCall, 'stage' | 'request'>): { what: string; subject: Parameters<typeof rejectReply>[3] } {
  const request = call.request;
  switch (call.stage) {
    case 'client':
      return { what: `unknown[${request.client.address}]`, subject: 'Client host' };
    case 'helo':
      return { what: request.helo, subject: 'Helo command' };
    case 'sender':
      return { what: request.sender ?? '', subject: 'Sender address' };
    case 'relay':
    case 'recipient':
      return { what: request.recipient?.address ?? '', subject: 'Recipient address' };
    case 'data':
      return { what: 'DATA', subject: 'Data command' };
    case 'etrn':
      return { what: request.etrnDomain ?? '', subject: 'Etrn command' };
    default: {
      const never: never = call.stage;
      throw new Error(`unknown restriction stage ${String(never)}`);
    }
  }
}

/*
 * smtpd-settings — the smtpd(8) parameters of main.cf, read once into a typed record.
 *
 * Decides: which parameters the policy stage reads and their units (bytes, ms), the form of
 * smtpd_banner (`host ESMTP text`), that smtpd_tls_cert_file/smtpd_tls_key_file are read and
 * checked as a key pair at start, and that every smtpd_*_restrictions list and
 * smtpd_restriction_classes entry is parsed now; all problems are reported together as one
 * ConfigError with the file:line of each setting.
 * Leaves to others: parameter defaults and types (config/catalogue.ts), table opening
 * (config/config.ts), restriction parsing (restriction-list.ts), using the settings (smtpd.ts).
 * Bugs: the banner's host name is taken as written (any non-blank word), not checked.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { configuredTable, problemAt, restrictionClasses, settingAt } from '../config/config.js';
import type { Config, MatchList } from '../config/value.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { TransportSettings } from '../delivery/transport.js';
import type { LookupTable } from '../tables/lookup-table.js';
import type { RelayPolicy } from './relay-control.js';
import { RESTRICTION_STAGES, type RestrictionStage } from './restriction.js';
import type { ParsedRestriction } from './restriction.js';
import { parseRestrictions } from './restriction-list.js';
import type { VerifySettings } from './address-verify.js';
import type { ProtocolRules } from './smtpd-connection.js';
import type { ContentSettings } from './content-inspection.js';
import { contentLimitsFromConfig, type ContentLimits } from './content-limits.js';

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
  /** smtpd_recipient_limit: accepted RCPTs per transaction (repeated ones too); 0 means no limit. */
  readonly recipientLimit: number;
  /** smtpd_recipient_overshoot_limit: 452s past recipientLimit per transaction that are not counted as errors. */
  readonly recipientOvershootLimit: number;
  /** smtpd_timeout in ms. */
  readonly timeoutMs: number;
  /** smtpd_tls_cert_file/smtpd_tls_key_file contents; undefined hides STARTTLS. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly relay: RelayPolicy;
  /** relay_recipient_maps; empty accepts every recipient of a relay domain. */
  readonly relayRecipientMaps: readonly LookupTable[];
  /** smtpd_*_restrictions, parsed (smtpd_delay_reject = yes: all but data and etrn run at RCPT). */
  readonly restrictions: Readonly<Record<RestrictionStage, readonly ParsedRestriction[]>>;
  /** smtpd_restriction_classes, parsed. */
  readonly classes: ReadonlyMap<string, readonly ParsedRestriction[]>;
  /** Opened tables by spec, for restriction words that access tables answer with. */
  readonly table: (spec: string) => LookupTable | string;
  readonly rejectUnlistedRecipient: boolean;
  /** smtpd_access_maps is in parent_domain_matches_subdomains. */
  readonly accessMapsMatchSubdomains: boolean;
  readonly rblReplyMaps: readonly LookupTable[];
  readonly virtualAliasMaps: readonly LookupTable[];
  /** fast_flush_domains (ETRN) and whether it matches subdomains. */
  readonly fastFlushDomains: MatchList;
  readonly fastFlushMatchSubdomains: boolean;
  /** smtpd(8) protocol rules. */
  readonly protocol: ProtocolRules;
  readonly policyService: { readonly timeoutMs: number; readonly defaultAction: string; readonly queueDirectory: string };
  readonly verify: VerifySettings;
  /** transport_maps and relayhost: where reject_unverified_recipient probes go. */
  readonly transport: TransportSettings;
  /** header_checks, mime_header_checks, nested_header_checks, mxscreen_blocked_attachment_types. */
  readonly content: ContentSettings;
  /** cleanup(8) safety limits: header_size_limit, mime_nesting_limit, mime_boundary_length_limit, mxscreen_*_count_limit. */
  readonly limits: ContentLimits;
}

/**
 * Reads the smtpd(8) parameters from `config`: smtpd_banner (`host ESMTP text`),
 * myhostname, mail_name, message_size_limit (bytes), smtpd_recipient_limit,
 * smtpd_recipient_overshoot_limit,
 * smtpd_timeout (ms), smtpd_tls_cert_file/smtpd_tls_key_file (read now, relative to the
 * config directory), mynetworks, relay_domains, parent_domain_matches_subdomains,
 * relay_recipient_maps. Throws ConfigError (file:line of the setting) for a banner not of
 * the form `host ESMTP …`, or TLS files that cannot be read or do not form a key pair.
 */
export function smtpdSettingsFromConfig(config: Config): SmtpdSettings {
  const problems: ConfigProblem[] = [];
  const banner = readBanner(config, problems);
  const tlsFiles = readTlsFiles(config, problems);
  const table = (spec: string): LookupTable | string => {
    try {
      return configuredTable(config, spec);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((problem) => problem.message).join('; ');
      throw error;
    }
  };
  const { restrictions, classes } = readRestrictions(config, table, problems);
  if (problems.length > 0 || banner === undefined) throw new ConfigError(problems);
  const parentMatching = config.get('parent_domain_matches_subdomains');
  return {
    greetingHost: banner.host,
    greetingText: banner.text,
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name'),
    messageSizeLimit: config.get('message_size_limit'),
    recipientLimit: config.get('smtpd_recipient_limit'),
    recipientOvershootLimit: config.get('smtpd_recipient_overshoot_limit'),
    timeoutMs: config.get('smtpd_timeout'),
    tls: tlsFiles,
    relay: {
      mynetworks: config.get('mynetworks'),
      relayDomains: config.get('relay_domains'),
      relayDomainsMatchSubdomains: parentMatching.includes('relay_domains'),
    },
    relayRecipientMaps: config.get('relay_recipient_maps'),
    restrictions,
    classes,
    table,
    rejectUnlistedRecipient: config.get('smtpd_reject_unlisted_recipient'),
    accessMapsMatchSubdomains: parentMatching.includes('smtpd_access_maps'),
    rblReplyMaps: config.get('rbl_reply_maps'),
    virtualAliasMaps: config.get('virtual_alias_maps'),
    fastFlushDomains: config.get('fast_flush_domains'),
    fastFlushMatchSubdomains: parentMatching.includes('fast_flush_domains'),
    policyService: {
      timeoutMs: config.get('smtpd_policy_service_timeout'),
      defaultAction: config.get('smtpd_policy_service_default_action'),
      queueDirectory: config.resolvePath(config.get('queue_directory')),
    },
    transport: { transportMaps: config.get('transport_maps'), relayhost: config.get('relayhost'), transportMapsMatchSubdomains: parentMatching.includes('transport_maps') },
    ...parameterGroups(config),
    limits: contentLimitsFromConfig(config),
  };
}

/** smtpd_banner as `host ESMTP text`; undefined (and a problem) when it is not of that form. */
function readBanner(config: Config, problems: ConfigProblem[]): { host: string; text: string } | undefined {
  const match = /^(\S+)\s+ESMTP(?:\s+(.*))?$/.exec(config.get('smtpd_banner').trim());
  if (!match) {
    problems.push(problemAt(config, 'smtpd_banner', 'must begin with a host name followed by ESMTP'));
    return undefined;
  }
  return { host: match[1]!, text: (match[2] ?? '').trim() };
}

/** smtpd_tls_cert_file and smtpd_tls_key_file, read and checked as a key pair now; undefined when either is empty. */
function readTlsFiles(config: Config, problems: ConfigProblem[]): SmtpdSettings['tls'] {
  const certFile = config.get('smtpd_tls_cert_file').trim();
  const keyFile = config.get('smtpd_tls_key_file').trim();
  if (certFile === '' || keyFile === '') return undefined;
  try {
    const cert = readFileSync(config.resolvePath(certFile));
    const key = readFileSync(config.resolvePath(keyFile));
    tls.createSecureContext({ cert, key }); // a mismatched pair fails here, at start
    return { cert, key };
  } catch (error) {
    problems.push(problemAt(config, 'smtpd_tls_cert_file', `cannot use ${certFile} and ${keyFile}: ${(error as Error).message}`));
    return undefined;
  }
}

/** Every smtpd_*_restrictions list and smtpd_restriction_classes entry, parsed; their problems at their settings. */
function readRestrictions(config: Config, table: (spec: string) => LookupTable | string, problems: ConfigProblem[]): Pick<SmtpdSettings, 'restrictions' | 'classes'> {
  const classDefinitions = restrictionClasses(config);
  const parseContext = { table, classes: new Set(classDefinitions.keys()) };
  const restrictions = {} as Record<RestrictionStage, readonly ParsedRestriction[]>;
  for (const stage of RESTRICTION_STAGES) {
    const parameter = `smtpd_${stage}_restrictions` as const;
    const parsed = parseRestrictions(config.get(parameter), parseContext, { ...settingAt(config, parameter), parameter });
    problems.push(...parsed.problems);
    restrictions[stage] = parsed.restrictions;
  }
  const classes = new Map<string, readonly ParsedRestriction[]>();
  for (const definition of classDefinitions.values()) {
    const parsed = parseRestrictions(definition.words, parseContext, { file: definition.file, line: definition.line, parameter: definition.name });
    problems.push(...parsed.problems);
    classes.set(definition.name, parsed.restrictions);
  }
  return { restrictions, classes };
}

/**
 * The groups read as main.cf has them: smtpd(8)'s protocol rules, verify(8)'s cache times,
 * polling and reply code with mxscreen's cache and probe limits, and the content checks
 * (the header_checks tables, mxscreen_blocked_attachment_types in lower case).
 */
function parameterGroups(config: Config): Pick<SmtpdSettings, 'protocol' | 'verify' | 'content'> {
  return {
    protocol: {
      heloRequired: config.get('smtpd_helo_required'),
      strictEnvelopes: config.get('strict_rfc821_envelopes'),
      vrfyDisabled: config.get('disable_vrfy_command'),
      forbiddenCommands: config.get('smtpd_forbidden_commands').map((word) => word.toUpperCase()),
      softErrorLimit: config.get('smtpd_soft_error_limit'),
      hardErrorLimit: config.get('smtpd_hard_error_limit'),
      errorSleepMs: config.get('smtpd_error_sleep_time'),
    },
    verify: {
      positiveExpire: config.get('address_verify_positive_expire_time'),
      positiveRefresh: config.get('address_verify_positive_refresh_time'),
      negativeExpire: config.get('address_verify_negative_expire_time'),
      negativeRefresh: config.get('address_verify_negative_refresh_time'),
      pollCount: config.get('address_verify_poll_count'),
      pollDelay: config.get('address_verify_poll_delay'),
      rejectCode: config.get('unverified_recipient_reject_code'),
      cacheSize: config.get('mxscreen_verify_cache_size'),
      probeLimit: config.get('mxscreen_verify_probe_limit'),
    },
    content: {
      tables: {
        header_checks: config.get('header_checks'),
        mime_header_checks: config.get('mime_header_checks'),
        nested_header_checks: config.get('nested_header_checks'),
      },
      blockedTypes: config.get('mxscreen_blocked_attachment_types').map((type) => type.toLowerCase()),
    },
  };
}

/*
 * screen-settings — the postscreen(8) parameters of main.cf, read once into a typed record.
 *
 * Decides: which parameters the screen stage reads and their units (ms, bytes, entries);
 * that postscreen_dnsbl_sites entries are parsed now (dnsbl/dnsbl-site.ts), the
 * postscreen_access_list elements now with the tables the configuration opened at load,
 * postscreen_upstream_proxy_protocol is haproxy or empty; postscreen_forbidden_commands
 * upper-case; the deep tests enabled by postscreen_*_enable; what postscreen's own engine
 * announces (smtpd_banner, myhostname, message_size_limit, disable_vrfy_command,
 * smtpd_helo_required); the verdict cache's size, retention, cleanup interval and store
 * (postscreen_cache_map, cache-map.ts: a redis: client file is read here). Every
 * problem is reported together as one ConfigError with the file:line of each setting.
 * Leaves to others: parameter defaults and types (config/catalogue.ts), table opening
 * (config/config.ts), using the settings (screener.ts, screen-stage.ts).
 */
import { configuredTable, problemAt, settingAt } from '../config/config.js';
import type { Action, Config, MatchList } from '../config/value.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { parseDnsblSite, type DnsblSite } from '../dnsbl/dnsbl-site.js';
import { parseAccessList, type AccessList } from './access-list.js';
import { readCacheMap, type CacheMap } from './cache-map.js';
import type { BuiltinSmtpdProfile } from './builtin-smtpd.js';
import type { LimitSettings } from './connection-limits.js';
import type { DeepTest } from './deep-tests.js';

/** Everything the screener reads from main.cf, typed (units in the names). */
export interface ScreenSettings {
  /** postscreen_greet_wait, ms. */
  readonly greetWaitMs: number;
  /** postscreen_greet_banner; empty = no teaser line. */
  readonly greetBanner: string;
  /** postscreen_greet_action. */
  readonly greetAction: Action;
  /** postscreen_greet_ttl, ms. */
  readonly greetTtlMs: number;
  /** postscreen_dnsbl_sites, parsed; empty = no DNSBL test. */
  readonly dnsblSites: readonly DnsblSite[];
  /** postscreen_dnsbl_threshold: the test fails when rank ≥ threshold. */
  readonly dnsblThreshold: number;
  /** postscreen_dnsbl_action. */
  readonly dnsblAction: Action;
  /** postscreen_dnsbl_timeout, ms: a later answer counts as a DNS error. */
  readonly dnsblTimeoutMs: number;
  /** postscreen_dnsbl_min_ttl, ms. */
  readonly dnsblMinTtlMs: number;
  /** postscreen_dnsbl_max_ttl, ms. */
  readonly dnsblMaxTtlMs: number;
  /** postscreen_denylist_action (old name postscreen_blacklist_action). */
  readonly denylistAction: Action;
  /** postscreen_access_list, parsed with its tables open. */
  readonly accessList: AccessList;
  /** mynetworks, for permit_mynetworks. */
  readonly mynetworks: MatchList;
  /** postscreen_dnsbl_allowlist_threshold: a rank ≤ this (< 0) passes every test; 0 = off. */
  readonly dnsblAllowlistThreshold: number;
  /** postscreen_dnsbl_reply_map: domain → the name shown in replies and INFO logs. */
  readonly dnsblReplyMap: readonly LookupTable[];
  /** postscreen_allowlist_interfaces: local addresses where a new client may pass (elsewhere: ALLOWLIST VETO). */
  readonly allowlistInterfaces: MatchList;
  /** What postscreen's own SMTP engine announces, for vetoed clients. */
  readonly engine: BuiltinSmtpdProfile;
  /** Per-client connection count and queue limits. */
  readonly limits: LimitSettings;
  /** postscreen_upstream_proxy_protocol = haproxy. */
  readonly proxyProtocol: boolean;
  /** postscreen_upstream_proxy_timeout, ms. */
  readonly proxyTimeoutMs: number;
  /** The deep tests enabled (postscreen_*_enable). */
  readonly deepTests: ReadonlySet<DeepTest>;
  /** postscreen_pipelining_action, …_non_smtp_command_action, …_bare_newline_action. */
  readonly deepActions: Readonly<Record<DeepTest, Action>>;
  /** postscreen_*_ttl of the deep tests, ms. */
  readonly deepTtlMs: Readonly<Record<DeepTest, number>>;
  /** postscreen_forbidden_commands, upper-case. */
  readonly forbiddenCommands: readonly string[];
  /** postscreen_command_count_limit. */
  readonly commandCountLimit: number;
  /** postscreen_command_time_limit, ms. */
  readonly commandTimeLimitMs: number;
  /** line_length_limit, bytes. */
  readonly lineLengthLimit: number;
  /** myhostname, in 421 replies. */
  readonly myhostname: string;
}

/** The screen stage's settings: the screener's, and its verdict cache's. */
export interface ScreenStageSettings {
  readonly screener: ScreenSettings;
  readonly cache: {
    /** mxscreen_verdict_cache_size, entries (a reload does not change it). */
    readonly maxEntries: number;
    /** postscreen_cache_retention_time, ms (a reload does not change it). */
    readonly retentionMs: number;
    /** postscreen_cache_cleanup_interval, ms; 0 = no cleanup (of the near cache, with Redis). */
    readonly cleanupIntervalMs: number;
    /** postscreen_cache_map: the embedded cache, or Redis with its client file read (a reload does not change it). */
    readonly map: CacheMap;
  };
}

/** The screen stage's settings from `config`; throws ConfigError as screenSettingsFromConfig. */
export function screenStageSettingsFromConfig(config: Config): ScreenStageSettings {
  const problems: ConfigProblem[] = [];
  let screener: ScreenSettings | undefined;
  try {
    screener = screenSettingsFromConfig(config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  // The Redis client file is read at every load (start, check-config, reload): a bad one is a problem at its file:line.
  const cacheMap = readCacheMap(config.get('postscreen_cache_map'), config.directory, settingAt(config, 'postscreen_cache_map'));
  problems.push(...cacheMap.problems);
  if (problems.length > 0 || screener === undefined) throw new ConfigError(problems);
  return {
    screener,
    cache: {
      maxEntries: config.get('mxscreen_verdict_cache_size'),
      retentionMs: config.get('postscreen_cache_retention_time'),
      cleanupIntervalMs: config.get('postscreen_cache_cleanup_interval'),
      map: cacheMap.map,
    },
  };
}

/**
 * Reads the screen settings from `config`, taking the postscreen_access_list tables the
 * configuration opened at load (config.ts configuredTable). Throws ConfigError listing every bad
 * postscreen_dnsbl_sites entry and access list element with the file:line of the setting.
 */
export function screenSettingsFromConfig(config: Config): ScreenSettings {
  const problems: ConfigProblem[] = [];
  const dnsblSites = readDnsblSites(config, problems);
  const accessList = readAccessList(config, problems);
  const proxyProtocol = readProxyProtocol(config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ...earlyTestSettings(config),
    dnsblSites,
    accessList,
    mynetworks: config.get('mynetworks'),
    allowlistInterfaces: config.get('postscreen_allowlist_interfaces'),
    engine: {
      banner: config.get('smtpd_banner'),
      hostname: config.get('myhostname'),
      messageSizeLimit: config.get('message_size_limit'),
      disableVrfy: config.get('disable_vrfy_command'),
      heloRequired: config.get('smtpd_helo_required'),
    },
    limits: {
      clientConnectionCountLimit: config.get('postscreen_client_connection_count_limit'),
      preQueueLimit: config.get('postscreen_pre_queue_limit'),
      postQueueLimit: config.get('postscreen_post_queue_limit'),
    },
    proxyProtocol,
    proxyTimeoutMs: config.get('postscreen_upstream_proxy_timeout'),
    ...deepTestSettings(config),
    lineLengthLimit: config.get('line_length_limit'),
    myhostname: config.get('myhostname'),
  };
}

/** The scalar settings of the tests before the greeting: greet wait, pregreet, DNSBL, denylist. */
function earlyTestSettings(config: Config) {
  return {
    greetWaitMs: config.get('postscreen_greet_wait'),
    greetBanner: config.get('postscreen_greet_banner'),
    greetAction: config.get('postscreen_greet_action'),
    greetTtlMs: config.get('postscreen_greet_ttl'),
    dnsblThreshold: config.get('postscreen_dnsbl_threshold'),
    dnsblAction: config.get('postscreen_dnsbl_action'),
    dnsblTimeoutMs: config.get('postscreen_dnsbl_timeout'),
    dnsblMinTtlMs: config.get('postscreen_dnsbl_min_ttl'),
    dnsblMaxTtlMs: config.get('postscreen_dnsbl_max_ttl'),
    dnsblAllowlistThreshold: config.get('postscreen_dnsbl_allowlist_threshold'),
    dnsblReplyMap: config.get('postscreen_dnsbl_reply_map'),
    denylistAction: config.get('postscreen_denylist_action'),
  } satisfies Partial<ScreenSettings>;
}

/** The settings of the tests after the greeting (deep-tests.ts) and of their command limits. */
function deepTestSettings(config: Config) {
  const deepTests = new Set<DeepTest>();
  if (config.get('postscreen_pipelining_enable')) deepTests.add('pipelining');
  if (config.get('postscreen_non_smtp_command_enable')) deepTests.add('non_smtp_command');
  if (config.get('postscreen_bare_newline_enable')) deepTests.add('bare_newline');
  return {
    deepTests,
    deepActions: {
      pipelining: config.get('postscreen_pipelining_action'),
      non_smtp_command: config.get('postscreen_non_smtp_command_action'),
      bare_newline: config.get('postscreen_bare_newline_action'),
    },
    deepTtlMs: {
      pipelining: config.get('postscreen_pipelining_ttl'),
      non_smtp_command: config.get('postscreen_non_smtp_command_ttl'),
      bare_newline: config.get('postscreen_bare_newline_ttl'),
    },
    forbiddenCommands: config.get('postscreen_forbidden_commands').map((word) => word.toUpperCase()),
    commandCountLimit: config.get('postscreen_command_count_limit'),
    commandTimeLimitMs: config.get('postscreen_command_time_limit'),
  } satisfies Partial<ScreenSettings>;
}

/** postscreen_dnsbl_sites, parsed; each bad entry is a problem at the setting. */
function readDnsblSites(config: Config, problems: ConfigProblem[]): DnsblSite[] {
  const sites: DnsblSite[] = [];
  for (const text of config.get('postscreen_dnsbl_sites')) {
    const site = parseDnsblSite(text);
    if ('error' in site) problems.push(problemAt(config, 'postscreen_dnsbl_sites', site.error));
    else sites.push(site);
  }
  return sites;
}

/** postscreen_access_list with its tables; unknown elements and table problems are problems. */
function readAccessList(config: Config, problems: ConfigProblem[]): AccessList {
  try {
    const parsed = parseAccessList(config.get('postscreen_access_list'), (spec) => configuredTable(config, spec));
    for (const problem of parsed.problems) problems.push({ ...settingAt(config, 'postscreen_access_list'), message: problem });
    return parsed.list;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
    return { elements: [] };
  }
}

/** postscreen_upstream_proxy_protocol: true for haproxy, false for empty, else a problem. */
function readProxyProtocol(config: Config, problems: ConfigProblem[]): boolean {
  const proxy = config.get('postscreen_upstream_proxy_protocol').trim();
  if (proxy !== '' && proxy !== 'haproxy') problems.push(problemAt(config, 'postscreen_upstream_proxy_protocol', `unsupported protocol "${proxy}" (expected haproxy or empty)`));
  return proxy === 'haproxy';
}

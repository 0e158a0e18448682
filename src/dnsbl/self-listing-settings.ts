/*
 * self-listing-settings — the self-listing monitor's parameters of main.cf, read once.
 *
 * Decides: our addresses (mxscreen_self_listing_addresses; IPv4 or IPv6, `::ffff:a.b.c.d`
 * as the IPv4 address it stands for; parameter-checks.ts reports a bad one with file:line),
 * the sites (mxscreen_self_listing_sites, default $postscreen_dnsbl_sites: the domains of
 * the entries with a positive weight, without =filter and *weight, since dnsbl says only
 * listed or not; a DNSWL entry is skipped), each shown through postscreen_dnsbl_reply_map
 * (a DQS key never reaches a metric label), the interval, the DNS servers
 * (mxscreen_dns_servers) and the time limit (postscreen_dnsbl_timeout). Off when there is
 * no address or no site.
 * Leaves to others: the round (self-listing.ts) and its schedule (self-listing-monitor.ts).
 */
import { problemAt } from '../config/config.js';
import type { Config } from '../config/value.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { dnsblDisplayName } from './dnsbl-reply-map.js';
import { parseDnsblSite } from './dnsbl-site.js';
import type { SelfListingSite } from './self-listing.js';

export interface SelfListingSettings {
  /** Our public addresses, normalized; empty = the monitor is off. */
  readonly addresses: readonly string[];
  /** DNSBL sites (positive weight only), each once; empty = off. */
  readonly sites: readonly SelfListingSite[];
  /** mxscreen_self_listing_interval, ms between rounds. */
  readonly intervalMs: number;
  /** mxscreen_dns_servers; empty = the system resolver. */
  readonly servers: readonly string[];
  /** postscreen_dnsbl_timeout, ms. */
  readonly timeoutMs: number;
}

/** The sites of `entries` (postscreen_dnsbl_sites syntax): positive weights, domains once; bad entries are reported to `problem`. */
export function selfListingSites(entries: readonly string[], shown: (domain: string) => string, problem: (message: string) => void): SelfListingSite[] {
  const sites: SelfListingSite[] = [];
  for (const entry of entries) {
    const site = parseDnsblSite(entry);
    if ('error' in site) problem(site.error);
    else if (site.weight > 0 && !sites.some((known) => known.domain === site.domain)) sites.push({ domain: site.domain, shown: shown(site.domain) });
  }
  return sites;
}

/**
 * Reads the settings from `config`. Throws ConfigError with the file:line of
 * mxscreen_self_listing_sites for a bad entry set there (a bad entry that comes from
 * $postscreen_dnsbl_sites is the screen stage's to report) or an interval of 0.
 */
export function selfListingSettingsFromConfig(config: Config): SelfListingSettings {
  const problems: ConfigProblem[] = [];
  const explicit = config.where('mxscreen_self_listing_sites') !== 'default';
  const replyMap = config.get('postscreen_dnsbl_reply_map');
  const sites = selfListingSites(
    config.get('mxscreen_self_listing_sites'),
    (domain) => dnsblDisplayName(replyMap, domain),
    (message) => {
      if (explicit) problems.push(problemAt(config, 'mxscreen_self_listing_sites', message));
    },
  );
  const intervalMs = config.get('mxscreen_self_listing_interval');
  if (intervalMs <= 0) problems.push(problemAt(config, 'mxscreen_self_listing_interval', 'must be more than 0'));
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    addresses: [...new Set(config.get('mxscreen_self_listing_addresses').map((address) => unmapIpv4(address).toLowerCase()))],
    sites,
    intervalMs,
    servers: config.get('mxscreen_dns_servers'),
    timeoutMs: config.get('postscreen_dnsbl_timeout'),
  };
}

/*
 * rbl-check — `mxscreen rbl-check`: one self-listing round, printed as a table, with a
 * check_rbl-style exit status for cron and Nagios-style monitors.
 *
 * Decides: the table (one line per address × site: `listed`, with the site's TXT reason
 * when it gives one, `not listed`, or `could not check` with why) and the exit status:
 * 1 when any pair is listed (a listing is a fact to act on, whatever other sites could
 * not tell), else 2 when any pair could not be checked, else 0. What is checked: the
 * addresses given, else mxscreen_self_listing_addresses; the `--site` domains given, else
 * mxscreen_self_listing_sites; servers and time limit from main.cf when there is one.
 * Leaves to others: the round (self-listing.ts), option parsing and usage errors (cli.ts).
 */
import { isIP } from 'node:net';
import { loadConfig } from '../config/config.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { checkSelfListing, type DnsblPackage, type Listing, type SelfListingRound } from './self-listing.js';
import { selfListingSettingsFromConfig, selfListingSites } from './self-listing-settings.js';

/** Exit statuses of rbl-check (check_rbl's OK / listed / could not tell). */
export const RBL_CHECK_EXIT = { clean: 0, listed: 1, couldNotCheck: 2 } as const;

/** What a round means as an exit status: listed (1) before could not check (2) before clean (0). */
export function rblCheckExitStatus(round: SelfListingRound): number {
  if (round.pairs.some((pair) => pair.listing.kind === 'listed')) return RBL_CHECK_EXIT.listed;
  if (round.pairs.some((pair) => pair.listing.kind === 'could-not-check')) return RBL_CHECK_EXIT.couldNotCheck;
  return RBL_CHECK_EXIT.clean;
}

function describe(listing: Listing): string {
  switch (listing.kind) {
    case 'listed':
      return listing.reason === undefined ? 'listed' : `listed (${listing.reason})`;
    case 'not-listed':
      return 'not listed';
    case 'could-not-check':
      return `could not check (${listing.why})`;
    default:
      return listing satisfies never;
  }
}

/** The table: a header line, then one line per pair, columns padded with spaces. */
export function formatRblCheck(round: SelfListingRound): string {
  const rows = [['address', 'site', 'result'], ...round.pairs.map((pair) => [pair.address, pair.site.shown, describe(pair.listing)])];
  const width = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `${row[0]!.padEnd(width[0]!)}  ${row[1]!.padEnd(width[1]!)}  ${row[2]}\n`).join('');
}

export interface RblCheckRequest {
  /** main.cf, or undefined (then addresses and sites must be given). */
  readonly configFile: string | undefined;
  readonly addresses: readonly string[];
  readonly sites: readonly string[];
}

/** A request rbl-check cannot run (cli.ts turns it into a usage error). */
export class RblCheckUsage extends Error {}

/**
 * Runs the check. Throws RblCheckUsage for a bad address or nothing to check, ConfigError
 * for a bad main.cf. Resolves the table and the exit status.
 */
export async function rblCheck(request: RblCheckRequest, packaged?: DnsblPackage): Promise<{ text: string; status: number }> {
  for (const address of request.addresses) if (isIP(address) === 0) throw new RblCheckUsage(`bad address "${address}" (expected an IPv4 or IPv6 address)`);
  const config = request.configFile === undefined ? undefined : loadConfig(request.configFile);
  const settings = config && selfListingSettingsFromConfig(config);
  const addresses = request.addresses.length > 0 ? [...new Set(request.addresses.map((a) => unmapIpv4(a).toLowerCase()))] : (settings?.addresses ?? []);
  const problems: string[] = [];
  const sites = request.sites.length > 0 ? selfListingSites(request.sites, (domain) => domain, (message) => problems.push(message)) : (settings?.sites ?? []);
  if (problems.length > 0) throw new RblCheckUsage(problems.join('; '));
  if (addresses.length === 0) throw new RblCheckUsage('no address to check: give ADDRESS… or set mxscreen_self_listing_addresses in main.cf (-c FILE)');
  if (sites.length === 0) throw new RblCheckUsage('no DNSBL site to check: give --site DOMAIN or set mxscreen_self_listing_sites / postscreen_dnsbl_sites in main.cf (-c FILE)');
  const round = await checkSelfListing({ addresses, sites, servers: settings?.servers ?? [], timeoutMs: settings?.timeoutMs ?? 10_000 }, packaged);
  return { text: formatRblCheck(round), status: rblCheckExitStatus(round) };
}

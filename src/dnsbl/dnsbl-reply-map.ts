/*
 * dnsbl-reply-map — the name a DNSBL domain is shown by (postscreen_dnsbl_reply_map).
 *
 * Decides (postconf(5) postscreen_dnsbl_reply_map): a domain found in the tables is shown
 * by the table's value, in replies, log lines and metric labels, so that a domain with a
 * secret key in it (Spamhaus DQS `KEY.zen.dq.spamhaus.net`) never reaches a client, a log
 * or a dashboard; any other domain is shown as itself.
 * Leaves to others: opening the tables (config), where the name is used (screen/).
 */
import type { LookupTable } from '../tables/lookup-table.js';

/** The name shown for DNSBL `domain`: its postscreen_dnsbl_reply_map value, else the domain. */
export function dnsblDisplayName(replyMap: readonly LookupTable[], domain: string): string {
  for (const table of replyMap) {
    const shown = table.lookup(domain)?.trim();
    if (shown) return shown;
  }
  return domain;
}

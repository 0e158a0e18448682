/*
 * dnsbl-package — the types of the npm `dnsbl` package (4.x ships JavaScript only), for
 * the part self-listing.ts uses: `batch` and `lookup` with `servers`, `timeout`,
 * `concurrency`, `includeTxt` (its README, "API"; index.js).
 * Leaves to others: what the answers mean (self-listing.ts).
 * Bugs: written by hand from dnsbl 4.0.3's index.js; check it on a major upgrade.
 */
declare module 'dnsbl' {
  export interface DnsblOptions {
    /** DNS servers, `ip` or `ip:port`. Omitted: OpenDNS's public resolvers; a falsy value: the system resolver. */
    readonly servers?: string | readonly string[] | null;
    /** ms; on expiry the package cancels every query of its resolver, and they read as not listed. Default 5000. */
    readonly timeout?: number;
    /** Queries at once (batch). Default 64. */
    readonly concurrency?: number;
    /** Also ask TXT; a listing without TXT then reads as not listed. Default false. */
    readonly includeTxt?: boolean;
  }
  export interface DnsblTxtAnswer {
    readonly listed: boolean;
    /** TXT records, each as its character-strings. */
    readonly txt: string[][];
  }
  export interface DnsblBatchItem {
    readonly blacklist: string;
    readonly address: string;
    readonly listed: boolean;
    readonly txt?: string[][];
  }
  export function lookup(address: string, blacklist: string, options: DnsblOptions & { readonly includeTxt: true }): Promise<DnsblTxtAnswer>;
  export function lookup(address: string, blacklist: string, options?: DnsblOptions): Promise<boolean>;
  export function batch(addresses: string | readonly string[], blacklists: string | readonly string[], options?: DnsblOptions): Promise<DnsblBatchItem[]>;
}

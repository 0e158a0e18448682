/*
 * reloadable-resolver — the DnsResolver of a running mxscreen, rebuilt when a reload
 * changes mxscreen_dns_servers or postscreen_dnsbl_timeout.
 *
 * Decides: each lookup goes to the node:dns resolver for the servers and time limit in
 * force when the lookup starts (one started before a reload finishes on the old one); a
 * reload with the same servers and time limit keeps the resolver it has.
 * Leaves to others: the lookups themselves (node-resolver.ts), when to reload (main.ts).
 */
import { createNodeResolver, type NodeResolverOptions } from './node-resolver.js';
import type { AddressAnswer, DnsResolver, MxAnswer } from './resolver.js';

export class ReloadableResolver implements DnsResolver {
  #options: NodeResolverOptions;
  #current: DnsResolver;

  /** Throws DnsError kind `other` for a malformed server address (createNodeResolver). */
  constructor(options: NodeResolverOptions) {
    this.#options = options;
    this.#current = createNodeResolver(options);
  }

  /**
   * Lookups from now on use `options`. Returns true when the resolver was rebuilt, false
   * when the servers, time limit and tries are unchanged. Throws DnsError kind `other` for
   * a malformed server address, keeping the resolver in force.
   */
  configure(options: NodeResolverOptions): boolean {
    const same =
      options.timeoutMs === this.#options.timeoutMs &&
      options.tries === this.#options.tries &&
      options.servers.length === this.#options.servers.length &&
      options.servers.every((server, index) => server === this.#options.servers[index]);
    if (same) return false;
    this.#current = createNodeResolver(options);
    this.#options = options;
    return true;
  }

  resolve4(name: string): Promise<AddressAnswer[]> {
    return this.#current.resolve4(name);
  }

  resolve6(name: string): Promise<AddressAnswer[]> {
    return this.#current.resolve6(name);
  }

  resolveMx(name: string): Promise<MxAnswer[]> {
    return this.#current.resolveMx(name);
  }

  reverse(address: string): Promise<string[]> {
    return this.#current.reverse(address);
  }

  resolveTxt(name: string): Promise<string[][]> {
    return this.#current.resolveTxt(name);
  }
}

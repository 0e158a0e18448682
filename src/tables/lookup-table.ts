/*
 * lookup-table — the one interface every Postfix-style lookup table implements.
 *
 * Decides: the contract between a table (cidr:, hash:/texthash:, regexp:/pcre:, inline:)
 * and its users: a synchronous lookup of one key that returns the right-hand side or
 * undefined. How a table matches a key (exact, network, pattern) is the table's own
 * business, described at the head of its file and in Postfix's cidr_table(5),
 * regexp_table(5), access(5).
 * Leaves to others: opening a table from `type:name` (open-table.ts), and the order in
 * which callers try keys (user@domain, then domain, then @domain: the caller's policy).
 */

export interface LookupTable {
  /** The table as configured, `type:name`, for logs and errors. */
  readonly spec: string;
  /** The right-hand side for `key`, or undefined when nothing matches. Never throws. */
  lookup(key: string): string | undefined;
  /**
   * Like lookup, with the table file line of the rule that matched (for logs such as
   * header_checks rejects); tables that have no lines (inline:, static:) leave it out.
   */
  find?(key: string): { readonly value: string; readonly line: number } | undefined;
}

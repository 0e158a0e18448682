/*
 * value — the typed value of each kind of configuration parameter.
 *
 * Decides: what `config.get(name)` returns for each ParameterKind, so that the type of a
 * parameter's value follows from its catalogue entry at compile time.
 * Leaves to others: parsing (main-cf.ts, config.ts) and the catalogue itself.
 */
import type { KindOf, ParameterKind, ParameterName } from './catalogue.js';
import type { LookupTable } from '../tables/lookup-table.js';

/** postscreen(8) test action. */
export type Action = 'ignore' | 'enforce' | 'drop';

/**
 * A Postfix "match list" (relay_domains, mynetworks): literal patterns in the order
 * written, and the tables among them (only a table's keys count: a pattern matches when
 * the table has a right-hand side for it).
 */
export interface MatchList {
  readonly patterns: readonly string[];
  readonly tables: readonly LookupTable[];
}

export interface KindValue {
  string: string;
  list: readonly string[];
  boolean: boolean;
  /** milliseconds */
  time: number;
  /** bytes */
  size: number;
  integer: number;
  action: Action;
  tables: readonly LookupTable[];
  'match-list': MatchList;
}

/** The typed value of parameter `N`. */
export type ParameterValue<N extends ParameterName> = KindValue[KindOf<N> & ParameterKind];

/** A loaded, validated configuration. Immutable: a reload builds a new one. */
export interface Config {
  /** Absolute path of the main.cf file this configuration came from. */
  readonly file: string;
  /** Directory against which relative paths (tables, queue_directory) are resolved. */
  readonly directory: string;
  /** Typed, $-expanded value of a parameter (its default when main.cf does not set it). */
  get<N extends ParameterName>(name: N): ParameterValue<N>;
  /** `file:line` where the parameter was set, or `default` when it was not. */
  where(name: ParameterName): string;
  /** Resolves a path from the configuration against `directory`. */
  resolvePath(path: string): string;
}

/*
 * policy-tables — in-memory lookup tables and match lists for the policy tests.
 *
 * Decides: nothing; builds LookupTable and MatchList values from plain objects so a test
 * table reads like the Postfix table it stands for.
 */
import type { MatchList } from '../../src/config/value.js';
import type { LookupTable } from '../../src/tables/lookup-table.js';

/** A table `spec` whose keys (lower-cased) map to their right-hand sides. */
export function memoryTable(spec: string, entries: Record<string, string>): LookupTable {
  const map = new Map(Object.entries(entries).map(([key, value]) => [key.toLowerCase(), value]));
  return { spec, lookup: (key) => map.get(key.toLowerCase()) };
}

/** A match list of literal patterns and tables, in the order given. */
export function matchList(...items: (string | LookupTable)[]): MatchList {
  return {
    patterns: items.map((item) => (typeof item === 'string' ? item : item.spec)),
    tables: items.filter((item): item is LookupTable => typeof item !== 'string'),
  };
}

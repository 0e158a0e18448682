/*
 * hash-table — indexed Postfix tables (hash:, btree:, lmdb:, cdb:, dbm:, sdbm:) and
 * texthash:, read from the postmap(1) SOURCE text; no .db file, no postmap run.
 *
 * Decides: the source format (`key value` per logical line, key = first word, value = the
 * rest; `#` comment lines; continuation lines start with white space), that keys are
 * lower-cased as postmap(1) does without -f, that lookup lower-cases the key, that the
 * first of duplicate keys wins (postmap warns and ignores later ones).
 * Leaves to others: the order in which callers try keys (user@domain, domain, @domain:
 * access(5), transport(5)); reading the file (open-table.ts).
 * Bugs: exact key lookup only; duplicate keys are not reported.
 */
import type { ConfigProblem } from '../errors.js';
import type { LookupTable } from './lookup-table.js';
import { readTableLines } from '../config/logical-line.js';

/**
 * Reads the source `text` of table `spec` from `file` (used in problems).
 * Returns the table and every problem (a line without a value, a stray continuation);
 * callers must not use the table when problems is non-empty. Never throws.
 */
export function parseHashTable(spec: string, text: string, file: string): { table: LookupTable; problems: ConfigProblem[] } {
  const { lines, problems } = readTableLines(text, file, 'an entry');
  const entries = new Map<string, string>();
  for (const logical of lines) {
    const match = /^(\S+)\s+(\S.*)$/.exec(logical.text);
    if (match === null) {
      problems.push({ file, line: logical.line, message: `expected format: key whitespace value, found "${logical.text}"` });
      continue;
    }
    const key = (match[1] ?? '').toLowerCase();
    if (!entries.has(key)) entries.set(key, (match[2] ?? '').trim());
  }
  return {
    problems,
    table: {
      spec,
      lookup: (key: string): string | undefined => entries.get(key.toLowerCase()),
    },
  };
}

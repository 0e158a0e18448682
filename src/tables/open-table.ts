/*
 * open-table — turns a Postfix table name `type:name` into a LookupTable.
 *
 * Decides: which table types exist (TABLE_TYPES), that file-based names are absolute or
 * relative to the configuration directory, that `proxy:type:name` is `type:name`
 * (proxymap(8) only shares the table in Postfix), and that every problem of a table
 * (unknown type, unreadable file, each bad line with the table's own file:line) stops
 * the opening with one ConfigError listing all of them.
 * Leaves to others: each format (cidr-table.ts, hash-table.ts, regexp-table.ts,
 * inline-table.ts, static-table.ts); caching and reloading tables (config.ts, main.ts).
 * Bugs: indexed types (hash, btree, lmdb, cdb, dbm, sdbm) read the postmap SOURCE file,
 * never the .db; tables are read once (a changed file needs a reload).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { LookupTable } from './lookup-table.js';
import { parseCidrTable } from './cidr-table.js';
import { parseHashTable } from './hash-table.js';
import { parseRegexpTable } from './regexp-table.js';
import { parseInlineTable } from './inline-table.js';
import { staticTable } from './static-table.js';

/** Every table type mxscreen reads (postconf -m). */
export const TABLE_TYPES = [
  'cidr', 'hash', 'btree', 'lmdb', 'cdb', 'dbm', 'sdbm', 'texthash', 'regexp', 'pcre', 'inline', 'static', 'proxy',
] as const;
export type TableType = (typeof TABLE_TYPES)[number];

/** Where a table was named (main.cf file:line); problems that are not in a table file point here. */
export interface TableOrigin {
  readonly file: string;
  readonly line: number;
}

/**
 * The table type of `word` when it is written `type:name` with a type from TABLE_TYPES,
 * else undefined. `127.0.0.1:25`, `[::1]:25` and `fe80::1` are not tables.
 */
export function tableTypeOf(word: string): TableType | undefined {
  const match = /^([a-z][a-z0-9_]*):/.exec(word);
  const type = match?.[1];
  return TABLE_TYPES.find((known) => known === type);
}

/**
 * The file a file-based table reads (absolute), or undefined for inline:/static: — for
 * callers that watch tables for changes. Does not check that the spec is valid.
 */
export function tableSourceFile(spec: string, baseDir: string): string | undefined {
  const type = tableTypeOf(spec);
  const name = spec.slice(spec.indexOf(':') + 1);
  switch (type) {
    case undefined:
    case 'inline':
    case 'static':
      return undefined;
    case 'proxy':
      return tableSourceFile(name, baseDir);
    default:
      return isAbsolute(name) ? name : resolve(baseDir, name);
  }
}

/**
 * Opens table `spec` (`type:name`, e.g. `cidr:client_access.cidr`, `hash:/etc/postfix/
 * transport`, `inline:{ a=b }`, `static:all`, `proxy:btree:…`); relative file names are
 * resolved against `baseDir`. The returned table's `spec` is `spec` as given.
 * Throws ConfigError (code ERR_CONFIG) listing every problem: an unknown type or missing
 * name and an unreadable file at `origin` (default: `spec`:0), bad lines at the table
 * file's own file:line.
 */
export function openTable(spec: string, baseDir: string, origin: TableOrigin = { file: spec, line: 0 }): LookupTable {
  const { table, problems } = tryOpenTable(spec, spec, baseDir, origin);
  if (problems.length > 0 || table === undefined) throw new ConfigError(problems);
  return table;
}

function tryOpenTable(
  spec: string,
  name: string,
  baseDir: string,
  origin: TableOrigin,
): { table?: LookupTable; problems: ConfigProblem[] } {
  const at = (message: string): { problems: ConfigProblem[] } => ({
    problems: [{ file: origin.file, line: origin.line, message: `table ${spec}: ${message}` }],
  });
  const colon = name.indexOf(':');
  const type = tableTypeOf(name);
  if (colon < 0) return at('expected type:name');
  if (type === undefined) return at(`unsupported lookup table type "${name.slice(0, colon)}" (supported: ${TABLE_TYPES.join(', ')})`);
  const rest = name.slice(colon + 1);
  if (rest.trim() === '' && type !== 'static') return at('missing table name after the type');
  const readSource = (): { file: string; text?: string; problems: ConfigProblem[] } => {
    const file = isAbsolute(rest) ? rest : resolve(baseDir, rest);
    try {
      return { file, text: readFileSync(file, 'utf8'), problems: [] };
    } catch (error) {
      return { file, ...at(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`) };
    }
  };
  switch (type) {
    case 'proxy':
      return tryOpenTable(spec, rest, baseDir, origin);
    case 'static':
      return { table: staticTable(spec, rest), problems: [] };
    case 'inline': {
      const parsed = parseInlineTable(spec, rest);
      return { table: parsed.table, problems: parsed.problems.map((message) => at(message).problems[0]!) };
    }
    case 'cidr': {
      const source = readSource();
      return source.text === undefined ? source : parseCidrTable(spec, source.text, source.file);
    }
    case 'regexp':
    case 'pcre': {
      const source = readSource();
      return source.text === undefined ? source : parseRegexpTable(spec, type, source.text, source.file);
    }
    case 'hash':
    case 'btree':
    case 'lmdb':
    case 'cdb':
    case 'dbm':
    case 'sdbm':
    case 'texthash': {
      const source = readSource();
      return source.text === undefined ? source : parseHashTable(spec, source.text, source.file);
    }
    default:
      return type satisfies never;
  }
}

/*
 * parameter-kind — reads a parameter's expanded text as the value of its kind
 * (catalogue.ts ParameterKind → value.ts KindValue).
 *
 * Decides: list splitting (commas and/or white space; `{…}` groups such as
 * `inline:{ a=b, c=d }` stay one element, as Postfix's mystrtokq), time (`10s`, `5m`,
 * `1h`, `2d`, `1w`, and `250ms` as an mxscreen extension; a bare number uses the
 * catalogue unit; value in ms), size (bytes, an integer), integer, boolean (yes/no,
 * any case), action (ignore/enforce/drop, postscreen(8)), tables (every element
 * `type:name`), match lists (literals, `!negation`, `type:name` tables and `/file/name`
 * pattern files; IP literals like `[::1]/128` or `2001:db8::/32` are never tables).
 * Leaves to others: opening tables and reading pattern files (the ParameterContext
 * that config.ts passes in), cross-parameter checks (parameter-checks.ts).
 * Bugs: no fractional times (`1.5h`); no `k`/`m` size suffixes (Postfix has none either).
 */
import type { ParameterKind, ParameterSpec, TimeUnit } from './catalogue.js';
import type { KindValue, MatchList } from './value.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { tableTypeOf } from '../tables/open-table.js';
import { parseIpNetwork } from '../tables/ip-network.js';

/** What reading a kind needs from its surroundings. Both record their own problems. */
export interface ParameterContext {
  /** The opened table, or undefined when it could not be opened. */
  openTable(spec: string): LookupTable | undefined;
  /** The words of a `/file/name` pattern file, or undefined when it cannot be read. */
  readPatternFile(path: string): string[] | undefined;
}

/** A typed value, and the problems found in the setting's text (messages only). */
export interface KindRead {
  readonly value: KindValue[ParameterKind];
  readonly problems: readonly string[];
}

const UNIT_MS: Readonly<Record<TimeUnit, number>> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/**
 * Splits a list value on commas and/or white space; a `{…}` group (also inside a word,
 * `inline:{ a=b }`) is kept whole with its braces. Empty elements are dropped.
 */
export function splitList(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let depth = 0;
  for (const char of text) {
    if (char === '{') depth++;
    else if (char === '}' && depth > 0) depth--;
    if (depth === 0 && (char === ',' || /\s/.test(char))) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    word += char;
  }
  if (word !== '') words.push(word);
  return words;
}

/**
 * Reads `text` (already $-expanded) as the kind of `spec`. Returns a usable value even
 * when there are problems (the value is then meaningless; callers must not use it).
 * Sources: postconf(5) value syntax, postscreen(8) actions, match_list(3).
 */
export function readKind(spec: ParameterSpec, text: string, context: ParameterContext): KindRead {
  const value = text.trim();
  switch (spec.kind) {
    case 'string':
      return { value, problems: [] };
    case 'list':
      return readList(value, context);
    case 'boolean': {
      const lowered = value.toLowerCase();
      if (lowered === 'yes' || lowered === 'no') return { value: lowered === 'yes', problems: [] };
      return { value: false, problems: [`bad boolean value "${value}" (expected yes or no)`] };
    }
    case 'time':
      return readTime(value, spec.unit ?? 's');
    case 'size': {
      const bytes = Number(value);
      if (/^\d+$/.test(value) && Number.isSafeInteger(bytes)) return { value: bytes, problems: [] };
      return { value: 0, problems: [`bad size value "${value}" (expected a number of bytes)`] };
    }
    case 'integer': {
      const number = Number(value);
      if (/^-?\d+$/.test(value) && Number.isSafeInteger(number)) return { value: number, problems: [] };
      return { value: 0, problems: [`bad integer value "${value}"`] };
    }
    case 'action': {
      const lowered = value.toLowerCase();
      if (lowered === 'ignore' || lowered === 'enforce' || lowered === 'drop') return { value: lowered, problems: [] };
      return { value: 'ignore', problems: [`bad action "${value}" (expected ignore, enforce or drop)`] };
    }
    case 'tables':
      return readTables(value, context);
    case 'match-list':
      return readMatchList(value, context);
    default:
      return spec.kind satisfies never;
  }
}

function readTime(value: string, unit: TimeUnit): KindRead {
  const match = /^(\d+)(ms|[smhdw])?$/.exec(value);
  const amount = Number(match?.[1]);
  if (match === null || !Number.isSafeInteger(amount)) {
    return { value: 0, problems: [`bad time value "${value}" (expected a number with optional unit ms, s, m, h, d or w)`] };
  }
  const suffix = (match[2] ?? unit) as TimeUnit;
  return { value: amount * UNIT_MS[suffix], problems: [] };
}

/** Plain list; elements that name a known table type are opened to validate them early. */
function readList(value: string, context: ParameterContext): KindRead {
  const words = splitList(value);
  for (const word of words) if (tableTypeOf(word) !== undefined) context.openTable(word);
  return { value: words, problems: [] };
}

function readTables(value: string, context: ParameterContext): KindRead {
  const tables: LookupTable[] = [];
  const problems: string[] = [];
  for (const word of splitList(value)) {
    if (tableTypeOf(word) === undefined) {
      problems.push(`"${word}" is not a lookup table (expected type:name, e.g. hash:/etc/postfix/transport)`);
      continue;
    }
    const table = context.openTable(word);
    if (table !== undefined) tables.push(table);
  }
  return { value: tables, problems };
}

function readMatchList(value: string, context: ParameterContext): KindRead {
  const patterns: string[] = [];
  const tables: LookupTable[] = [];
  const problems: string[] = [];
  const add = (word: string, fromFile: boolean): void => {
    const negate = word.startsWith('!');
    const body = negate ? word.slice(1) : word;
    if (body.startsWith('/') && !fromFile) {
      for (const inner of context.readPatternFile(body) ?? []) add(inner, true);
      return;
    }
    if (body === '' ) {
      problems.push(`empty pattern "${word}"`);
      return;
    }
    if ('network' in parseIpNetwork(body)) {
      patterns.push(word);
      return;
    }
    if (tableTypeOf(body) !== undefined) {
      const table = context.openTable(body);
      if (table !== undefined && !tables.includes(table)) tables.push(table);
      patterns.push(word);
      return;
    }
    const typeLike = /^([a-z][a-z0-9_]*):/i.exec(body);
    if (typeLike !== null && !/^[0-9a-f:]+$/i.test(body.split('/')[0] ?? '')) {
      problems.push(`unsupported lookup table type "${typeLike[1]}" in "${word}"`);
      return;
    }
    patterns.push(word);
  };
  for (const word of splitList(value)) add(word, false);
  const list: MatchList = { patterns, tables };
  return { value: list, problems };
}

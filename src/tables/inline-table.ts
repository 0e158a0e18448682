/*
 * inline-table — Postfix 3.0 `inline:{ key=value, … }` tables written inside main.cf.
 *
 * Decides: the syntax: elements separated by commas and/or white space, each
 * `key=value` (white space around `=` allowed: `{ key = value }`), and an element in
 * inner braces `{ key = text with, commas }` keeps its white space and commas; keys are
 * lower-cased as in hash: tables (lookup lower-cases too); exact key lookup.
 * Leaves to others: splitting main.cf lists so that the braces stay one word (config.ts).
 * Bugs: no `$name` expansion inside (main.cf expansion has already happened).
 */
import type { LookupTable } from './lookup-table.js';

/**
 * Reads the part after `inline:` (`{ a=b, c = d }`) of table `spec`.
 * Returns the table, or the list of problem messages (no outer braces, an element without
 * `=`, unbalanced braces). Never throws.
 */
export function parseInlineTable(spec: string, body: string): { table: LookupTable; problems: string[] } {
  const problems: string[] = [];
  const entries = new Map<string, string>();
  const table: LookupTable = { spec, lookup: (key: string) => entries.get(key.toLowerCase()) };
  const trimmed = body.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) {
    return { table, problems: [`expected "inline:{ key=value, ... }", found "${spec}"`] };
  }
  const inner = trimmed.slice(1, -1);
  const add = (key: string, value: string): void => {
    const lowered = key.trim().toLowerCase();
    if (lowered === '') problems.push(`empty key in "${spec}"`);
    else if (!entries.has(lowered)) entries.set(lowered, value.trim());
  };
  let index = 0;
  while (index < inner.length) {
    const char = inner[index] ?? '';
    if (/[\s,]/.test(char)) {
      index++;
      continue;
    }
    if (char === '{') {
      const close = inner.indexOf('}', index);
      if (close < 0) {
        problems.push(`unbalanced "{" in "${spec}"`);
        break;
      }
      const element = inner.slice(index + 1, close);
      const equals = element.indexOf('=');
      if (equals < 0) problems.push(`expected "{ key = value }", found "{${element}}"`);
      else add(element.slice(0, equals), element.slice(equals + 1));
      index = close + 1;
      continue;
    }
    // key, optional white space, '=', optional white space, value up to white space or comma
    const match = /^([^\s,={}]+)\s*=\s*([^\s,{}]*)/.exec(inner.slice(index));
    if (match === null) {
      const word = /^[^\s,]+/.exec(inner.slice(index))?.[0] ?? char;
      problems.push(`expected "key=value", found "${word}"`);
      index += word.length;
      continue;
    }
    add(match[1] ?? '', match[2] ?? '');
    index += match[0].length;
  }
  return { table, problems };
}

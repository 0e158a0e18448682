/*
 * regexp-table — Postfix regexp_table(5) and pcre_table(5), run as JavaScript RegExp.
 *
 * Decides: the format (`/pattern/flags result`, `!/pattern/flags result`, `if /pattern/`
 * … `endif` nesting; any non-alphanumeric, non-white-space delimiter), first match wins,
 * matching is case-insensitive unless flag `i` toggles it off, `$n`/`${n}`/`$$` in the
 * result. Flags: both types `i` `m`; pcre: `s`, `x` (white space and `#` comments
 * removed), `A` (anchored), `E` and `X` (no-ops); regexp: `x` (basic REs) is refused.
 * Differences from PCRE/POSIX: the pattern is a JavaScript RegExp (no possessive
 * quantifiers, atomic groups, \A \Z \z, inline (?i) modifiers, recursion; `U` refused);
 * POSIX classes like [[:alpha:]] are translated to ASCII ranges; `$` matches only at the
 * very end of the input (as PCRE with flag E).
 * Bugs: a pattern JavaScript accepts but PCRE would not (or the reverse) is not detected.
 */
import type { ConfigProblem } from '../errors.js';
import type { LookupTable } from './lookup-table.js';
import { readTableLines } from '../config/logical-line.js';
import { firstRuleMatch, RuleBlocks, type RuleTree } from './rule-blocks.js';

/** Which dialect the file is written in: regexp_table(5) (POSIX ERE) or pcre_table(5). */
export type RegexpDialect = 'regexp' | 'pcre';

interface Pattern {
  readonly regexp: RegExp;
  readonly negate: boolean;
}

type RegexpLine = { readonly kind: 'rule'; readonly pattern: Pattern; readonly result: string; readonly line: number };
type RegexpRule = RuleTree<Pattern, RegexpLine>;

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', xdigit: '0-9A-Fa-f', word: 'A-Za-z0-9_',
  punct: '!-\\/:-@\\[-`{-~', cntrl: '\\x00-\\x1f\\x7f', print: '\\x20-\\x7e', graph: '\\x21-\\x7e',
};

/**
 * Reads the source `text` of a regexp:/pcre: table named `spec` from `file`.
 * Returns the table and every problem (bad delimiter or flag, invalid RegExp, missing
 * result, `$n` beyond the pattern's groups or in a negated rule, unbalanced if/endif);
 * callers must not use the table when problems is non-empty. Never throws.
 */
export function parseRegexpTable(
  spec: string,
  dialect: RegexpDialect,
  text: string,
  file: string,
): { table: LookupTable; problems: ConfigProblem[] } {
  const { lines, problems } = readTableLines(text, file, 'a rule');
  const blocks = new RuleBlocks<Pattern, RegexpLine>();
  for (const logical of lines) {
    const problem = (message: string): void => {
      problems.push({ file, line: logical.line, message });
    };
    const textLine = logical.text.trim();
    if (textLine === 'endif') {
      const unmatched = blocks.closeBlock();
      if (unmatched) problem(unmatched);
      continue;
    }
    const ifMatch = /^if\s+(.*)$/.exec(textLine);
    const parsed = readPattern(ifMatch !== null ? (ifMatch[1] ?? '') : textLine, dialect);
    if ('problem' in parsed) {
      problem(parsed.problem);
      if (ifMatch !== null) blocks.openBlock(undefined, logical.line);
      continue;
    }
    if (ifMatch !== null) {
      if (parsed.rest !== '') problem(`text after "if" pattern: "${parsed.rest}"`);
      blocks.openBlock(parsed.pattern, logical.line);
      continue;
    }
    if (parsed.rest === '') {
      problem('no result after the pattern (expected "/pattern/flags result")');
      continue;
    }
    const groups = new RegExp(`${parsed.pattern.regexp.source}|`).exec('')?.length ?? 1;
    for (const reference of groupReferences(parsed.rest)) {
      if (parsed.pattern.negate) problem(`$${reference} in the result of a negated pattern`);
      else if (reference >= groups) problem(`$${reference} in the result but the pattern has ${groups - 1} groups`);
    }
    blocks.add({ kind: 'rule', pattern: parsed.pattern, result: parsed.rest, line: logical.line });
  }
  problems.push(...blocks.unclosed(file));
  return {
    problems,
    table: {
      spec,
      lookup: (key: string): string | undefined => firstMatch(blocks.top, key)?.value,
      find: (key: string) => firstMatch(blocks.top, key),
    },
  };
}

function readPattern(text: string, dialect: RegexpDialect): { pattern: Pattern; rest: string } | { problem: string } {
  const negate = text.startsWith('!');
  const body = negate ? text.slice(1) : text;
  const delimiter = body[0];
  if (delimiter === undefined || /[\sA-Za-z0-9\\]/.test(delimiter)) {
    return { problem: `expected "/pattern/flags", found "${text}"` };
  }
  let end = 1;
  while (end < body.length && body[end] !== delimiter) end += body[end] === '\\' ? 2 : 1;
  if (end >= body.length) return { problem: `no closing "${delimiter}" in "${text}"` };
  let source = body.slice(1, end);
  if (delimiter !== '/') source = source.split(`\\${delimiter}`).join(delimiter);
  const afterPattern = body.slice(end + 1);
  const flagText = /^\S*/.exec(afterPattern)?.[0] ?? '';
  const rest = afterPattern.slice(flagText.length).trim();
  let caseless = true;
  let jsFlags = '';
  let anchored = false;
  for (const flag of flagText) {
    switch (flag) {
      case 'i': caseless = !caseless; break;
      case 'm': jsFlags += 'm'; break;
      case 's':
        if (dialect !== 'pcre') return { problem: `flag "s" is for pcre: tables only` };
        jsFlags += 's';
        break;
      case 'x':
        if (dialect === 'regexp') return { problem: 'flag "x" (basic regular expressions) is not supported' };
        source = removeExtendedWhitespace(source);
        break;
      case 'A':
        if (dialect !== 'pcre') return { problem: `flag "A" is for pcre: tables only` };
        anchored = true;
        break;
      case 'E':
      case 'X':
        if (dialect !== 'pcre') return { problem: `flag "${flag}" is for pcre: tables only` };
        break; // E: JavaScript's `$` is already end-only; X: no JavaScript equivalent needed
      default:
        return { problem: `unsupported flag "${flag}" in "${text}"` };
    }
  }
  source = translatePosixClasses(source);
  if (anchored) source = `^(?:${source})`;
  try {
    const regexp = new RegExp(source, `${caseless ? 'i' : ''}${jsFlags}`);
    return { pattern: { regexp, negate }, rest };
  } catch (error) {
    return { problem: `invalid regular expression /${source}/: ${(error as Error).message}` };
  }
}

function translatePosixClasses(source: string): string {
  return source.replace(/\[:([a-z]+):\]/g, (whole, name: string) => POSIX_CLASSES[name] ?? whole);
}

/** pcre flag x: unescaped white space and `#` comments outside [classes] are removed. */
function removeExtendedWhitespace(source: string): string {
  let out = '';
  let inClass = false;
  for (let index = 0; index < source.length; index++) {
    const char = source[index] ?? '';
    if (char === '\\') {
      out += source.slice(index, index + 2);
      index++;
    } else if (inClass) {
      if (char === ']') inClass = false;
      out += char;
    } else if (char === '[') {
      inClass = true;
      out += char;
    } else if (char === '#') {
      while (index < source.length && source[index] !== '\n') index++;
    } else if (!/\s/.test(char)) {
      out += char;
    }
  }
  return out;
}

const REFERENCE = /\$(?:(\d+)|\{(\d+)\}|\((\d+)\)|\$)/g;

function groupReferences(result: string): number[] {
  const numbers: number[] = [];
  for (const match of result.matchAll(REFERENCE)) {
    const digits = match[1] ?? match[2] ?? match[3];
    if (digits !== undefined) numbers.push(Number(digits));
  }
  return numbers;
}

function substitute(result: string, groups: readonly (string | undefined)[]): string {
  return result.replace(REFERENCE, (whole, a?: string, b?: string, c?: string) => {
    const digits = a ?? b ?? c;
    return digits === undefined ? '$' : (groups[Number(digits)] ?? '');
  });
}

function firstMatch(rules: readonly RegexpRule[], key: string): { value: string; line: number } | undefined {
  return firstRuleMatch(
    rules,
    (pattern) => {
      const found = pattern.regexp.exec(key);
      // A negated pattern matches when the expression does not; it has no groups ($1 is empty).
      return (found !== null) === pattern.negate ? undefined : (found ?? []);
    },
    (rule, groups: readonly (string | undefined)[]) => ({ value: substitute(rule.result, groups), line: rule.line }),
  );
}

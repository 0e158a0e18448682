/*
 * main-cf — reads main.cf syntax (postconf(5) "main.cf file format") into raw entries.
 *
 * Decides: which logical lines are `name = value` settings (white space around `=` and at
 * the end of the line ignored; names from [A-Za-z0-9_]), that a later setting of a name
 * overrides an earlier one, and that anything else is a problem with file:line.
 * Leaves to others: whether a name is known, aliases, $name expansion and typed values
 * (config.ts); line splitting and comments (logical-line.ts).
 * Bugs: no `name/service` master.cf-style overrides; a `#` after a value is part of it.
 */
import type { ConfigProblem } from '../errors.js';
import { readLogicalLines } from './logical-line.js';

/** One `name = value` setting, with the value as written (not yet $-expanded). */
export interface MainCfEntry {
  readonly name: string;
  readonly value: string;
  readonly file: string;
  /** 1-based line of the setting's first physical line. */
  readonly line: number;
}

const SETTING = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/;

/**
 * Parses main.cf `text` read from `file` (the name is only used in entries and problems).
 * Returns one entry per distinct name, the last setting winning (postconf(5): "When the
 * same parameter is defined multiple times, only the last instance is remembered"), in
 * the order of the winning lines; and a problem for every line that is not a setting.
 * Never throws.
 */
export function parseMainCf(text: string, file: string): { entries: MainCfEntry[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const { lines, orphans } = readLogicalLines(text);
  for (const orphan of orphans) {
    problems.push({ file, line: orphan.line, message: 'continuation line (starting with white space) without a setting before it' });
  }
  const byName = new Map<string, MainCfEntry>();
  for (const logical of lines) {
    const match = SETTING.exec(logical.text);
    if (match === null) {
      problems.push({ file, line: logical.line, message: `expected "name = value", found "${truncate(logical.text)}"` });
      continue;
    }
    const name = match[1] ?? '';
    byName.delete(name); // keep the order of the winning line
    byName.set(name, { name, value: (match[2] ?? '').trim(), file, line: logical.line });
  }
  problems.sort((a, b) => a.line - b.line);
  return { entries: [...byName.values()], problems };
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

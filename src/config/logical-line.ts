/*
 * logical-line — Postfix's readlline(3): how main.cf and every text table split into
 * logical lines.
 *
 * Decides: a logical line starts with non-white-space text; a line that starts with white
 * space continues it (joined with one space); empty, white-space-only lines and lines
 * whose first non-white-space character is `#` are skipped, also between a line and its
 * continuation (postconf(5), cidr_table(5), regexp_table(5)). Each logical line keeps the
 * number of its first physical line (1-based).
 * Leaves to others: what a logical line means (main-cf.ts, the table readers).
 * Bugs: a `#` after text is NOT a comment, as in Postfix; it stays in the value.
 */
import type { ConfigProblem } from '../errors.js';

/** One logical line: its text (trailing white space removed) and first physical line. */
export interface LogicalLine {
  readonly text: string;
  readonly line: number;
}

/** A continuation line with no logical line before it: Postfix warns and skips it. */
export interface OrphanContinuation {
  readonly line: number;
}

/**
 * Splits `text` (LF or CRLF) into logical lines per readlline(3).
 * Returns the lines, and the 1-based numbers of continuation lines that had nothing to
 * continue (callers report them as problems). Never throws.
 */
export function readLogicalLines(text: string): { lines: LogicalLine[]; orphans: OrphanContinuation[] } {
  const lines: { text: string; line: number }[] = [];
  const orphans: OrphanContinuation[] = [];
  const physical = text.split(/\r?\n/);
  for (let index = 0; index < physical.length; index++) {
    const raw = physical[index] ?? '';
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const lineNumber = index + 1;
    if (/^\s/.test(raw)) {
      const last = lines[lines.length - 1];
      if (last === undefined) orphans.push({ line: lineNumber });
      else last.text = `${last.text} ${trimmed}`;
      continue;
    }
    lines.push({ text: raw.trimEnd(), line: lineNumber });
  }
  return { lines, orphans };
}

/**
 * readLogicalLines for a lookup table in `file`: the lines, and a problem for each stray
 * continuation line (`continuation line without <thing> before it`; `thing` is what a
 * logical line of the table is, `a rule` or `an entry`). Never throws.
 */
export function readTableLines(text: string, file: string, thing: 'a rule' | 'an entry'): { lines: LogicalLine[]; problems: ConfigProblem[] } {
  const { lines, orphans } = readLogicalLines(text);
  return { lines, problems: orphans.map((orphan) => ({ file, line: orphan.line, message: `continuation line without ${thing} before it` })) };
}

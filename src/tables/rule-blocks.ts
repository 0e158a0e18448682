/*
 * rule-blocks — the `IF pattern … ENDIF` structure of cidr_table(5) and regexp_table(5).
 *
 * Decides: how the nesting is read (RuleBlocks: `if` opens, `endif` closes, an unclosed
 * block is a problem at its line) and how a list of rules and blocks is searched: in order; a rule whose pattern
 * matches answers; a block whose pattern matches is searched the same way, and the search
 * goes on after it when nothing inside answered. A pattern's own test (a network, a
 * regular expression, either negated) is the table's.
 * Leaves to others: parsing the rules and what a match means (cidr-table.ts, regexp-table.ts).
 */
import type { ConfigProblem } from '../errors.js';

/** A rule (`pattern result`) or a block (`IF pattern` … `ENDIF`) of a table. */
export type RuleTree<Pattern, Rule extends { readonly kind: 'rule'; readonly pattern: Pattern }> =
  | Rule
  | { readonly kind: 'block'; readonly pattern: Pattern; readonly body: readonly RuleTree<Pattern, Rule>[] };

/**
 * The answer of the first rule in `rules` (blocks searched in place) whose pattern `test`
 * matches: `test` returns its match or undefined; `answer` turns a matching rule and its
 * match into the table's answer. Bounded by the size of the tree. Never throws.
 */
export function firstRuleMatch<Pattern, Rule extends { readonly kind: 'rule'; readonly pattern: Pattern }, Match, Answer>(
  rules: readonly RuleTree<Pattern, Rule>[],
  test: (pattern: Pattern) => Match | undefined,
  answer: (rule: Rule, match: Match) => Answer,
): Answer | undefined {
  for (const rule of rules) {
    const match = test(rule.pattern);
    if (match === undefined) continue;
    if (rule.kind === 'block') {
      const found = firstRuleMatch(rule.body, test, answer);
      if (found !== undefined) return found;
      continue;
    }
    return answer(rule as Rule, match);
  }
  return undefined;
}

/**
 * The nesting of a table being read: where the next rule goes, `if` opening a block,
 * `endif` closing one, and at the end every block left open. Problems are reported as
 * the table formats word them ('"endif" without "if"', '"if" without "endif"').
 */
export class RuleBlocks<Pattern, Rule extends { readonly kind: 'rule'; readonly pattern: Pattern }> {
  /** The rules of the table, top level first. */
  readonly top: RuleTree<Pattern, Rule>[] = [];
  readonly #open: { body: RuleTree<Pattern, Rule>[]; line: number }[] = [];

  /** Adds a rule to the innermost open block (or the top level). */
  add(rule: Rule): void {
    this.#body().push(rule);
  }

  /**
   * Opens a block at `line`; with no `pattern` (it did not parse) the block still counts
   * for its `endif`, but its rules are dropped.
   */
  openBlock(pattern: Pattern | undefined, line: number): void {
    const body: RuleTree<Pattern, Rule>[] = [];
    if (pattern !== undefined) this.#body().push({ kind: 'block', pattern, body });
    this.#open.push({ body, line });
  }

  /** Closes the innermost block; the problem text when there is none. */
  closeBlock(): string | undefined {
    return this.#open.pop() === undefined ? '"endif" without "if"' : undefined;
  }

  /** A problem at the line of each block never closed, in `file`. */
  unclosed(file: string): ConfigProblem[] {
    return this.#open.map((block) => ({ file, line: block.line, message: '"if" without "endif"' }));
  }

  #body(): RuleTree<Pattern, Rule>[] {
    return this.#open[this.#open.length - 1]?.body ?? this.top;
  }
}

/*
 * rule-blocks — the `IF pattern … ENDIF` structure of cidr_table(5) and regexp_table(5).
 *
 * Decides: how a list of rules and blocks is searched: in order; a rule whose pattern
 * matches answers; a block whose pattern matches is searched the same way, and the search
 * goes on after it when nothing inside answered. A pattern's own test (a network, a
 * regular expression, either negated) is the table's.
 * Leaves to others: parsing the rules and what a match means (cidr-table.ts, regexp-table.ts).
 */

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

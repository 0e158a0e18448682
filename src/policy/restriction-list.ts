/*
 * restriction-list — one generic evaluator for every smtpd(8) restriction list.
 *
 * Decides: how a list's words become restrictions (a name from the catalogue, followed
 * by its argument when it takes one: `check_client_access cidr:…`, `reject_rbl_client
 * zen.example`; or the name of a restriction class), that an unknown name is a
 * configuration error with file:line, and how a list is evaluated: in order, the first
 * permit or reject wins, dunno goes on, an access table's answer that names restrictions
 * or a class is evaluated in place (nested at most 10 deep, as a guard against classes
 * that name each other).
 * Leaves to others: what each restriction does (restriction-catalogue.ts and the files it
 * names), when lists run and what a permit/reject then means (smtpd.ts).
 */
import type { ConfigProblem } from '../errors.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { tableTypeOf } from '../tables/open-table.js';
import { parseDnsblSite } from '../dnsbl/dnsbl-site.js';
import { DUNNO, type ParsedRestriction, type RestrictionEnvironment, type RestrictionRequest, type RestrictionResult, type RestrictionSession, type RestrictionStage } from './restriction.js';
import { RESTRICTIONS, type RestrictionName } from './restriction-catalogue.js';

/** A parsed list: what main.cf (or a class) says, ready to evaluate. */
export interface RestrictionList {
  readonly stage: RestrictionStage;
  readonly restrictions: readonly ParsedRestriction[];
}

/** Everything parsing needs: opened tables, class names, and where the list was written. */
export interface RestrictionParseContext {
  /** The opened table `spec` (config.ts opened it at load), or a problem message. */
  table(spec: string): LookupTable | string;
  /** Names of smtpd_restriction_classes. */
  readonly classes: ReadonlySet<string>;
}

const MAX_NESTING = 10;

function isRestrictionName(name: string): name is RestrictionName {
  return Object.hasOwn(RESTRICTIONS, name);
}

/**
 * Parses restriction `words` (a list parameter's value, or a class definition) written at
 * `where`. Returns the restrictions and every problem (unknown name, missing or bad
 * argument), each at `where`. Source: postconf(5) smtpd_*_restrictions.
 */
export function parseRestrictions(
  words: readonly string[],
  context: RestrictionParseContext,
  where: { file: string; line: number; parameter: string },
): { restrictions: ParsedRestriction[]; problems: ConfigProblem[] } {
  const restrictions: ParsedRestriction[] = [];
  const problems: ConfigProblem[] = [];
  const problem = (message: string): void => {
    problems.push({ file: where.file, line: where.line, message: `${where.parameter}: ${message}` });
  };
  for (let index = 0; index < words.length; index++) {
    const written = words[index]!;
    const name = written.toLowerCase();
    if (context.classes.has(written)) {
      restrictions.push({ name: 'restriction_class', written, argument: written, run: RESTRICTIONS.restriction_class.run });
      continue;
    }
    if (!isRestrictionName(name)) {
      problem(`unknown restriction "${written}"`);
      continue;
    }
    const spec = RESTRICTIONS[name];
    if (spec.argument === 'none') {
      restrictions.push({ name, written, run: spec.run });
      continue;
    }
    const argument = words[index + 1];
    if (argument === undefined) {
      problem(`restriction "${written}" needs ${spec.argument === 'table' ? 'a lookup table (type:name)' : spec.argument === 'dnsbl' ? 'a DNSBL domain' : 'an argument'}`);
      continue;
    }
    index++;
    if (spec.argument === 'table') {
      if (tableTypeOf(argument) === undefined) {
        problem(`restriction "${written}" needs a lookup table (type:name), found "${argument}"`);
        continue;
      }
      const table = context.table(argument);
      if (typeof table === 'string') {
        problem(table);
        continue;
      }
      restrictions.push({ name, written, argument, table, run: spec.run });
      continue;
    }
    if (spec.argument === 'dnsbl') {
      const site = parseDnsblSite(argument);
      if ('error' in site) problem(`${written} ${argument}: ${site.error}`);
      else if (site.weight !== 1 || argument.includes('*')) problem(`${written} ${argument}: a weight is for postscreen_dnsbl_sites only`);
      else restrictions.push({ name, written, argument, site, run: spec.run });
      continue;
    }
    const checked = spec.check?.(argument);
    if (checked !== undefined) {
      problem(`${written} ${argument}: ${checked}`);
      continue;
    }
    restrictions.push({ name, written, argument, run: spec.run });
  }
  return { restrictions, problems };
}

/** A list's final result: permit/reject with who decided, or dunno when the list ran out. */
export type ListOutcome = Exclude<RestrictionResult, { kind: 'list' }>;

/**
 * Evaluates `list` for `request`. The first permit or reject wins; a nested answer
 * (restriction class, access result naming restrictions) is evaluated in place and its
 * permit/reject wins too; a configuration error found then (unknown name in a table
 * answer) is `451 4.3.5 Server configuration error`. Never throws: a restriction that
 * fails (a bug) is logged by the caller's environment and answers 451 4.3.5.
 */
export async function evaluateRestrictions(
  restrictions: readonly ParsedRestriction[],
  stage: RestrictionStage,
  env: RestrictionEnvironment,
  session: RestrictionSession,
  request: RestrictionRequest,
  depth = 0,
): Promise<ListOutcome> {
  for (const restriction of restrictions) {
    let result: RestrictionResult;
    try {
      result = await restriction.run({ env, session, request, stage, restriction });
    } catch (err) {
      env.log.error({ event: 'smtp error', err, restriction: restriction.written }, `restriction ${restriction.written} failed`);
      return { kind: 'reject', by: restriction.written, reply: { code: 451, enhanced: '4.3.5', text: 'Server configuration error' } };
    }
    switch (result.kind) {
      case 'permit':
      case 'reject':
        return result;
      case 'dunno':
        continue;
      case 'list': {
        const nested = nestedRestrictions(result.words, env, depth);
        if (typeof nested === 'string') {
          env.log.warn({ event: 'smtp error', restriction: result.by }, `${result.by}: ${nested}`);
          return { kind: 'reject', by: result.by, reply: { code: 451, enhanced: '4.3.5', text: 'Server configuration error' } };
        }
        const outcome = await evaluateRestrictions(nested, stage, env, session, request, depth + 1);
        if (outcome.kind !== 'dunno') return outcome;
        continue;
      }
      default: {
        const never: never = result;
        throw new Error(`unhandled restriction result ${JSON.stringify(never)}`);
      }
    }
  }
  return DUNNO as ListOutcome;
}

/** Parses the words of a table answer or class at run time; a string is the problem. */
function nestedRestrictions(words: readonly string[], env: RestrictionEnvironment, depth: number): readonly ParsedRestriction[] | string {
  if (depth >= MAX_NESTING) return `restriction classes nested more than ${MAX_NESTING} deep`;
  if (words.length === 1 && env.classes.has(words[0]!)) return env.classes.get(words[0]!)!;
  const parsed = parseRestrictions(words, { table: (spec) => env.table(spec), classes: new Set(env.classes.keys()) }, { file: 'access table result', line: 0, parameter: 'result' });
  if (parsed.problems.length > 0) return parsed.problems.map((problem) => problem.message).join('; ');
  return parsed.restrictions;
}

/*
 * access-list — postscreen_access_list: the permanent allowlist/denylist.
 *
 * Decides (postconf(5) postscreen_access_list, Postfix server_acl): the list is read
 * left to right and the first element that decides wins: `permit_mynetworks` permits a
 * client in mynetworks; `permit`, `reject`, `dunno` decide at once; a `type:name` table
 * (cidr:, usually) is looked up with the client address and its result is evaluated the
 * same way (`permit`, `reject`, `dunno` = go on with the next element,
 * `permit_mynetworks`). A table result naming another table, or an unknown word, stops
 * the evaluation with `dunno` and a problem text for the log, as Postfix does.
 * Leaves to others: opening tables (src/tables), network matching (match-list.ts), and
 * the denylist action (screener.ts).
 */
import type { MatchList } from '../config/value.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { matchNetwork } from '../tables/match-list.js';
import { tableTypeOf } from '../tables/open-table.js';

export type AccessListElement =
  | { readonly kind: 'permit_mynetworks' }
  | { readonly kind: 'permit' }
  | { readonly kind: 'reject' }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'table'; readonly table: LookupTable };

export interface AccessList {
  readonly elements: readonly AccessListElement[];
}

/** permit = ALLOWLISTED, reject = DENYLISTED, dunno = go on with the other tests. */
export type AccessDecision = 'permit' | 'reject' | 'dunno';

export interface AccessResult {
  readonly decision: AccessDecision;
  /** The element that decided (`permit_mynetworks`, `cidr:/etc/…`), for the log. */
  readonly by: string | undefined;
  /** Set when evaluation stopped on a bad table result (logged, treated as dunno). */
  readonly problem: string | undefined;
}

const KEYWORDS = ['permit_mynetworks', 'permit', 'reject', 'dunno'] as const;
type Keyword = (typeof KEYWORDS)[number];

function keyword(word: string): Keyword | undefined {
  const lower = word.toLowerCase();
  return KEYWORDS.find((k) => k === lower);
}

/**
 * Reads the words of postscreen_access_list. `openTable` opens a `type:name` element
 * (and may throw ConfigError, which propagates). Unknown words are returned as problems.
 */
export function parseAccessList(words: readonly string[], openTable: (spec: string) => LookupTable): { list: AccessList; problems: string[] } {
  const elements: AccessListElement[] = [];
  const problems: string[] = [];
  for (const word of words) {
    const k = keyword(word);
    if (k) elements.push({ kind: k });
    else if (tableTypeOf(word) !== undefined) elements.push({ kind: 'table', table: openTable(word) });
    else problems.push(`postscreen_access_list: unknown element "${word}" (expected permit_mynetworks, permit, reject, dunno or type:name)`);
  }
  return { list: { elements }, problems };
}

/**
 * Evaluates `list` for client `address` (IPv4 or IPv6 as the screener normalised it).
 * permit_mynetworks matches against `mynetworks` (match-list.ts matchNetwork), or takes
 * `inMynetworks` when the caller already knows (one match per connection). Never throws.
 */
export function evaluateAccessList(list: AccessList, address: string, mynetworks: MatchList, inMynetworks?: boolean): AccessResult {
  for (const element of list.elements) {
    switch (element.kind) {
      case 'permit_mynetworks':
        if (inMynetworks ?? matchNetwork(mynetworks, address)) return { decision: 'permit', by: 'permit_mynetworks', problem: undefined };
        break;
      case 'permit':
      case 'reject':
      case 'dunno':
        return { decision: element.kind, by: element.kind, problem: undefined };
      case 'table': {
        const result = element.table.lookup(address);
        if (result === undefined) break;
        const decided = evaluateTableResult(result, address, mynetworks, element.table.spec);
        if (decided.decision !== 'dunno' || decided.problem) return decided;
        break;
      }
      default: {
        const never: never = element;
        throw new Error(`unknown access list element ${JSON.stringify(never)}`);
      }
    }
  }
  return { decision: 'dunno', by: undefined, problem: undefined };
}

/** A table's right-hand side, itself a small access list without tables. */
function evaluateTableResult(result: string, address: string, mynetworks: MatchList, spec: string): AccessResult {
  for (const word of result.split(/[\s,]+/).filter(Boolean)) {
    const k = keyword(word);
    switch (k) {
      case 'permit':
      case 'reject':
        return { decision: k, by: spec, problem: undefined };
      case 'dunno':
        return { decision: 'dunno', by: spec, problem: undefined };
      case 'permit_mynetworks':
        if (matchNetwork(mynetworks, address)) return { decision: 'permit', by: spec, problem: undefined };
        break;
      case undefined:
        return {
          decision: 'dunno',
          by: spec,
          problem: word.includes(':')
            ? `table ${spec}: lookup result "${word}" is not allowed -- ignoring remainder of access list`
            : `${spec}: unknown command: ${word} -- ignoring the remainder of this access list`,
        };
      default: {
        const never: never = k;
        throw new Error(`unknown keyword ${String(never)}`);
      }
    }
  }
  return { decision: 'dunno', by: spec, problem: undefined };
}

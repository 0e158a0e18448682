/*
 * cidr-table — Postfix cidr_table(5): the first network that contains the client address
 * gives the result.
 *
 * Decides: the table format (`network/prefix result`, a bare address, `!pattern result`,
 * `if pattern` … `endif` blocks that nest, IPv4 and IPv6, IPv6 optionally in [brackets])
 * and the lookup: the key is an IP address text (an IPv4-mapped `::ffff:a.b.c.d` matches
 * IPv4 entries); first match in file order wins; a key that is not an address matches
 * nothing.
 * Leaves to others: reading the file and throwing (open-table.ts), what the result means
 * (postscreen_access_list: permit/reject/dunno, screen/).
 * Bugs: no netmask notation; a rule with host bits set is an error (Postfix skips it).
 */
import type { ConfigProblem } from '../errors.js';
import type { LookupTable } from './lookup-table.js';
import { readTableLines } from '../config/logical-line.js';
import { networkContains, parseIpAddress, parseIpNetwork, type IpAddress, type IpNetwork } from './ip-network.js';
import { firstRuleMatch, RuleBlocks, type RuleTree } from './rule-blocks.js';

interface NetworkPattern {
  readonly network: IpNetwork;
  readonly negate: boolean;
}

type CidrLine = { readonly kind: 'rule'; readonly pattern: NetworkPattern; readonly result: string };
type CidrRule = RuleTree<NetworkPattern, CidrLine>;

/**
 * Reads the source `text` of a cidr table named `spec`, found in `file` (for problems).
 * Returns the table and every problem found (each with `file` and its 1-based line);
 * callers must not use the table when problems is non-empty. Never throws.
 */
export function parseCidrTable(spec: string, text: string, file: string): { table: LookupTable; problems: ConfigProblem[] } {
  const { lines, problems } = readTableLines(text, file, 'a rule');
  const blocks = new RuleBlocks<NetworkPattern, CidrLine>();
  for (const logical of lines) {
    const [first = '', ...rest] = logical.text.trim().split(/\s+/);
    if (first === 'endif') {
      if (rest.length > 0) problems.push({ file, line: logical.line, message: 'text after "endif"' });
      const unmatched = blocks.closeBlock();
      if (unmatched) problems.push({ file, line: logical.line, message: unmatched });
      continue;
    }
    if (first === 'if') {
      const pattern = readPattern(rest[0] ?? '', file, logical.line, problems);
      if (rest.length !== 1) problems.push({ file, line: logical.line, message: 'expected "if network/prefix"' });
      blocks.openBlock(pattern, logical.line);
      continue;
    }
    const pattern = readPattern(first, file, logical.line, problems);
    const result = logical.text.trim().slice(first.length).trim();
    if (result === '') {
      problems.push({ file, line: logical.line, message: `no result after "${first}" (expected "network/prefix result")` });
      continue;
    }
    if (pattern !== undefined) blocks.add({ kind: 'rule', pattern, result });
  }
  problems.push(...blocks.unclosed(file));
  return {
    problems,
    table: {
      spec,
      lookup(key: string): string | undefined {
        const address = parseIpAddress(key);
        return address === undefined ? undefined : firstMatch(blocks.top, address);
      },
    },
  };
}

function readPattern(word: string, file: string, line: number, problems: ConfigProblem[]): NetworkPattern | undefined {
  const negate = word.startsWith('!');
  const parsed = parseIpNetwork(negate ? word.slice(1) : word);
  if ('problem' in parsed) {
    problems.push({ file, line, message: parsed.problem });
    return undefined;
  }
  return { network: parsed.network, negate };
}

function matches(pattern: NetworkPattern, address: IpAddress): boolean {
  return networkContains(pattern.network, address) !== pattern.negate;
}

function firstMatch(rules: readonly CidrRule[], address: IpAddress): string | undefined {
  return firstRuleMatch(rules, (pattern) => (matches(pattern, address) ? true : undefined), (rule) => rule.result);
}

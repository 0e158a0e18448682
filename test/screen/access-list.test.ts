import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MatchList } from '../../src/config/value.js';
import type { LookupTable } from '../../src/tables/lookup-table.js';
import { evaluateAccessList, parseAccessList } from '../../src/screen/access-list.js';

/** An in-memory table keyed by exact address (what a cidr: table answers for host entries). */
function table(spec: string, entries: Record<string, string>): LookupTable {
  return { spec, lookup: (key) => entries[key] };
}

const tables: Record<string, LookupTable> = {
  'cidr:allow.cidr': table('cidr:allow.cidr', { '192.0.2.1': 'permit', '192.0.2.3': 'dunno', '192.0.2.4': 'PERMIT', '192.0.2.5': 'permit_mynetworks' }),
  'cidr:deny.cidr': table('cidr:deny.cidr', { '192.0.2.2': 'reject', '192.0.2.3': 'reject', '192.0.2.6': 'hash:other', '192.0.2.7': 'bogus' }),
};
const open = (spec: string) => {
  const found = tables[spec];
  if (!found) throw new Error(`no table ${spec}`);
  return found;
};
const mynetworks: MatchList = { patterns: ['10.0.0.0/8', '192.0.2.5'], tables: [] };

const cases = [
  { name: 'permit_mynetworks permits a client in mynetworks', input: { list: ['permit_mynetworks'], address: '10.1.2.3' }, want: { decision: 'permit', by: 'permit_mynetworks' } },
  { name: 'permit_mynetworks says nothing about others', input: { list: ['permit_mynetworks'], address: '192.0.2.9' }, want: { decision: 'dunno', by: undefined } },
  { name: 'a table permit', input: { list: ['permit_mynetworks', 'cidr:allow.cidr'], address: '192.0.2.1' }, want: { decision: 'permit', by: 'cidr:allow.cidr' } },
  { name: 'a table reject', input: { list: ['cidr:allow.cidr', 'cidr:deny.cidr'], address: '192.0.2.2' }, want: { decision: 'reject', by: 'cidr:deny.cidr' } },
  { name: 'first match wins', input: { list: ['cidr:deny.cidr', 'cidr:allow.cidr'], address: '192.0.2.1' }, want: { decision: 'permit', by: 'cidr:allow.cidr' } },
  { name: 'a table dunno goes on to the next element', input: { list: ['cidr:allow.cidr', 'cidr:deny.cidr'], address: '192.0.2.3' }, want: { decision: 'reject', by: 'cidr:deny.cidr' } },
  { name: 'results are case-insensitive', input: { list: ['cidr:allow.cidr'], address: '192.0.2.4' }, want: { decision: 'permit', by: 'cidr:allow.cidr' } },
  { name: 'a table may answer permit_mynetworks', input: { list: ['cidr:allow.cidr'], address: '192.0.2.5' }, want: { decision: 'permit', by: 'cidr:allow.cidr' } },
  { name: 'a literal reject decides', input: { list: ['cidr:allow.cidr', 'reject'], address: '192.0.2.9' }, want: { decision: 'reject', by: 'reject' } },
  { name: 'a literal dunno stops the list', input: { list: ['dunno', 'reject'], address: '192.0.2.9' }, want: { decision: 'dunno', by: 'dunno' } },
  { name: 'an empty list is dunno', input: { list: [], address: '192.0.2.9' }, want: { decision: 'dunno', by: undefined } },
] as const;

for (const { name, input, want } of cases) {
  test(`access list: ${name}`, () => {
    const { list, problems } = parseAccessList(input.list, open);
    assert.deepEqual(problems, []);
    const result = evaluateAccessList(list, input.address, mynetworks);
    assert.deepEqual({ decision: result.decision, by: result.by }, want);
    assert.equal(result.problem, undefined);
  });
}

test('access list: a table result naming a table stops with dunno and a problem', () => {
  const { list } = parseAccessList(['cidr:deny.cidr', 'permit'], open);
  const result = evaluateAccessList(list, '192.0.2.6', mynetworks);
  assert.equal(result.decision, 'dunno');
  assert.ok(result.problem);
});

test('access list: an unknown table result stops with dunno and a problem', () => {
  const { list } = parseAccessList(['cidr:deny.cidr', 'permit'], open);
  const result = evaluateAccessList(list, '192.0.2.7', mynetworks);
  assert.equal(result.decision, 'dunno');
  assert.ok(result.problem);
});

test('access list: an unknown element is a problem', () => {
  const { problems } = parseAccessList(['permit_mynetworks', 'allow_all'], open);
  assert.equal(problems.length, 1);
});

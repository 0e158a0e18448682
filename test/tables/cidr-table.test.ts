// cidr_table(5): first match wins, IPv4 and IPv6, negation, if/endif, problems at file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTable } from '../../src/tables/open-table.js';
import { ConfigError } from '../../src/errors.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

function tableFile(text: string): { directory: string; file: string } {
  const directory = temporaryDirectory('mxscreen-cidr-');
  writeFileSync(join(directory, 'access.cidr'), text);
  return { directory, file: join(directory, 'access.cidr') };
}

const TABLE = [
  '# client access',
  '192.0.2.1        permit',
  '192.0.2.0/24     reject',
  '198.51.100.0/24  reject Go away',
  '  (continued)',
  '2001:db8::/32    reject',
  '[2001:db8:1::1]  permit',
  'if 203.0.113.0/24',
  '!203.0.113.128/25 inner-low',
  'endif',
  '0.0.0.0/0        dunno',
].join('\n');

const lookupCases: { name: string; input: string; want: string | undefined }[] = [
  { name: 'first match wins (host before network)', input: '192.0.2.1', want: 'permit' },
  { name: 'network match', input: '192.0.2.77', want: 'reject' },
  { name: 'result with spaces and a continuation line', input: '198.51.100.3', want: 'reject Go away (continued)' },
  { name: 'IPv4-mapped key matches IPv4 entries', input: '::ffff:192.0.2.77', want: 'reject' },
  { name: 'IPv6 network', input: '2001:db8:ff::1', want: 'reject' },
  { name: 'if block and negated pattern', input: '203.0.113.5', want: 'inner-low' },
  { name: 'if block without a match falls through', input: '203.0.113.200', want: 'dunno' },
  { name: 'catch-all', input: '10.1.2.3', want: 'dunno' },
  { name: 'IPv6 not in any IPv6 entry', input: '2001:db9::1', want: undefined },
  { name: 'a key that is not an address', input: 'mail.example.com', want: undefined },
];

for (const { name, input, want } of lookupCases) {
  test(`cidr lookup: ${name}`, () => {
    const { directory } = tableFile(TABLE);
    assert.equal(openTable('cidr:access.cidr', directory).lookup(input), want);
  });
}

test('cidr: a bracketed IPv6 host entry matches (first-match order kept)', () => {
  const { directory } = tableFile('[2001:db8:1::1] permit\n2001:db8::/32 reject\n');
  assert.equal(openTable('cidr:access.cidr', directory).lookup('2001:db8:1::1'), 'permit');
});

test('cidr: the table spec is kept as given', () => {
  const { directory } = tableFile('192.0.2.0/24 reject\n');
  assert.equal(openTable('cidr:access.cidr', directory).spec, 'cidr:access.cidr');
});

const problemCases: { name: string; input: string; want: number[] }[] = [
  { name: 'host bits set', input: '# x\n192.0.2.1/24 reject\n', want: [2] },
  { name: 'missing result', input: '192.0.2.0/24\n', want: [1] },
  { name: 'bad address', input: 'example.com reject\n', want: [1] },
  { name: 'endif without if', input: '192.0.2.0/24 ok\nendif\n', want: [2] },
  { name: 'if without endif', input: 'if 192.0.2.0/24\n192.0.2.1 ok\n', want: [1] },
  { name: 'every bad line', input: 'bad1 x\n192.0.2.0/24 ok\n10.0.0.1/8 x\n10.0.0.0/40 x\n', want: [1, 3, 4] },
];

for (const { name, input, want } of problemCases) {
  test(`cidr problem: ${name}`, () => {
    const { directory, file } = tableFile(input);
    assert.throws(() => openTable('cidr:access.cidr', directory), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'ERR_CONFIG');
      assert.deepEqual(error.problems.map((problem) => [problem.file, problem.line]), want.map((line) => [file, line]));
      return true;
    });
  });
}

// hash:/texthash:/btree: tables read from postmap source text: key value lines,
// lower-cased keys, continuation lines, first duplicate wins, problems at file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTable } from '../../src/tables/open-table.js';
import { ConfigError } from '../../src/errors.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

function tableDir(name: string, text: string): string {
  const directory = temporaryDirectory('mxscreen-hash-');
  writeFileSync(join(directory, name), text);
  return directory;
}

const RECIPIENTS = [
  '# /etc/postfix/relay_recipients',
  '@example.com        OK',
  '',
  'Info@Example.com    OK',
  'joe@example.com     any value with spaces',
  'joe@example.com     second',
  'long@example.com    first part',
  '    second part',
].join('\n');

const lookupCases: { name: string; input: string; want: string | undefined }[] = [
  { name: '@domain key', input: '@example.com', want: 'OK' },
  { name: 'keys are lower-cased', input: 'info@example.com', want: 'OK' },
  { name: 'lookup lower-cases the key', input: 'INFO@EXAMPLE.COM', want: 'OK' },
  { name: 'value keeps its spaces; first duplicate wins', input: 'joe@example.com', want: 'any value with spaces' },
  { name: 'continuation line', input: 'long@example.com', want: 'first part second part' },
  { name: 'exact match only (no @domain fallback)', input: 'nobody@example.com', want: undefined },
  { name: 'exact match only (no parent domain)', input: 'example.com', want: undefined },
];

for (const type of ['hash', 'texthash', 'btree', 'lmdb'] as const) {
  for (const { name, input, want } of lookupCases) {
    test(`${type} lookup: ${name}`, () => {
      const directory = tableDir('relay_recipients', RECIPIENTS);
      assert.equal(openTable(`${type}:relay_recipients`, directory).lookup(input), want);
    });
  }
}

test('hash: absolute table name', () => {
  const directory = tableDir('transport', 'example.com smtp:[127.0.0.1]:2526\n');
  assert.equal(openTable(`hash:${join(directory, 'transport')}`, '/nonexistent').lookup('example.com'), 'smtp:[127.0.0.1]:2526');
});

test('hash: a line without a value is a problem at its file:line', () => {
  const directory = tableDir('transport', 'example.com smtp:[127.0.0.1]:2526\n# c\nlonely\n');
  assert.throws(() => openTable('hash:transport', directory), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.problems.map((problem) => [problem.file, problem.line]), [[join(directory, 'transport'), 3]]);
    return true;
  });
});

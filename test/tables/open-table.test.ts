// openTable: type dispatch, proxy:, relative names, errors with codes and locations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTable, tableSourceFile, tableTypeOf } from '../../src/tables/open-table.js';
import { ConfigError } from '../../src/errors.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

const typeCases: { input: string; want: string | undefined }[] = [
  { input: 'cidr:/etc/postfix/client_access.cidr', want: 'cidr' },
  { input: 'hash:transport', want: 'hash' },
  { input: 'proxy:btree:/var/lib/postfix/postscreen_cache', want: 'proxy' },
  { input: 'inline:{ a=b }', want: 'inline' },
  { input: '127.0.0.1:25', want: undefined },
  { input: '[::1]:25', want: undefined },
  { input: 'fe80::1', want: undefined },
  { input: 'mysql:/etc/postfix/mysql.cf', want: undefined },
  { input: 'example.com', want: undefined },
];

for (const { input, want } of typeCases) {
  test(`tableTypeOf: ${input}`, () => {
    assert.equal(tableTypeOf(input), want);
  });
}

test('proxy:type:name opens type:name and keeps the whole spec', () => {
  const directory = temporaryDirectory('mxscreen-open-');
  writeFileSync(join(directory, 'transport'), 'example.com relay:[127.0.0.1]:2526\n');
  const table = openTable('proxy:hash:transport', directory);
  assert.equal(table.spec, 'proxy:hash:transport');
  assert.equal(table.lookup('example.com'), 'relay:[127.0.0.1]:2526');
});

test('tableSourceFile: file tables resolve against the directory; inline and static have none', () => {
  assert.equal(tableSourceFile('hash:transport', '/etc/mxscreen'), '/etc/mxscreen/transport');
  assert.equal(tableSourceFile('proxy:cidr:/etc/postfix/a.cidr', '/x'), '/etc/postfix/a.cidr');
  assert.equal(tableSourceFile('inline:{ a=b }', '/x'), undefined);
  assert.equal(tableSourceFile('static:all', '/x'), undefined);
});

const errorCases: { name: string; spec: string }[] = [
  { name: 'unknown type', spec: 'mysql:/etc/postfix/mysql.cf' },
  { name: 'no type', spec: 'transport' },
  { name: 'missing file', spec: 'hash:does-not-exist' },
  { name: 'missing name', spec: 'cidr:' },
  { name: 'proxy of an unknown type', spec: 'proxy:ldap:/etc/postfix/ldap.cf' },
];

for (const { name, spec } of errorCases) {
  test(`openTable error: ${name} is ERR_CONFIG at the origin`, () => {
    const directory = temporaryDirectory('mxscreen-open-');
    assert.throws(() => openTable(spec, directory, { file: '/etc/mxscreen/main.cf', line: 12 }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'ERR_CONFIG');
      assert.deepEqual(error.problems.map((problem) => [problem.file, problem.line]), [['/etc/mxscreen/main.cf', 12]]);
      return true;
    });
  });
}

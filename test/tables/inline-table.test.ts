// inline:{ key=value, ... } tables (Postfix 3.0), with and without spaces around =.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTable } from '../../src/tables/open-table.js';
import { ConfigError } from '../../src/errors.js';

const lookupCases: { name: string; spec: string; key: string; want: string | undefined }[] = [
  { name: 'key=value', spec: 'inline:{ a=1, b=2 }', key: 'b', want: '2' },
  { name: 'white space as separator', spec: 'inline:{a=1 b=2}', key: 'b', want: '2' },
  { name: 'spaces around =', spec: 'inline:{ example.com = smtp:[127.0.0.1]:2526 }', key: 'example.com', want: 'smtp:[127.0.0.1]:2526' },
  { name: 'inner braces keep spaces and commas', spec: 'inline:{ { key = text with, comma }, b=2 }', key: 'key', want: 'text with, comma' },
  { name: 'keys are case-insensitive', spec: 'inline:{ Example.COM=OK }', key: 'example.com', want: 'OK' },
  { name: 'value with =', spec: 'inline:{ a=b=c }', key: 'a', want: 'b=c' },
  { name: 'empty value', spec: 'inline:{ a= }', key: 'a', want: '' },
  { name: 'missing key', spec: 'inline:{ a=1 }', key: 'z', want: undefined },
  { name: 'empty table', spec: 'inline:{}', key: 'a', want: undefined },
];

for (const { name, spec, key, want } of lookupCases) {
  test(`inline lookup: ${name}`, () => {
    assert.equal(openTable(spec, '/').lookup(key), want);
  });
}

const problemCases: { name: string; spec: string }[] = [
  { name: 'no braces', spec: 'inline:a=1' },
  { name: 'element without =', spec: 'inline:{ a=1, lonely }' },
  { name: 'unbalanced inner brace', spec: 'inline:{ { a=1 }' },
  { name: 'inner braces without =', spec: 'inline:{ { a b } }' },
];

for (const { name, spec } of problemCases) {
  test(`inline problem: ${name} is reported where the table is named`, () => {
    assert.throws(() => openTable(spec, '/', { file: '/etc/mxscreen/main.cf', line: 7 }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'ERR_CONFIG');
      assert.ok(error.problems.length > 0);
      for (const problem of error.problems) assert.deepEqual([problem.file, problem.line], ['/etc/mxscreen/main.cf', 7]);
      return true;
    });
  });
}

// static:value tables return the same value for every key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTable } from '../../src/tables/open-table.js';

const cases: { name: string; spec: string; want: string }[] = [
  { name: 'plain value', spec: 'static:all', want: 'all' },
  { name: 'value with a colon', spec: 'static:smtp:[127.0.0.1]:2526', want: 'smtp:[127.0.0.1]:2526' },
  { name: 'braces keep spaces', spec: 'static:{ text with spaces }', want: 'text with spaces' },
  { name: 'empty value', spec: 'static:', want: '' },
];

for (const { name, spec, want } of cases) {
  test(`static: ${name}`, () => {
    const table = openTable(spec, '/');
    assert.equal(table.lookup('anything'), want);
    assert.equal(table.lookup(''), want);
  });
}

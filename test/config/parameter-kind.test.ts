// Reading a parameter's text as its kind: list splitting with {} groups, booleans
// (no catalogue parameter is boolean yet), and match lists that are not tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readKind, splitList, type ParameterContext } from '../../src/config/parameter-kind.js';
import type { ParameterSpec } from '../../src/config/catalogue.js';

const NO_FILES: ParameterContext = { openTable: () => undefined, readPatternFile: () => undefined };

const splitCases: { name: string; input: string; want: string[] }[] = [
  { name: 'commas', input: 'a,b,c', want: ['a', 'b', 'c'] },
  { name: 'commas and white space', input: ' a, b\n\tc  d ,, e ', want: ['a', 'b', 'c', 'd', 'e'] },
  { name: 'inline table stays one word', input: 'example.com, inline:{ a=1, b = 2 } x', want: ['example.com', 'inline:{ a=1, b = 2 }', 'x'] },
  { name: 'nested braces', input: 'inline:{ { k = v, w }, c=d }', want: ['inline:{ { k = v, w }, c=d }'] },
  { name: 'empty', input: '  ', want: [] },
];

for (const { name, input, want } of splitCases) {
  test(`splitList: ${name}`, () => {
    assert.deepEqual(splitList(input), want);
  });
}

const BOOLEAN: ParameterSpec = { name: 'x', kind: 'boolean', default: 'no', doc: '' };

const booleanCases: { input: string; want: boolean | 'problem' }[] = [
  { input: 'yes', want: true },
  { input: 'NO', want: false },
  { input: 'true', want: 'problem' },
  { input: '', want: 'problem' },
];

for (const { input, want } of booleanCases) {
  test(`boolean: "${input}"`, () => {
    const read = readKind(BOOLEAN, input, NO_FILES);
    assert.deepEqual(read.problems.length > 0 ? 'problem' : read.value, want);
  });
}

const MATCH: ParameterSpec = { name: 'y', kind: 'match-list', default: '', doc: '' };

const literalCases: { name: string; input: string }[] = [
  { name: 'IPv6 network is not a table', input: 'fe80::/10' },
  { name: 'bracketed IPv6 is not a table', input: '[::1]/128' },
  { name: 'a hex-looking IPv6 address is not a table', input: 'cdb::1' },
  { name: 'domain', input: 'example.com' },
];

for (const { name, input } of literalCases) {
  test(`match list literal: ${name}`, () => {
    const opened: string[] = [];
    const read = readKind(MATCH, input, { ...NO_FILES, openTable: (spec) => (opened.push(spec), undefined) });
    assert.deepEqual(read.problems, []);
    assert.deepEqual(read.value, { patterns: [input], tables: [] });
    assert.deepEqual(opened, []);
  });
}

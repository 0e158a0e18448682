// regexp_table(5) and pcre_table(5) as JavaScript RegExp: flags, negation, if/endif,
// $n substitution, case-insensitive by default, problems at file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTable } from '../../src/tables/open-table.js';
import { ConfigError } from '../../src/errors.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

function tableDir(text: string): string {
  const directory = temporaryDirectory('mxscreen-regexp-');
  writeFileSync(join(directory, 'checks'), text);
  return directory;
}

const MIME_CHECKS = [
  '# mime_header_checks',
  '/^Content-(Disposition|Type).*name\\s*=\\s*"?(.*\\.(bat|com|exe|jar|pif|scr|swf))(\\?=)?"?\\s*$/',
  '    REJECT Attachment type not allowed. File "$2" has the unacceptable extension "$3"',
  '/^Subject: Exact/i      DISCARD case-sensitive',
  'if /^X-Block:/',
  '!/ok$/                 REJECT blocked header',
  'endif',
  '|weird|               HOLD other delimiter',
  '/[[:digit:]]{5}/        WARN five digits',
  '/cost: \\$(\\d+)/       PRICE ${1}$$',
].join('\n');

const lookupCases: { name: string; input: string; want: string | undefined }[] = [
  {
    name: '$n substitution across a continuation line',
    input: 'Content-Disposition: attachment; filename="invoice.exe"',
    want: 'REJECT Attachment type not allowed. File "invoice.exe" has the unacceptable extension "exe"',
  },
  { name: 'case-insensitive by default', input: 'content-type: x; NAME="A.PIF"', want: 'REJECT Attachment type not allowed. File "A.PIF" has the unacceptable extension "PIF"' },
  { name: 'flag i makes it case-sensitive: match', input: 'Subject: Exact', want: 'DISCARD case-sensitive' },
  { name: 'flag i makes it case-sensitive: no match', input: 'subject: exact', want: undefined },
  { name: 'negated pattern inside if: applies', input: 'X-Block: no', want: 'REJECT blocked header' },
  { name: 'negated pattern inside if: does not apply', input: 'X-Block: ok', want: undefined },
  { name: 'another delimiter', input: 'weird', want: 'HOLD other delimiter' },
  { name: 'POSIX class translated', input: 'zip 12345', want: 'WARN five digits' },
  { name: '${n} and $$', input: 'cost: $42', want: 'PRICE 42$' },
  { name: 'no match', input: 'Subject: hello', want: undefined },
];

for (const type of ['regexp', 'pcre'] as const) {
  for (const { name, input, want } of lookupCases) {
    test(`${type} lookup: ${name}`, () => {
      assert.equal(openTable(`${type}:checks`, tableDir(MIME_CHECKS)).lookup(input), want);
    });
  }
}

const pcreFlagCases: { name: string; table: string; input: string; want: string | undefined }[] = [
  { name: 'x removes white space and comments', table: '/^ a b  # comment\n  c $/x X', input: 'abc', want: 'X' },
  { name: 'A anchors at the start', table: '/b/A X', input: 'ab', want: undefined },
  { name: 's lets . match a newline', table: '/a.b/s X', input: 'a\nb', want: 'X' },
  { name: 'm makes ^ match after a newline', table: '/^b/m X', input: 'a\nb', want: 'X' },
  { name: 'nested if blocks', table: 'if /a/\nif /b/\n/c/ ABC\nendif\n/./ A\nendif', input: 'ac', want: 'A' },
  { name: 'nested if blocks all match', table: 'if /a/\nif /b/\n/c/ ABC\nendif\n/./ A\nendif', input: 'abc', want: 'ABC' },
];

for (const { name, table, input, want } of pcreFlagCases) {
  test(`pcre flag: ${name}`, () => {
    assert.equal(openTable('pcre:checks', tableDir(table)).lookup(input), want);
  });
}

const problemCases: { name: string; type: 'regexp' | 'pcre'; input: string; want: number[] }[] = [
  { name: 'no closing delimiter', type: 'pcre', input: '/abc X\n', want: [1] },
  { name: 'missing result', type: 'pcre', input: '# c\n/abc/\n', want: [2] },
  { name: 'invalid RegExp', type: 'pcre', input: '/(/ X\n', want: [1] },
  { name: 'unknown flag', type: 'pcre', input: '/a/q X\n', want: [1] },
  { name: 'ungreedy flag U is not supported', type: 'pcre', input: '/a/U X\n', want: [1] },
  { name: 'basic regular expressions are not supported', type: 'regexp', input: '/a/x X\n', want: [1] },
  { name: '$n beyond the groups', type: 'regexp', input: '/(a)/ $2\n', want: [1] },
  { name: '$n in a negated rule', type: 'regexp', input: '!/(a)/ $1\n', want: [1] },
  { name: 'endif without if', type: 'pcre', input: '/a/ X\nendif\n', want: [2] },
  { name: 'if without endif', type: 'pcre', input: '/a/ X\nif /b/\n', want: [2] },
  { name: 'a pattern without delimiter', type: 'regexp', input: 'abc X\n', want: [1] },
  { name: 'every bad line', type: 'pcre', input: '/(/ X\n/ok/ fine\n/a/ \n', want: [1, 3] },
];

for (const { name, type, input, want } of problemCases) {
  test(`${type} problem: ${name}`, () => {
    const directory = tableDir(input);
    assert.throws(() => openTable(`${type}:checks`, directory), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'ERR_CONFIG');
      assert.deepEqual(error.problems.map((problem) => [problem.file, problem.line]), want.map((line) => [join(directory, 'checks'), line]));
      return true;
    });
  });
}

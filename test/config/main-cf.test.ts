// main.cf syntax (postconf(5) "main.cf file format"): settings, continuation lines,
// comments, last setting wins, file:line of entries and problems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMainCf } from '../../src/config/main-cf.js';

const FILE = '/etc/mxscreen/main.cf';

const entryCases: { name: string; input: string; want: { name: string; value: string; line: number }[] }[] = [
  { name: 'one setting', input: 'myhostname = mx1.example.net\n', want: [{ name: 'myhostname', value: 'mx1.example.net', line: 1 }] },
  { name: 'no white space around =', input: 'a=b', want: [{ name: 'a', value: 'b', line: 1 }] },
  { name: 'empty value', input: 'relay_domains =\n', want: [{ name: 'relay_domains', value: '', line: 1 }] },
  { name: 'trailing white space removed', input: 'a = b c   \t\n', want: [{ name: 'a', value: 'b c', line: 1 }] },
  {
    name: 'comments and blank lines skipped, lines counted',
    input: '# comment\n\n   \n  # indented comment\nmessage_size_limit = 25600000\n',
    want: [{ name: 'message_size_limit', value: '25600000', line: 5 }],
  },
  {
    name: 'continuation lines join with one space',
    input: 'smtpd_recipient_restrictions =\n  permit_mynetworks,\n\treject_unauth_destination\nnext = 1\n',
    want: [
      { name: 'smtpd_recipient_restrictions', value: 'permit_mynetworks, reject_unauth_destination', line: 1 },
      { name: 'next', value: '1', line: 4 },
    ],
  },
  {
    name: 'a comment between a line and its continuation is skipped',
    input: 'a = one,\n# not here\n  two\n',
    want: [{ name: 'a', value: 'one, two', line: 1 }],
  },
  {
    name: 'later setting overrides the earlier',
    input: 'a = 1\nb = 2\na = 3\n',
    want: [{ name: 'b', value: '2', line: 2 }, { name: 'a', value: '3', line: 3 }],
  },
  { name: 'CRLF line ends', input: 'a = 1\r\nb = 2\r\n', want: [{ name: 'a', value: '1', line: 1 }, { name: 'b', value: '2', line: 2 }] },
  { name: 'a # after the value stays in it (Postfix)', input: 'a = 1 # x', want: [{ name: 'a', value: '1 # x', line: 1 }] },
  { name: '= inside the value', input: 'a = b=c', want: [{ name: 'a', value: 'b=c', line: 1 }] },
];

for (const { name, input, want } of entryCases) {
  test(`parseMainCf: ${name}`, () => {
    const { entries, problems } = parseMainCf(input, FILE);
    assert.deepEqual(problems, []);
    assert.deepEqual(entries.map((entry) => ({ name: entry.name, value: entry.value, line: entry.line })), want);
    for (const entry of entries) assert.equal(entry.file, FILE);
  });
}

const problemCases: { name: string; input: string; want: number[] }[] = [
  { name: 'a line without =', input: 'a = 1\nthis is not a setting\n', want: [2] },
  { name: 'a bad name', input: 'bad-name = 1\n', want: [1] },
  { name: 'a continuation with nothing before it', input: '  orphan\na = 1\n', want: [1] },
  { name: 'several problems, each with its line', input: 'x\na = 1\ny\n\nz = \n=1\n', want: [1, 3, 6] },
];

for (const { name, input, want } of problemCases) {
  test(`parseMainCf problem: ${name}`, () => {
    const { problems } = parseMainCf(input, FILE);
    assert.deepEqual(problems.map((problem) => problem.line), want);
    for (const problem of problems) assert.equal(problem.file, FILE);
  });
}

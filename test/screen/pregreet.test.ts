import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeBytes, formatPregreet, formatSeconds, teaserLine } from '../../src/screen/pregreet.js';

const escapes = [
  { name: 'CRLF as \\r\\n (postscreen log)', input: 'EHLO ylmf-pc\r\n', want: 'EHLO ylmf-pc\\r\\n' },
  { name: 'tab and backslash', input: 'a\tb\\c', want: 'a\\tb\\\\c' },
  { name: 'other control bytes in octal', input: '\x00\x1b\x7f', want: '\\000\\033\\177' },
  { name: 'bytes above 127 in octal', input: '\xe9', want: '\\351' },
] as const;
for (const { name, input, want } of escapes) {
  test(`escapeBytes: ${name}`, () => {
    assert.equal(escapeBytes(Buffer.from(input, 'latin1')), want);
  });
}

test('escapeBytes: cut at 100 characters', () => {
  assert.equal(escapeBytes(Buffer.from('x'.repeat(300))).length, 100);
  assert.equal(escapeBytes(Buffer.from('\r'.repeat(300))), '\\r'.repeat(50));
});

const seconds = [
  { name: 'under a second', input: 83, want: '0.08' },
  { name: 'rounded to two decimals', input: 1234, want: '1.23' },
  { name: 'zero', input: 0, want: '0.00' },
] as const;
for (const { name, input, want } of seconds) {
  test(`formatSeconds: ${name}`, () => {
    assert.equal(formatSeconds(input), want);
  });
}

test('formatPregreet: postscreen(8) wording', () => {
  assert.equal(formatPregreet({ bytes: 14, afterMs: 220, text: 'EHLO yahoo.com\\r\\n' }, '[192.0.2.1]:2321'), 'PREGREET 14 after 0.22 from [192.0.2.1]:2321: EHLO yahoo.com\\r\\n');
});

test('teaserLine: 220- and the banner; none for an empty banner', () => {
  assert.equal(teaserLine('mx1.example.test ESMTP mxscreen'), '220-mx1.example.test ESMTP mxscreen\r\n');
  assert.equal(teaserLine(''), undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHeaderLine } from '../../src/message/header-field.js';

test('isHeaderLine: Postfix is_header()', () => {
  for (const { input, want } of [
    { input: 'Subject:', want: true },
    { input: 'X-Mailer:foo', want: true },
    { input: 'MAIL', want: false },
    { input: ':', want: false },
    { input: 'RCPT', want: false },
    { input: 'Subject x:', want: false },
    { input: 'Ümlaut:', want: false },
  ]) {
    assert.equal(isHeaderLine(input), want, input);
  }
});

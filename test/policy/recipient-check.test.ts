import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRelayRecipient, type RecipientDecision } from '../../src/policy/recipient-check.js';
import { asciiAddress, parseRecipient } from '../../src/policy/recipient-address.js';
import { memoryTable } from './policy-tables.js';

// Seed 003's relay_recipients, with the @domain wildcard.
const relayRecipients = memoryTable('hash:relay_recipients', {
  'user1@example.com': 'any_value',
  'user2@example.com': 'any_value',
  '@oreillynet.com': 'any_value',
});
const second = memoryTable('inline:second', { 'info@other.example': 'OK' });

const cases: { name: string; input: { tables: typeof relayRecipients[]; rcpt: string }; want: RecipientDecision['kind'] }[] = [
  { name: 'listed address', input: { tables: [relayRecipients], rcpt: 'user1@example.com' }, want: 'accept' },
  { name: 'listed address, other case', input: { tables: [relayRecipients], rcpt: 'User1@EXAMPLE.com' }, want: 'accept' },
  { name: 'unlisted address', input: { tables: [relayRecipients], rcpt: 'nobody@example.com' }, want: 'reject' },
  { name: '@domain wildcard', input: { tables: [relayRecipients], rcpt: 'anyone@oreillynet.com' }, want: 'accept' },
  { name: 'wildcard does not cover subdomains', input: { tables: [relayRecipients], rcpt: 'anyone@sub.oreillynet.com' }, want: 'reject' },
  { name: 'found in the second table', input: { tables: [relayRecipients, second], rcpt: 'info@other.example' }, want: 'accept' },
  { name: 'empty relay_recipient_maps accepts any', input: { tables: [], rcpt: 'nobody@example.com' }, want: 'accept' },
];

for (const { name, input, want } of cases) {
  test(`checkRelayRecipient: ${name}`, () => {
    assert.equal(checkRelayRecipient(input.tables, parseRecipient(input.rcpt)).kind, want);
  });
}

test('the reject is 550 5.1.1 User unknown in relay recipient table', () => {
  const decision = checkRelayRecipient([relayRecipients], parseRecipient('Nobody@example.com'));
  assert.deepEqual(decision.kind === 'reject' ? decision.reply : undefined, {
    code: 550,
    enhanced: '5.1.1',
    text: '<Nobody@example.com>: Recipient address rejected: User unknown in relay recipient table',
  });
});

test('the exact address is tried before the wildcard', () => {
  const keys: string[] = [];
  const spy = { spec: 'inline:spy', lookup: (key: string) => (keys.push(key), undefined) };
  checkRelayRecipient([spy], parseRecipient('Joe@Example.COM'));
  assert.deepEqual(keys, ['joe@example.com', '@example.com']);
});

const addresses: { name: string; input: string; want: { domain: string; key: string; ascii: string } }[] = [
  { name: 'plain', input: 'Joe@Example.COM', want: { domain: 'example.com', key: 'joe@example.com', ascii: 'Joe@Example.COM' } },
  { name: 'IDN domain', input: 'joe@exämple.com', want: { domain: 'xn--exmple-cua.com', key: 'joe@xn--exmple-cua.com', ascii: 'joe@xn--exmple-cua.com' } },
  { name: 'trailing dot', input: 'joe@example.com.', want: { domain: 'example.com', key: 'joe@example.com', ascii: 'joe@example.com.' } },
  { name: 'quoted local part with @', input: '"a@b"@example.com', want: { domain: 'example.com', key: '"a@b"@example.com', ascii: '"a@b"@example.com' } },
  { name: 'domainless postmaster', input: 'Postmaster', want: { domain: '', key: 'postmaster', ascii: 'Postmaster' } },
  { name: 'address literal', input: 'joe@[192.0.2.1]', want: { domain: '[192.0.2.1]', key: 'joe@[192.0.2.1]', ascii: 'joe@[192.0.2.1]' } },
];

for (const { name, input, want } of addresses) {
  test(`parseRecipient/asciiAddress: ${name}`, () => {
    const parsed = parseRecipient(input);
    assert.deepEqual({ domain: parsed.domain, key: parsed.key, ascii: asciiAddress(input) }, want);
  });
}

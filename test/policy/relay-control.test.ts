import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLocalDestination, relayAccessDenied, unauthDestination, type RelayPolicy } from '../../src/policy/relay-control.js';
import { parseRecipient } from '../../src/policy/recipient-address.js';
import { matchList, memoryTable } from './policy-tables.js';

const transport = memoryTable('hash:transport', { 'example.com': 'smtp:[127.0.0.1]:2526' });

const policy: RelayPolicy = {
  mynetworks: matchList('127.0.0.1/32', '[::1]/128'),
  relayDomains: matchList('relay.example', transport),
  relayDomainsMatchSubdomains: true,
};

const LOCAL = '192.0.2.1';

const cases: { name: string; input: { policy?: RelayPolicy; rcpt: string }; want: 'authorized' | 'denied' }[] = [
  { name: 'relay domain', input: { rcpt: 'joe@relay.example' }, want: 'authorized' },
  { name: 'relay domain from a table (key column only)', input: { rcpt: 'joe@example.com' }, want: 'authorized' },
  { name: 'subdomain with parent_domain_matches_subdomains', input: { rcpt: 'joe@sub.relay.example' }, want: 'authorized' },
  { name: 'subdomain without parent_domain_matches_subdomains', input: { policy: { ...policy, relayDomainsMatchSubdomains: false }, rcpt: 'joe@sub.relay.example' }, want: 'denied' },
  { name: 'domain case does not matter', input: { rcpt: 'Joe@RELAY.Example' }, want: 'authorized' },
  { name: 'trailing dot', input: { rcpt: 'joe@example.com.' }, want: 'authorized' },
  { name: 'foreign domain', input: { rcpt: 'joe@elsewhere.example' }, want: 'denied' },
  { name: 'a look-alike suffix is not a subdomain', input: { rcpt: 'joe@notrelay.example' }, want: 'denied' },
  { name: 'percent hack', input: { rcpt: 'user%elsewhere.example@example.com' }, want: 'denied' },
  { name: 'bang path', input: { rcpt: 'elsewhere.example!user@example.com' }, want: 'denied' },
  { name: 'quoted local part with @', input: { rcpt: '"user@elsewhere.example"@example.com' }, want: 'denied' },
  { name: 'address literal of our own address is local', input: { rcpt: `postmaster@[${LOCAL}]` }, want: 'authorized' },
  { name: 'address literal of another address', input: { rcpt: 'joe@[192.0.2.99]' }, want: 'denied' },
  { name: 'bare postmaster is local', input: { rcpt: 'postmaster' }, want: 'authorized' },
];

for (const { name, input, want } of cases) {
  test(`unauthDestination: ${name}`, () => {
    assert.equal(unauthDestination(input.policy ?? policy, parseRecipient(input.rcpt), LOCAL), want);
  });
}

test('relayAccessDenied is Postfix reply 554 5.7.1 with the address as written', () => {
  assert.deepEqual(relayAccessDenied('Joe@Elsewhere.example'), { code: 554, enhanced: '5.7.1', text: '<Joe@Elsewhere.example>: Relay access denied' });
});

test('never an open relay: empty relay_domains denies every foreign domain', () => {
  const closed: RelayPolicy = { mynetworks: matchList(), relayDomains: matchList(), relayDomainsMatchSubdomains: true };
  for (const rcpt of ['joe@example.com', 'joe@elsewhere.example', 'joe@[127.0.0.1]']) {
    assert.equal(unauthDestination(closed, parseRecipient(rcpt), LOCAL), 'denied', rcpt);
  }
});

test('isLocalDestination: IPv6 literal form and IPv4-mapped local address', () => {
  assert.equal(isLocalDestination('[ipv6:::1]', '::1'), true);
  assert.equal(isLocalDestination('[127.0.0.1]', '::ffff:127.0.0.1'), true);
});

test('IDN recipient domain matches its punycode relay_domains entry', () => {
  const idn: RelayPolicy = { ...policy, relayDomains: matchList('xn--exmple-cua.com') };
  assert.equal(unauthDestination(idn, parseRecipient('joe@exämple.com'), LOCAL), 'authorized');
});

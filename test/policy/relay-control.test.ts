import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRelay, type RelayDecision, type RelayPolicy } from '../../src/policy/relay-control.js';
import { parseRecipient } from '../../src/policy/recipient-address.js';
import { matchList, memoryTable } from './policy-tables.js';

const transport = memoryTable('hash:transport', { 'example.com': 'smtp:[127.0.0.1]:2526' });

const policy: RelayPolicy = {
  mynetworks: matchList('127.0.0.1/32', '[::1]/128'),
  relayDomains: matchList('relay.example', transport),
  relayDomainsMatchSubdomains: true,
};

const cases: { name: string; input: { policy?: RelayPolicy; client: string; rcpt: string }; want: RelayDecision['kind'] }[] = [
  { name: 'relay domain from a foreign client', input: { client: '192.0.2.10', rcpt: 'joe@relay.example' }, want: 'relay-domain' },
  { name: 'relay domain from a table (key column only)', input: { client: '192.0.2.10', rcpt: 'joe@example.com' }, want: 'relay-domain' },
  { name: 'subdomain with parent_domain_matches_subdomains', input: { client: '192.0.2.10', rcpt: 'joe@sub.relay.example' }, want: 'relay-domain' },
  {
    name: 'subdomain without parent_domain_matches_subdomains',
    input: { policy: { ...policy, relayDomainsMatchSubdomains: false }, client: '192.0.2.10', rcpt: 'joe@sub.relay.example' },
    want: 'reject',
  },
  { name: 'domain case does not matter', input: { client: '192.0.2.10', rcpt: 'Joe@RELAY.Example' }, want: 'relay-domain' },
  { name: 'foreign domain from a foreign client', input: { client: '192.0.2.10', rcpt: 'joe@elsewhere.example' }, want: 'reject' },
  { name: 'foreign domain from mynetworks', input: { client: '127.0.0.1', rcpt: 'joe@elsewhere.example' }, want: 'permit-mynetworks' },
  { name: 'foreign domain from IPv4-mapped mynetworks client', input: { client: '::ffff:127.0.0.1', rcpt: 'joe@elsewhere.example' }, want: 'permit-mynetworks' },
  { name: 'foreign domain from IPv6 mynetworks client', input: { client: '::1', rcpt: 'joe@elsewhere.example' }, want: 'permit-mynetworks' },
  { name: 'neighbour address outside mynetworks', input: { client: '127.0.0.2', rcpt: 'joe@elsewhere.example' }, want: 'reject' },
  { name: 'relay domain from mynetworks still goes to recipient validation', input: { client: '127.0.0.1', rcpt: 'joe@relay.example' }, want: 'relay-domain' },
  { name: 'a look-alike suffix is not a subdomain', input: { client: '192.0.2.10', rcpt: 'joe@notrelay.example' }, want: 'reject' },
  { name: 'address literal is not a relay domain', input: { client: '192.0.2.10', rcpt: 'joe@[192.0.2.1]' }, want: 'reject' },
  { name: 'bare postmaster from a foreign client', input: { client: '192.0.2.10', rcpt: 'postmaster' }, want: 'reject' },
];

for (const { name, input, want } of cases) {
  test(`decideRelay: ${name}`, () => {
    assert.equal(decideRelay(input.policy ?? policy, input.client, parseRecipient(input.rcpt)).kind, want);
  });
}

test('the reject carries Postfix reply 554 5.7.1 with the address as written', () => {
  const decision = decideRelay(policy, '192.0.2.10', parseRecipient('Joe@Elsewhere.example'));
  assert.equal(decision.kind, 'reject');
  assert.deepEqual(decision.kind === 'reject' ? decision.reply : undefined, {
    code: 554,
    enhanced: '5.7.1',
    text: '<Joe@Elsewhere.example>: Relay access denied',
  });
});

test('never an open relay: empty relay_domains and empty mynetworks deny a foreign client', () => {
  const closed: RelayPolicy = { mynetworks: matchList(), relayDomains: matchList(), relayDomainsMatchSubdomains: true };
  for (const rcpt of ['joe@example.com', 'joe@elsewhere.example', 'postmaster', 'joe@[127.0.0.1]']) {
    for (const client of ['192.0.2.10', '127.0.0.1', '::1']) {
      assert.equal(decideRelay(closed, client, parseRecipient(rcpt)).kind, 'reject', `${client} → ${rcpt}`);
    }
  }
});

test('empty relay_domains: a foreign client is denied even for our own host name', () => {
  const noDomains: RelayPolicy = { ...policy, relayDomains: matchList() };
  assert.equal(decideRelay(noDomains, '198.51.100.7', parseRecipient('joe@example.com')).kind, 'reject');
});

test('IDN recipient domain matches its punycode relay_domains entry', () => {
  const idn: RelayPolicy = { ...policy, relayDomains: matchList('xn--exmple-cua.com') };
  assert.equal(decideRelay(idn, '192.0.2.10', parseRecipient('joe@exämple.com')).kind, 'relay-domain');
});

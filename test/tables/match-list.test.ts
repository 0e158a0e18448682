// Postfix match lists: matchDomain (relay_domains, parent_domain_matches_subdomains)
// and matchNetwork (mynetworks), with negation and tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { matchDomain, matchNetwork } from '../../src/tables/match-list.js';
import { openTable } from '../../src/tables/open-table.js';
import type { MatchList } from '../../src/config/value.js';
import type { LookupTable } from '../../src/tables/lookup-table.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

const directory = temporaryDirectory('mxscreen-match-');
writeFileSync(join(directory, 'transport'), 'example.com smtp:[127.0.0.1]:2526\n.example.org smtp:[127.0.0.1]:2527\n');
writeFileSync(join(directory, 'clients.cidr'), '10.0.0.0/8 OK\n2001:db8::/32 OK\n');
const transport = openTable('hash:transport', directory);
const clients = openTable('cidr:clients.cidr', directory);

function list(patterns: string[], tables: LookupTable[] = []): MatchList {
  return { patterns, tables };
}

const domainCases: { name: string; list: MatchList; domain: string; parent: boolean; want: boolean }[] = [
  { name: 'literal', list: list(['example.com']), domain: 'example.com', parent: false, want: true },
  { name: 'literal, any case, trailing dot', list: list(['Example.COM']), domain: 'EXAMPLE.com.', parent: false, want: true },
  { name: 'literal does not match a subdomain without parent matching', list: list(['example.com']), domain: 'mx.example.com', parent: false, want: false },
  { name: 'literal matches a subdomain with parent matching', list: list(['example.com']), domain: 'a.b.example.com', parent: true, want: true },
  { name: 'no match of a mere suffix', list: list(['example.com']), domain: 'badexample.com', parent: true, want: false },
  { name: '.domain matches subdomains', list: list(['.example.com']), domain: 'mx.example.com', parent: false, want: true },
  { name: '.domain does not match the domain itself', list: list(['.example.com']), domain: 'example.com', parent: false, want: false },
  { name: 'negation first wins', list: list(['!spam.example.com', 'example.com']), domain: 'spam.example.com', parent: true, want: false },
  { name: 'negation does not hide others', list: list(['!spam.example.com', 'example.com']), domain: 'ham.example.com', parent: true, want: true },
  { name: 'table key', list: list(['hash:transport'], [transport]), domain: 'example.com', parent: false, want: true },
  { name: 'table parent key with parent matching', list: list(['hash:transport'], [transport]), domain: 'mx.example.com', parent: true, want: true },
  { name: 'table parent key without parent matching', list: list(['hash:transport'], [transport]), domain: 'mx.example.com', parent: false, want: false },
  { name: 'table .domain key without parent matching', list: list(['hash:transport'], [transport]), domain: 'mx.example.org', parent: false, want: true },
  { name: 'negated table', list: list(['!hash:transport', 'example.com'], [transport]), domain: 'example.com', parent: false, want: false },
  { name: 'not listed', list: list(['example.com', 'hash:transport'], [transport]), domain: 'example.net', parent: true, want: false },
  { name: 'empty list', list: list([]), domain: 'example.com', parent: true, want: false },
  { name: 'empty domain', list: list(['example.com']), domain: '', parent: true, want: false },
];

for (const { name, list: matchList, domain, parent, want } of domainCases) {
  test(`matchDomain: ${name}`, () => {
    assert.equal(matchDomain(matchList, domain, parent), want);
  });
}

const MYNETWORKS = list(['127.0.0.0/8', '[::1]/128', '192.0.2.7', '!10.1.0.0/16', 'cidr:clients.cidr'], [clients]);

const networkCases: { name: string; address: string; want: boolean }[] = [
  { name: 'IPv4 network', address: '127.0.0.2', want: true },
  { name: 'IPv4-mapped address', address: '::ffff:127.0.0.1', want: true },
  { name: 'bracketed IPv6 network', address: '::1', want: true },
  { name: 'address in brackets', address: '[::1]', want: true },
  { name: 'bare address', address: '192.0.2.7', want: true },
  { name: 'next to the bare address', address: '192.0.2.8', want: false },
  { name: 'negation before the table', address: '10.1.2.3', want: false },
  { name: 'cidr table', address: '10.2.3.4', want: true },
  { name: 'cidr table, IPv4-mapped', address: '::ffff:10.2.3.4', want: true },
  { name: 'cidr table, IPv6', address: '2001:db8::25', want: true },
  { name: 'not listed', address: '203.0.113.1', want: false },
  { name: 'not an address', address: 'mail.example.com', want: false },
];

for (const { name, address, want } of networkCases) {
  test(`matchNetwork: ${name}`, () => {
    assert.equal(matchNetwork(MYNETWORKS, address), want);
  });
}

test('matchNetwork: a hash table is looked up with the plain address', () => {
  writeFileSync(join(directory, 'hosts'), '192.0.2.9 OK\n');
  const hosts = openTable('hash:hosts', directory);
  assert.equal(matchNetwork(list(['hash:hosts'], [hosts]), '::ffff:192.0.2.9'), true);
});

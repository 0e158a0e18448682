// mxscreen spf-cidr: SPF networks as a cidr: table, following include: and redirect= within
// SPF's lookup limits. TXT, A and MX answers all come from the fake DNS server, through the
// one DnsResolver the command is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { parseCidrTable } from '../../src/tables/cidr-table.js';
import { spfCidrCommand, spfCidrTable } from '../../src/policy/spf-cidr.js';
import { withDnsServer as withDns, type FakeDns } from '../fakes/dns-server.js';

const resolverOf = (dns: FakeDns) => createNodeResolver({ servers: [dns.server], timeoutMs: 1000 });

test('spf-cidr: ip4/ip6, include:, redirect=, a and mx; the output loads as a cidr: table', async () => {
  await withDns(async (dns) => {
    dns.setA('out.provider.example', ['198.51.100.7']);
    dns.setMx('provider.example', [{ exchange: 'mx.provider.example', priority: 10 }]);
    dns.setA('mx.provider.example', ['198.51.100.25']);
    dns.setTxt('provider.example', ['google-site-verification=x', 'v=spf1 ip4:192.0.2.0/24 ip4:203.0.113.5 include:_spf.provider.example a:out.provider.example/32 mx -all']);
    dns.setTxt('_spf.provider.example', ['v=spf1 ip6:2001:db8::/32 redirect=_spf2.provider.example']);
    dns.setTxt('_spf2.provider.example', ['v=spf1 ip4:192.0.2.128/25 ~all']);
    dns.setTxt('soft.example', ['v=spf1 -ip4:10.0.0.0/8 ?ip4:10.1.0.0/16 ip4:10.2.0.0/16 ~all']);
    const result = await spfCidrTable(['provider.example', 'soft.example'], resolverOf(dns));
    assert.deepEqual(result.lines, [
      '10.2.0.0/16 OK',
      '192.0.2.0/24 OK',
      '192.0.2.128/25 OK',
      '198.51.100.25/32 OK',
      '198.51.100.7/32 OK',
      '2001:db8::/32 OK',
      '203.0.113.5/32 OK',
    ]);
    assert.deepEqual(result.problems, []);
    const table = parseCidrTable('cidr:provider.cidr', `${result.lines.join('\n')}\n`, 'provider.cidr');
    assert.deepEqual(table.problems, []);
    assert.equal(table.table.lookup('192.0.2.200'), 'OK');
    assert.equal(table.table.lookup('192.0.3.1'), undefined);
  });
});

test('spf-cidr: a record split into several character-strings is read joined (RFC 7208 §3.3)', async () => {
  await withDns(async (dns) => {
    dns.setTxt('split.example', [['v=spf1 ip4:192.0.2.0/24 ', 'ip4:198.51.100.0/24 -all']]);
    const result = await spfCidrTable(['split.example'], resolverOf(dns));
    assert.deepEqual(result.lines, ['192.0.2.0/24 OK', '198.51.100.0/24 OK']);
  });
});

test('spf-cidr: more than 10 DNS-costing mechanisms stop with a problem (RFC 7208 §4.6.4)', async () => {
  await withDns(async (dns) => {
    for (let i = 0; i < 12; i++) dns.setTxt(`d${i}.example`, [`v=spf1 ip4:192.0.2.${i} include:d${i + 1}.example`]);
    dns.setTxt('d12.example', ['v=spf1 ip4:192.0.2.12']);
    const result = await spfCidrTable(['d0.example'], resolverOf(dns));
    assert.ok(result.problems.some((problem) => problem.includes('more than 10 DNS lookups')));
    assert.ok(result.lines.length <= 11);
    assert.equal(dns.queryCount('d11.example', 'TXT'), 0);
  });
});

test('spf-cidr: a TXT lookup that fails (SERVFAIL) is a problem naming the DnsError kind', async () => {
  await withDns(async (dns) => {
    dns.setServfail('broken.example');
    const result = await spfCidrTable(['broken.example'], resolverOf(dns));
    assert.deepEqual(result.problems, ['broken.example: TXT lookup failed (servfail)']);
  });
});

test('spf-cidr: no SPF record, two records, macros → problems as # comments; exit 1 without networks', async () => {
  await withDns(async (dns) => {
    dns.setTxt('two.example', ['v=spf1 -all', 'v=spf1 +all']);
    dns.setTxt('macro.example', ['v=spf1 include:%{d}.spf.example -all']);
    const out: string[] = [];
    const code = await spfCidrCommand(['none.example', 'two.example', 'macro.example'], resolverOf(dns), (text) => out.push(text));
    assert.equal(code, 1);
    const text = out.join('');
    assert.match(text, /# none\.example: no SPF record/);
    assert.match(text, /# two\.example: more than one v=spf1 record/);
    assert.match(text, /# macro\.example: "include:%\{d\}\.spf\.example" uses macros/);
  });
});

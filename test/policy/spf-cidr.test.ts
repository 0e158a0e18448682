// mxscreen spf-cidr: SPF networks as a cidr: table, following include: and redirect= within
// SPF's lookup limits. A and MX answers come from the fake DNS server; TXT records from a
// map (the fake DNS server serves no TXT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { DnsError } from '../../src/dns/resolver.js';
import { parseCidrTable } from '../../src/tables/cidr-table.js';
import { spfCidrCommand, spfCidrTable } from '../../src/policy/spf-cidr.js';
import type { TxtLookup } from '../../src/policy/spf-check.js';
import { startDnsServer } from '../fakes/dns-server.js';

function txt(records: Record<string, string | string[]>): TxtLookup {
  return async (name) => {
    const found = records[name];
    if (found === undefined) throw new DnsError('nxdomain', `${name}/TXT`);
    return (Array.isArray(found) ? found : [found]).map((record) => [record]);
  };
}

test('spf-cidr: ip4/ip6, include:, redirect=, a and mx; the output loads as a cidr: table', async () => {
  const dns = await startDnsServer();
  try {
    dns.setA('out.provider.example', ['198.51.100.7']);
    dns.setMx('provider.example', [{ exchange: 'mx.provider.example', priority: 10 }]);
    dns.setA('mx.provider.example', ['198.51.100.25']);
    const records = txt({
      'provider.example': ['google-site-verification=x', 'v=spf1 ip4:192.0.2.0/24 ip4:203.0.113.5 include:_spf.provider.example a:out.provider.example/32 mx -all'],
      '_spf.provider.example': 'v=spf1 ip6:2001:db8::/32 redirect=_spf2.provider.example',
      '_spf2.provider.example': 'v=spf1 ip4:192.0.2.128/25 ~all',
      'soft.example': 'v=spf1 -ip4:10.0.0.0/8 ?ip4:10.1.0.0/16 ip4:10.2.0.0/16 ~all',
    });
    const resolver = createNodeResolver({ servers: [dns.server], timeoutMs: 1000 });
    const result = await spfCidrTable(['provider.example', 'soft.example'], { txt: records, resolver });
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
  } finally {
    await dns.close();
  }
});

test('spf-cidr: more than 10 DNS-costing mechanisms stop with a problem (RFC 7208 §4.6.4)', async () => {
  const records: Record<string, string> = {};
  for (let i = 0; i < 12; i++) records[`d${i}.example`] = `v=spf1 ip4:192.0.2.${i} include:d${i + 1}.example`;
  records['d12.example'] = 'v=spf1 ip4:192.0.2.12';
  const result = await spfCidrTable(['d0.example'], { txt: txt(records), resolver: createNodeResolver({ servers: ['127.0.0.1:9'], timeoutMs: 50 }) });
  assert.ok(result.problems.some((problem) => problem.includes('more than 10 DNS lookups')));
  assert.ok(result.lines.length <= 11);
});

test('spf-cidr: no SPF record, two records, macros → problems as # comments; exit 1 without networks', async () => {
  const out: string[] = [];
  const code = await spfCidrCommand(
    ['none.example', 'two.example', 'macro.example'],
    { txt: txt({ 'two.example': ['v=spf1 -all', 'v=spf1 +all'], 'macro.example': 'v=spf1 include:%{d}.spf.example -all' }), resolver: createNodeResolver({ servers: ['127.0.0.1:9'], timeoutMs: 50 }) },
    (text) => out.push(text),
  );
  assert.equal(code, 1);
  const text = out.join('');
  assert.match(text, /# none\.example: no SPF record/);
  assert.match(text, /# two\.example: more than one v=spf1 record/);
  assert.match(text, /# macro\.example: "include:%\{d\}\.spf\.example" uses macros/);
});

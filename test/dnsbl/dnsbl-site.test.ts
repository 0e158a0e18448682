import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterMatches, parseDnsblSite, type DnsblSite } from '../../src/dnsbl/dnsbl-site.js';

/** Shape of a parsed entry: domain, filter text, weight. */
function shape(site: DnsblSite | { error: string }): { domain: string; filter: string | undefined; weight: number } | 'error' {
  return 'error' in site ? 'error' : { domain: site.domain, filter: site.filter?.text, weight: site.weight };
}

const syntax = [
  { name: 'bare domain, weight 1', input: 'zen.dnsbl.test', want: { domain: 'zen.dnsbl.test', filter: undefined, weight: 1 } },
  { name: 'weight', input: 'zen.dnsbl.test*3', want: { domain: 'zen.dnsbl.test', filter: undefined, weight: 3 } },
  { name: 'negative weight (DNSWL)', input: 'swl.dnswl.test*-4', want: { domain: 'swl.dnswl.test', filter: undefined, weight: -4 } },
  { name: 'explicit plus sign', input: 'bl.test*+2', want: { domain: 'bl.test', filter: undefined, weight: 2 } },
  { name: 'plain filter', input: 'zen.dnsbl.test=127.0.0.2', want: { domain: 'zen.dnsbl.test', filter: '127.0.0.2', weight: 1 } },
  { name: 'range filter', input: 'zen.dnsbl.test=127.0.0.[2..11]', want: { domain: 'zen.dnsbl.test', filter: '127.0.0.[2..11]', weight: 1 } },
  { name: 'list filter with weight', input: 'zen.dnsbl.test=127.0.0.[2;4;10..11]*2', want: { domain: 'zen.dnsbl.test', filter: '127.0.0.[2;4;10..11]', weight: 2 } },
  { name: 'two bracketed octets', input: 'list.dnswl.test=127.0.[2..15].[2..3]*-4', want: { domain: 'list.dnswl.test', filter: '127.0.[2..15].[2..3]', weight: -4 } },
  { name: 'upper case domain and trailing dot', input: 'ZEN.DNSBL.Test.', want: { domain: 'zen.dnsbl.test', filter: undefined, weight: 1 } },
  { name: 'underscore in a label', input: 'my_list.bl.test', want: { domain: 'my_list.bl.test', filter: undefined, weight: 1 } },
  { name: 'error: empty', input: '', want: 'error' },
  { name: 'error: weight not a number', input: 'bl.test*x', want: 'error' },
  { name: 'error: empty weight', input: 'bl.test*', want: 'error' },
  { name: 'error: fractional weight', input: 'bl.test*1.5', want: 'error' },
  { name: 'error: three octets', input: 'bl.test=127.0.2', want: 'error' },
  { name: 'error: octet above 255', input: 'bl.test=127.0.0.256', want: 'error' },
  { name: 'error: reversed range', input: 'bl.test=127.0.0.[11..2]', want: 'error' },
  { name: 'error: unclosed bracket', input: 'bl.test=127.0.0.[2..11', want: 'error' },
  { name: 'error: empty list', input: 'bl.test=127.0.0.[]', want: 'error' },
  { name: 'error: empty filter', input: 'bl.test=', want: 'error' },
  { name: 'error: bad domain character', input: 'bl!.test', want: 'error' },
  { name: 'error: empty label', input: 'bl..test', want: 'error' },
  { name: 'error: label starting with a hyphen', input: '-bl.test', want: 'error' },
  { name: 'error: no domain', input: '=127.0.0.2', want: 'error' },
  { name: 'error: numeric domain', input: '127.0.0.1', want: 'error' },
] as const;

for (const { name, input, want } of syntax) {
  test(`parseDnsblSite: ${name}`, () => {
    assert.deepEqual(shape(parseDnsblSite(input)), want);
  });
}

test('parseDnsblSite: an error names the entry', () => {
  const result = parseDnsblSite('bl.test*x');
  assert.ok('error' in result);
  assert.ok(result.error.includes('bl.test*x'));
});

const matching = [
  { name: 'exact match', input: ['127.0.0.2', '127.0.0.2'], want: true },
  { name: 'exact mismatch', input: ['127.0.0.2', '127.0.0.3'], want: false },
  { name: 'inside a range', input: ['127.0.0.[2..11]', '127.0.0.11'], want: true },
  { name: 'below a range', input: ['127.0.0.[2..11]', '127.0.0.1'], want: false },
  { name: 'listed value', input: ['127.0.0.[2;4;10..11]', '127.0.0.4'], want: true },
  { name: 'gap in a list', input: ['127.0.0.[2;4;10..11]', '127.0.0.3'], want: false },
  { name: 'several bracketed octets', input: ['127.0.[2..15].[2..3]', '127.0.9.3'], want: true },
  { name: 'other first octet', input: ['127.0.0.2', '128.0.0.2'], want: false },
  { name: 'not an IPv4 answer', input: ['127.0.0.2', '::1'], want: false },
] as const;

for (const { name, input, want } of matching) {
  test(`filterMatches: ${name}`, () => {
    const site = parseDnsblSite(`bl.test=${input[0]}`);
    assert.ok(!('error' in site) && site.filter);
    assert.equal(filterMatches(site.filter, input[1]), want);
  });
}

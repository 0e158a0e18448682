import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reverseName } from '../../src/dns/reverse-name.js';

const cases = [
  { name: 'IPv4 octets reversed', input: ['127.0.0.2', 'zen.dnsbl.test'], want: '2.0.0.127.zen.dnsbl.test' },
  { name: 'IPv4 with multi-digit octets', input: ['192.0.2.99', 'bl.test'], want: '99.2.0.192.bl.test' },
  { name: 'IPv4-mapped IPv6 is queried as IPv4', input: ['::ffff:127.0.0.2', 'bl.test'], want: '2.0.0.127.bl.test' },
  { name: 'IPv4-mapped IPv6, upper case', input: ['::FFFF:10.1.2.3', 'bl.test'], want: '3.2.1.10.bl.test' },
  {
    name: 'IPv6 in nibble form (RFC 5782 §2.4)',
    input: ['2001:db8:1:2:3:4:567:89ab', 'bl.test'],
    want: 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test',
  },
  {
    name: 'IPv6 with :: compression',
    input: ['2001:db8::1', 'bl.test'],
    want: '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
  },
] as const;

for (const { name, input, want } of cases) {
  test(`reverseName: ${name}`, () => {
    assert.equal(reverseName(input[0], input[1]), want);
  });
}

test('reverseName: a host name is not an address (ERR_DNS)', () => {
  assert.throws(() => reverseName('mail.example.com', 'bl.test'), { code: 'ERR_DNS' });
});

// IP addresses and networks: parsing, IPv4-mapped addresses, host bits, containment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatNetwork, networkContains, parseIpAddress, parseIpNetwork, unmapIpv4 } from '../../src/tables/ip-network.js';

const addressCases: { name: string; input: string; want: { family: number; value: bigint } | undefined }[] = [
  { name: 'IPv4', input: '192.0.2.1', want: { family: 4, value: 0xc0000201n } },
  { name: 'IPv6', input: '2001:db8::1', want: { family: 6, value: 0x20010db8000000000000000000000001n } },
  { name: 'IPv6 in brackets', input: '[::1]', want: { family: 6, value: 1n } },
  { name: 'IPv6 with a zone id', input: 'fe80::1%eth0', want: { family: 6, value: 0xfe800000000000000000000000000001n } },
  { name: 'IPv4-mapped is IPv4', input: '::ffff:127.0.0.1', want: { family: 4, value: 0x7f000001n } },
  { name: 'IPv4-mapped in hex is IPv4', input: '::ffff:7f00:1', want: { family: 4, value: 0x7f000001n } },
  { name: 'IPv6 with an embedded IPv4 tail', input: '64:ff9b::192.0.2.1', want: { family: 6, value: 0x0064ff9b0000000000000000c0000201n } },
  { name: 'host name', input: 'mail.example.com', want: undefined },
  { name: 'short IPv4', input: '127.1', want: undefined },
  { name: 'empty', input: '', want: undefined },
];

for (const { name, input, want } of addressCases) {
  test(`parseIpAddress: ${name}`, () => {
    assert.deepEqual(parseIpAddress(input), want);
  });
}

const unmapCases: { input: string; want: string }[] = [
  { input: '::ffff:192.0.2.1', want: '192.0.2.1' },
  { input: '::FFFF:192.0.2.1', want: '192.0.2.1' },
  { input: '192.0.2.1', want: '192.0.2.1' },
  { input: '2001:db8::1', want: '2001:db8::1' },
];

for (const { input, want } of unmapCases) {
  test(`unmapIpv4: ${input}`, () => {
    assert.equal(unmapIpv4(input), want);
  });
}

const networkCases: { name: string; input: string; want: string | 'problem' }[] = [
  { name: 'IPv4 network', input: '192.0.2.0/24', want: '192.0.2.0/24' },
  { name: 'bare IPv4 is a /32', input: '192.0.2.7', want: '192.0.2.7/32' },
  { name: 'IPv6 network', input: '2001:db8::/32', want: '2001:db8:0:0:0:0:0:0/32' },
  { name: 'mynetworks style [ipv6]/len', input: '[::1]/128', want: '0:0:0:0:0:0:0:1/128' },
  { name: 'bracketed with the prefix inside', input: '[2001:db8::/32]', want: '2001:db8:0:0:0:0:0:0/32' },
  { name: 'mapped network is IPv4', input: '::ffff:10.0.0.0/104', want: '10.0.0.0/8' },
  { name: '/0', input: '0.0.0.0/0', want: '0.0.0.0/0' },
  { name: 'host bits set', input: '192.0.2.1/24', want: 'problem' },
  { name: 'prefix too long', input: '192.0.2.0/33', want: 'problem' },
  { name: 'prefix not a number', input: '192.0.2.0/x', want: 'problem' },
  { name: 'netmask notation', input: '192.0.2.0/255.255.255.0', want: 'problem' },
  { name: 'not an address', input: 'example.com/24', want: 'problem' },
];

for (const { name, input, want } of networkCases) {
  test(`parseIpNetwork: ${name}`, () => {
    const parsed = parseIpNetwork(input);
    assert.equal('network' in parsed ? formatNetwork(parsed.network) : 'problem', want);
  });
}

const containsCases: { network: string; address: string; want: boolean }[] = [
  { network: '192.0.2.0/24', address: '192.0.2.255', want: true },
  { network: '192.0.2.0/24', address: '192.0.3.0', want: false },
  { network: '127.0.0.0/8', address: '::ffff:127.1.2.3', want: true },
  { network: '0.0.0.0/0', address: '203.0.113.9', want: true },
  { network: '0.0.0.0/0', address: '::1', want: false },
  { network: '2001:db8::/32', address: '2001:db8:ffff::1', want: true },
  { network: '2001:db8::/32', address: '2001:db9::1', want: false },
  { network: '[::1]/128', address: '::1', want: true },
  { network: '192.0.2.7', address: '192.0.2.7', want: true },
  { network: '192.0.2.7', address: '192.0.2.8', want: false },
];

for (const { network, address, want } of containsCases) {
  test(`networkContains: ${network} ∋ ${address} is ${want}`, () => {
    const parsed = parseIpNetwork(network);
    assert.ok('network' in parsed);
    const ip = parseIpAddress(address);
    assert.ok(ip !== undefined);
    assert.equal(networkContains(parsed.network, ip), want);
  });
}

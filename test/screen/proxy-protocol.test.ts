import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader } from '../../src/screen/proxy-protocol.js';

function v2(command: number, family: number, body: Buffer): Buffer {
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20 | command, family, 0, 0]);
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}

const ipv4Body = Buffer.from([192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0, 25]);
const ipv6Body = Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from('20010db8000000000000000000000002', 'hex'), Buffer.from([0x30, 0x39, 0, 25])]);

const cases = [
  { name: 'v1 TCP4', input: Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 12345 25\r\nEHLO'), want: { kind: 'header', length: 44, endpoints: { client: { address: '192.0.2.1', port: 12345 }, local: { address: '198.51.100.2', port: 25 } } } },
  { name: 'v1 TCP6', input: Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 12345 25\r\n'), want: { kind: 'header', length: 45, endpoints: { client: { address: '2001:db8::1', port: 12345 }, local: { address: '2001:db8::2', port: 25 } } } },
  { name: 'v1 UNKNOWN', input: Buffer.from('PROXY UNKNOWN\r\n'), want: { kind: 'header', length: 15, endpoints: undefined } },
  { name: 'v1 incomplete', input: Buffer.from('PROXY TCP4 192.0.2.1'), want: { kind: 'incomplete' } },
  { name: 'v1 bad address', input: Buffer.from('PROXY TCP4 999.0.2.1 198.51.100.2 1 25\r\n'), want: { kind: 'error', reason: 'bad v1 address or port' } },
  { name: 'no header at all', input: Buffer.from('EHLO x\r\n'), want: { kind: 'error', reason: 'no PROXY header' } },
  { name: 'v2 PROXY IPv4', input: v2(1, 0x11, ipv4Body), want: { kind: 'header', length: 28, endpoints: { client: { address: '192.0.2.1', port: 12345 }, local: { address: '198.51.100.2', port: 25 } } } },
  { name: 'v2 PROXY IPv6', input: v2(1, 0x21, ipv6Body), want: { kind: 'header', length: 52, endpoints: { client: { address: '2001:db8::1', port: 12345 }, local: { address: '2001:db8::2', port: 25 } } } },
  { name: 'v2 LOCAL', input: v2(0, 0x00, Buffer.alloc(0)), want: { kind: 'header', length: 16, endpoints: undefined } },
  { name: 'v2 incomplete', input: v2(1, 0x11, ipv4Body).subarray(0, 20), want: { kind: 'incomplete' } },
  { name: 'v2 UDP is refused', input: v2(1, 0x12, ipv4Body), want: { kind: 'error', reason: 'unsupported v2 address family/protocol 0x12' } },
] as const;

for (const { name, input, want } of cases) {
  test(`parseProxyHeader: ${name}`, () => {
    assert.deepEqual(parseProxyHeader(input), want);
  });
}

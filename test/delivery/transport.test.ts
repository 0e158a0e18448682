import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LookupTable } from '../../src/tables/lookup-table.js';
import { parseTransportEntry, resolveNexthop, transportKeys, type Nexthop } from '../../src/delivery/transport.js';

/** An in-memory table: exact keys, as hash:/texthash: behave. */
function table(entries: Record<string, string>): LookupTable {
  return { spec: 'inline:test', lookup: (key) => entries[key] };
}

const transport = table({
  'special@example.com': 'smtp:[10.0.0.9]:2525',
  'example.com': 'smtp:[127.0.0.1]:2526',
  '.example.net': 'relay:mail.example.net',
  'example.net': 'relay:[gw.example.net]',
  'bounce.test': 'error:5.1.1 mailbox unavailable',
  'later.test': 'retry:4.3.2 maintenance',
  'mx.test': 'smtp:',
  'port.test': 'smtp:mx.port.test:submission',
  'v6.test': 'smtp:[ipv6:2001:db8::1]:25',
  'ip.test': 'smtp:192.0.2.7',
  'lmtp.test': 'lmtp:unix:private/dovecot',
  'bad.test': 'smtp:[host:99999',
});

const cases: { name: string; input: { recipient: string; relayhost?: string; maps?: LookupTable[] }; want: Nexthop }[] = [
  { name: 'full address wins over domain', input: { recipient: 'special@example.com' }, want: { kind: 'smtp', transport: 'smtp', host: '10.0.0.9', port: 2525, mxLookup: false } },
  { name: 'domain entry, bracketed host and port', input: { recipient: 'bob@example.com' }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.1', port: 2526, mxLookup: false } },
  { name: 'keys are case-insensitive', input: { recipient: 'Bob@EXAMPLE.com' }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.1', port: 2526, mxLookup: false } },
  { name: 'domain entry beats .domain for the domain itself', input: { recipient: 'a@example.net' }, want: { kind: 'smtp', transport: 'relay', host: 'gw.example.net', port: 25, mxLookup: false } },
  { name: '.domain matches a subdomain; relay is smtp; no brackets = MX lookup', input: { recipient: 'a@sub.deep.example.net' }, want: { kind: 'smtp', transport: 'relay', host: 'mail.example.net', port: 25, mxLookup: true } },
  { name: 'domain without leading dot does not match subdomains', input: { recipient: 'a@sub.example.com' }, want: { kind: 'smtp', transport: 'smtp', host: 'sub.example.com', port: 25, mxLookup: true } },
  { name: 'error: bounces with its text', input: { recipient: 'x@bounce.test' }, want: { kind: 'error', text: '5.1.1 mailbox unavailable' } },
  { name: 'retry: defers with its text', input: { recipient: 'x@later.test' }, want: { kind: 'retry', text: '4.3.2 maintenance' } },
  { name: 'empty nexthop: the recipient domain via MX', input: { recipient: 'x@mx.test' }, want: { kind: 'smtp', transport: 'smtp', host: 'mx.test', port: 25, mxLookup: true } },
  { name: 'port as a service name', input: { recipient: 'x@port.test' }, want: { kind: 'smtp', transport: 'smtp', host: 'mx.port.test', port: 587, mxLookup: true } },
  { name: 'bracketed IPv6 nexthop', input: { recipient: 'x@v6.test' }, want: { kind: 'smtp', transport: 'smtp', host: '2001:db8::1', port: 25, mxLookup: false } },
  { name: 'an IP address never gets an MX lookup', input: { recipient: 'x@ip.test' }, want: { kind: 'smtp', transport: 'smtp', host: '192.0.2.7', port: 25, mxLookup: false } },
  { name: 'no entry, no relayhost: the domain via MX', input: { recipient: 'x@elsewhere.org' }, want: { kind: 'smtp', transport: 'smtp', host: 'elsewhere.org', port: 25, mxLookup: true } },
  { name: 'no entry: relayhost', input: { recipient: 'x@elsewhere.org', relayhost: '[smarthost.example]:587' }, want: { kind: 'smtp', transport: 'smtp', host: 'smarthost.example', port: 587, mxLookup: false } },
  { name: 'transport entry wins over relayhost', input: { recipient: 'x@example.com', relayhost: '[smarthost.example]' }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.1', port: 2526, mxLookup: false } },
  { name: 'catch-all * entry', input: { recipient: 'x@any.org', maps: [table({ '*': 'smtp:[127.0.0.2]:26' })] }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.2', port: 26, mxLookup: false } },
  { name: 'first table with an answer wins', input: { recipient: 'x@example.com', maps: [table({}), table({ 'example.com': ':[127.0.0.3]' }), transport] }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.3', port: 25, mxLookup: false } },
  { name: 'domain literal recipient', input: { recipient: 'x@[127.0.0.4]', maps: [] }, want: { kind: 'smtp', transport: 'smtp', host: '127.0.0.4', port: 25, mxLookup: false } },
];

for (const { name, input, want } of cases) {
  test(`transport: ${name}`, () => {
    assert.deepEqual(resolveNexthop(input.recipient, { transportMaps: input.maps ?? [transport], relayhost: input.relayhost ?? '' }), want);
  });
}

test('transport: a transport mxscreen does not have defers', () => {
  assert.equal(resolveNexthop('x@lmtp.test', { transportMaps: [transport], relayhost: '' }).kind, 'retry');
});

test('transport: a malformed nexthop defers', () => {
  assert.equal(resolveNexthop('x@bad.test', { transportMaps: [transport], relayhost: '' }).kind, 'retry');
});

test('transport: lookup keys in transport(5) order', () => {
  assert.deepEqual(transportKeys('User@a.b.example.com', 'a.b.example.com'), ['user@a.b.example.com', 'a.b.example.com', '.b.example.com', '.example.com', '.com', '*']);
});

test('transport: seed 001 entry smtp:mail.example.com:25', () => {
  assert.deepEqual(parseTransportEntry('smtp:mail.example.com:25', 'example.com'), { kind: 'smtp', transport: 'smtp', host: 'mail.example.com', port: 25, mxLookup: true });
});

test('transport: a nexthop list is tried in order', () => {
  assert.deepEqual(parseTransportEntry('smtp:[127.0.0.1]:2526, [127.0.0.2]:2527 backup.test', 'example.com'), {
    kind: 'smtp',
    transport: 'smtp',
    host: '127.0.0.1',
    port: 2526,
    mxLookup: false,
    also: [
      { host: '127.0.0.2', port: 2527, mxLookup: false },
      { host: 'backup.test', port: 25, mxLookup: true },
    ],
  });
});

test('transport: a bad member of a nexthop list defers the whole entry', () => {
  assert.equal(parseTransportEntry('smtp:[127.0.0.1]:25, [bad', 'example.com').kind, 'retry');
});

test('transport: relayhost may be a nexthop list', () => {
  const nexthop = resolveNexthop('x@elsewhere.org', { transportMaps: [], relayhost: '[a.example]:587, [b.example]:587' });
  assert.equal(nexthop.kind === 'smtp' && nexthop.also?.[0]?.host, 'b.example');
});

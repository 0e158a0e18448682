import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsError, type AddressAnswer, type DnsFailureKind, type DnsResolver, type MxAnswer } from '../../src/dns/resolver.js';
import { lookupNexthopTargets, lookupTargets, type TargetLookup } from '../../src/delivery/mx-lookup.js';

type Answer<T> = T[] | DnsFailureKind;

/** An in-memory resolver (the injected DnsResolver seam); unknown names are nxdomain. */
function resolver(zone: { mx?: Record<string, Answer<MxAnswer>>; a?: Record<string, Answer<AddressAnswer>> }): DnsResolver {
  const answer = <T>(records: Record<string, Answer<T>> | undefined, name: string): Promise<T[]> => {
    const value = records?.[name];
    if (value === undefined) return Promise.reject(new DnsError('nxdomain', name));
    if (typeof value === 'string') return Promise.reject(new DnsError(value, name));
    return Promise.resolve(value);
  };
  return {
    resolveMx: (name) => answer(zone.mx, name),
    resolve4: (name) => answer(zone.a, name),
    resolve6: (name) => Promise.reject(new DnsError('nodata', name)),
    reverse: (name) => Promise.reject(new DnsError('nxdomain', name)),
    resolveTxt: (name) => Promise.reject(new DnsError('nxdomain', name)),
  };
}

const a = (address: string): AddressAnswer => ({ address, ttl: 300 });

const cases: { name: string; input: { host: string; mxLookup: boolean; dns: Parameters<typeof resolver>[0] }; want: TargetLookup }[] = [
  {
    name: 'MX hosts in preference order',
    input: {
      host: 'example.com',
      mxLookup: true,
      dns: { mx: { 'example.com': [{ exchange: 'mx2.example.com', priority: 20 }, { exchange: 'mx1.example.com', priority: 10 }] }, a: { 'mx1.example.com': [a('192.0.2.1')], 'mx2.example.com': [a('192.0.2.2')] } },
    },
    want: { kind: 'targets', targets: [{ hostname: 'mx1.example.com', address: '192.0.2.1', port: 25 }, { hostname: 'mx2.example.com', address: '192.0.2.2', port: 25 }] },
  },
  {
    name: 'no MX record: the domain address (implicit MX)',
    input: { host: 'example.com', mxLookup: true, dns: { mx: { 'example.com': 'nodata' }, a: { 'example.com': [a('192.0.2.3')] } } },
    want: { kind: 'targets', targets: [{ hostname: 'example.com', address: '192.0.2.3', port: 25 }] },
  },
  {
    name: 'bracketed: A record, no MX lookup',
    input: { host: 'gw.example.com', mxLookup: false, dns: { mx: { 'gw.example.com': [{ exchange: 'other', priority: 1 }] }, a: { 'gw.example.com': [a('192.0.2.4')] } } },
    want: { kind: 'targets', targets: [{ hostname: 'gw.example.com', address: '192.0.2.4', port: 25 }] },
  },
  {
    name: 'IP address: no DNS at all',
    input: { host: '127.0.0.1', mxLookup: false, dns: {} },
    want: { kind: 'targets', targets: [{ hostname: '127.0.0.1', address: '127.0.0.1', port: 25 }] },
  },
  {
    name: 'domain not found bounces (5.4.4)',
    input: { host: 'nowhere.test', mxLookup: true, dns: {} },
    want: { kind: 'failure', permanent: true, dsn: '5.4.4', text: 'Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found' },
  },
  {
    name: 'DNS timeout defers (4.4.3)',
    input: { host: 'slow.test', mxLookup: true, dns: { mx: { 'slow.test': 'timeout' } } },
    want: { kind: 'failure', permanent: false, dsn: '4.4.3', text: 'Host or domain name not found. Name service error for name=slow.test type=MX: timeout' },
  },
  {
    name: 'null MX bounces (RFC 7505)',
    input: { host: 'nomail.test', mxLookup: true, dns: { mx: { 'nomail.test': [{ exchange: '.', priority: 0 }] } } },
    want: { kind: 'failure', permanent: true, dsn: '5.1.10', text: 'Domain nomail.test does not accept mail (nullMX)' },
  },
  {
    name: 'an MX host without address is skipped',
    input: {
      host: 'example.com',
      mxLookup: true,
      dns: { mx: { 'example.com': [{ exchange: 'gone.example.com', priority: 5 }, { exchange: 'mx1.example.com', priority: 10 }] }, a: { 'mx1.example.com': [a('192.0.2.1')] } },
    },
    want: { kind: 'targets', targets: [{ hostname: 'mx1.example.com', address: '192.0.2.1', port: 25 }] },
  },
];

for (const { name, input, want } of cases) {
  test(`mx lookup: ${name}`, async () => {
    assert.deepEqual(await lookupTargets({ host: input.host, port: 25, mxLookup: input.mxLookup }, resolver(input.dns)), want);
  });
}

test('mx lookup: a temporary failure of one MX host defers rather than bounces', async () => {
  const dns = resolver({ mx: { 'x.test': [{ exchange: 'a.x.test', priority: 1 }, { exchange: 'b.x.test', priority: 2 }] }, a: { 'a.x.test': 'servfail' } });
  const result = await lookupTargets({ host: 'x.test', port: 25, mxLookup: true }, dns);
  assert.equal(result.kind === 'failure' && result.permanent, false);
});

test('mx lookup: a nexthop list gives the targets of each destination in order; it fails only when none has one, a temporary failure outweighing a permanent one', async () => {
  const dns = resolver({ a: { 'one.test': [a('192.0.2.1')], 'two.test': [a('192.0.2.2')], 'slow.test': 'timeout' } });
  const list = (...hosts: string[]) => ({ kind: 'smtp' as const, transport: 'smtp', host: hosts[0]!, port: 25, mxLookup: false, also: hosts.slice(1).map((host) => ({ host, port: 26, mxLookup: false })) });
  assert.deepEqual(await lookupNexthopTargets(list('one.test', 'gone.test', 'two.test'), dns), {
    kind: 'targets',
    targets: [
      { hostname: 'one.test', address: '192.0.2.1', port: 25 },
      { hostname: 'two.test', address: '192.0.2.2', port: 26 },
    ],
  });
  const failed = async (...hosts: string[]) => {
    const lookup = await lookupNexthopTargets(list(...hosts), dns);
    return lookup.kind === 'failure' ? [lookup.permanent, lookup.dsn] : lookup;
  };
  assert.deepEqual(await failed('gone.test', 'slow.test'), [false, '4.4.3']);
  assert.deepEqual(await failed('slow.test', 'gone.test'), [false, '4.4.3']);
  assert.deepEqual(await failed('gone.test', 'gone2.test'), [true, '5.4.4']);
});

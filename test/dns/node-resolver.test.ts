import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeResolver, dnsFailureKind } from '../../src/dns/node-resolver.js';
import { DnsError, type DnsFailureKind } from '../../src/dns/resolver.js';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';

let dns: FakeDns;
before(async () => {
  dns = await startDnsServer();
  dns.setA('mail.example.test', ['192.0.2.10', '192.0.2.11'], 120);
  dns.setAaaa('mail.example.test', ['2001:db8::10'], 60);
  dns.setMx('example.test', [{ exchange: 'mx2.example.test', priority: 20 }, { exchange: 'mx1.example.test', priority: 10 }], 300);
  dns.setPtr('192.0.2.10', ['mail.example.test'], 300);
  dns.setTxt('example.test', ['v=spf1 ip4:192.0.2.0/24 -all', ['part one ', 'part two']], 300);
  dns.setTxt('long.example.test', [`v=spf1 ${'ip4:192.0.2.1 '.repeat(30)}-all`]);
  dns.setServfail('broken.example.test');
  dns.setNoAnswer('silent.example.test');
});
after(async () => {
  await dns.close();
});

const resolver = () => createNodeResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 });

/** The DnsError kind a lookup rejects with. */
async function failureKind(lookup: Promise<unknown>): Promise<DnsFailureKind> {
  try {
    await lookup;
  } catch (error) {
    assert.ok(error instanceof DnsError);
    assert.equal(error.code, 'ERR_DNS');
    return error.kind;
  }
  assert.fail('lookup did not fail');
}

test('resolve4 returns every A record with its TTL', async () => {
  const answers = await resolver().resolve4('mail.example.test');
  assert.deepEqual(
    answers.sort((a, b) => a.address.localeCompare(b.address)),
    [
      { address: '192.0.2.10', ttl: 120 },
      { address: '192.0.2.11', ttl: 120 },
    ],
  );
});

test('resolve6 returns AAAA records with their TTL', async () => {
  assert.deepEqual(await resolver().resolve6('mail.example.test'), [{ address: '2001:db8::10', ttl: 60 }]);
});

test('resolveMx returns exchanges and priorities', async () => {
  const mx = await resolver().resolveMx('example.test');
  assert.deepEqual(
    mx.sort((a, b) => a.priority - b.priority),
    [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ],
  );
});

test('reverse returns PTR names', async () => {
  assert.deepEqual(await resolver().reverse('192.0.2.10'), ['mail.example.test']);
});

test('resolveTxt returns every TXT record as its character-strings', async () => {
  const records = await resolver().resolveTxt('example.test');
  assert.deepEqual(
    records.sort((a, b) => a.join('').localeCompare(b.join(''))),
    [['part one ', 'part two'], ['v=spf1 ip4:192.0.2.0/24 -all']],
  );
});

test('resolveTxt: a record over 255 bytes arrives in several character-strings that join to the whole', async () => {
  const [record] = await resolver().resolveTxt('long.example.test');
  assert.ok(record !== undefined && record.length === 2);
  assert.equal(record.join(''), `v=spf1 ${'ip4:192.0.2.1 '.repeat(30)}-all`);
});

test('resolveTxt: failures are DnsError kinds (nxdomain, nodata, servfail)', async () => {
  assert.equal(await failureKind(resolver().resolveTxt('nowhere.example.test')), 'nxdomain');
  assert.equal(await failureKind(resolver().resolveTxt('mail.example.test')), 'nodata');
  assert.equal(await failureKind(resolver().resolveTxt('broken.example.test')), 'servfail');
});


test('an unknown name is nxdomain', async () => {
  assert.equal(await failureKind(resolver().resolve4('nowhere.example.test')), 'nxdomain');
});

test('a known name without records of the type is nodata', async () => {
  assert.equal(await failureKind(resolver().resolveMx('mail.example.test')), 'nodata');
});

test('SERVFAIL is servfail', async () => {
  assert.equal(await failureKind(resolver().resolve4('broken.example.test')), 'servfail');
});

test('no answer within timeoutMs is timeout: the hard deadline ends the lookup, whatever c-ares does', async (t) => {
  // setTimeout is mocked: only the resolver's own deadline moves with tick(); c-ares keeps
  // its real (1 s) timer, which cannot have fired when the lookup has already failed.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let settled = false;
    const kind = failureKind(createNodeResolver({ servers: [dns.server], timeoutMs: 1000, tries: 1 }).resolve4('silent.example.test')).finally(() => (settled = true));
    t.mock.timers.tick(999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'not before the deadline');
    t.mock.timers.tick(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, true, 'failed at the deadline');
    assert.equal(await kind, 'timeout');
  } finally {
    t.mock.timers.reset();
  }
});

test('a malformed server address is refused at creation', () => {
  assert.throws(() => createNodeResolver({ servers: ['not an address'], timeoutMs: 100 }), { code: 'ERR_DNS' });
});

const kinds = [
  { name: 'ENOTFOUND', input: 'ENOTFOUND', want: 'nxdomain' },
  { name: 'ENODATA', input: 'ENODATA', want: 'nodata' },
  { name: 'ETIMEOUT', input: 'ETIMEOUT', want: 'timeout' },
  { name: 'ESERVFAIL', input: 'ESERVFAIL', want: 'servfail' },
  { name: 'EREFUSED', input: 'EREFUSED', want: 'refused' },
  { name: 'ECONNREFUSED', input: 'ECONNREFUSED', want: 'other' },
  { name: 'no code', input: undefined, want: 'other' },
] as const;
for (const { name, input, want } of kinds) {
  test(`dnsFailureKind: ${name} → ${want}`, () => {
    assert.equal(dnsFailureKind(input), want);
  });
}

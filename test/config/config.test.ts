// Loading main.cf into a typed Config: units, expansion, aliases, unknown parameters,
// bad values, table errors with the table's own file:line, check-config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { checkConfig, configFromText, configSources, configuredTable, loadConfig } from '../../src/config/config.js';
import type { ParameterName } from '../../src/config/catalogue.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

function tempDir(files: Record<string, string> = {}): string {
  const directory = temporaryDirectory('mxscreen-config-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text);
  return directory;
}

const DIR = tempDir();
const FILE = join(DIR, 'main.cf');
const load = (text: string, directory = DIR) => configFromText(text, { file: join(directory, 'main.cf'), directory });

/** The problems configFromText throws for `text` (fails when it does not throw). */
function problemsOf(text: string, directory = DIR): readonly ConfigProblem[] {
  try {
    load(text, directory);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'ERR_CONFIG');
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

const valueCases: { name: string; input: string; parameter: ParameterName; want: unknown }[] = [
  { name: 'time default (6s)', input: '', parameter: 'postscreen_greet_wait', want: 6000 },
  { name: 'time bare number uses the unit s', input: 'postscreen_greet_wait = 2', parameter: 'postscreen_greet_wait', want: 2000 },
  { name: 'time bare number uses the unit d', input: 'maximal_queue_lifetime = 10', parameter: 'maximal_queue_lifetime', want: 10 * 86_400_000 },
  { name: 'time ms', input: 'postscreen_greet_wait = 250ms', parameter: 'postscreen_greet_wait', want: 250 },
  { name: 'time s', input: 'postscreen_greet_wait = 2s', parameter: 'postscreen_greet_wait', want: 2000 },
  { name: 'time m', input: 'queue_run_delay = 5m', parameter: 'queue_run_delay', want: 300_000 },
  { name: 'time h', input: 'postscreen_dnsbl_max_ttl = 1h', parameter: 'postscreen_dnsbl_max_ttl', want: 3_600_000 },
  { name: 'time d', input: 'maximal_queue_lifetime = 10d', parameter: 'maximal_queue_lifetime', want: 864_000_000 },
  { name: 'time w', input: 'postscreen_greet_ttl = 1w', parameter: 'postscreen_greet_ttl', want: 604_800_000 },
  { name: 'size in bytes', input: 'message_size_limit = 25600000', parameter: 'message_size_limit', want: 25_600_000 },
  { name: 'integer', input: 'postscreen_dnsbl_threshold = 3', parameter: 'postscreen_dnsbl_threshold', want: 3 },
  { name: 'negative integer', input: 'postscreen_dnsbl_threshold = -1', parameter: 'postscreen_dnsbl_threshold', want: -1 },
  { name: 'action any case', input: 'postscreen_greet_action = Enforce', parameter: 'postscreen_greet_action', want: 'enforce' },
  { name: 'action default ignore', input: '', parameter: 'postscreen_dnsbl_action', want: 'ignore' },
  {
    name: 'list on commas and white space',
    input: 'postscreen_dnsbl_sites = zen.spamhaus.org*2,b.barracudacentral.org\n  list.dnswl.org=127.0.[0..255].[1..3]*-2',
    parameter: 'postscreen_dnsbl_sites',
    want: ['zen.spamhaus.org*2', 'b.barracudacentral.org', 'list.dnswl.org=127.0.[0..255].[1..3]*-2'],
  },
  { name: 'empty list', input: 'mxscreen_dns_servers =', parameter: 'mxscreen_dns_servers', want: [] },
  { name: 'string', input: 'relayhost = [mail.example.com]:25', parameter: 'relayhost', want: '[mail.example.com]:25' },
  { name: 'banner default expands myhostname and mail_name', input: 'myhostname = mx1.example.net', parameter: 'smtpd_banner', want: 'mx1.example.net ESMTP mxscreen' },
  { name: 'greet banner default is the smtpd banner', input: 'myhostname = mx1.example.net', parameter: 'postscreen_greet_banner', want: 'mx1.example.net ESMTP mxscreen' },
  { name: 'empty myhostname is the machine host name', input: 'myhostname =', parameter: 'myhostname', want: hostname() },
  { name: 'match list patterns in order', input: 'mynetworks = 127.0.0.0/8, [::1]/128 !192.0.2.1 2001:db8::/32', parameter: 'mynetworks', want: { patterns: ['127.0.0.0/8', '[::1]/128', '!192.0.2.1', '2001:db8::/32'], tables: [] } },
  { name: 'relative queue_directory resolves against the config directory', input: 'queue_directory = ../var/queue', parameter: 'queue_directory', want: join(DIR, '..', 'var', 'queue') },
  { name: 'absolute queue_directory unchanged', input: 'queue_directory = /srv/queue', parameter: 'queue_directory', want: '/srv/queue' },
];

for (const { name, input, parameter, want } of valueCases) {
  test(`value: ${name}`, () => {
    assert.deepEqual(load(input).get(parameter), want);
  });
}

const expansionCases: { name: string; input: string; want: string }[] = [
  { name: '$name', input: 'mydomain = example.net\nmyhostname = mx1.$mydomain', want: 'mx1.example.net' },
  { name: '${name}', input: 'mydomain = example.net\nmyhostname = mx1.${mydomain}', want: 'mx1.example.net' },
  { name: '$(name)', input: 'mydomain = example.net\nmyhostname = mx1.$(mydomain)', want: 'mx1.example.net' },
  { name: 'recursive', input: 'mail_name = $mydomain\nmydomain = $relayhost\nrelayhost = deep\nmyhostname = $mail_name', want: 'deep' },
  { name: 'default of a referenced parameter', input: 'myhostname = $mail_name.example', want: 'mxscreen.example' },
  { name: 'undefined name expands to empty', input: 'myhostname = mx1$no_such_parameter.example.net', want: 'mx1.example.net' },
  { name: '$$ is a literal $', input: 'myhostname = a$$b', want: 'a$b' },
  { name: '${name?value} when set', input: 'relayhost = x\nmyhostname = a${relayhost?-set}', want: 'a-set' },
  { name: '${name?value} when empty', input: 'myhostname = a${relayhost?-set}', want: 'a' },
  { name: '${name:value} when empty', input: 'myhostname = a${relayhost:-empty}', want: 'a-empty' },
  { name: '${name?{a}:{b}} when empty', input: 'myhostname = ${relayhost?{yes}:{no}}', want: 'no' },
  { name: 'a later setting wins', input: 'myhostname = first\nmyhostname = second', want: 'second' },
];

for (const { name, input, want } of expansionCases) {
  test(`expansion: ${name}`, () => {
    assert.equal(load(input).get('myhostname'), want);
  });
}

test('expansion: a loop is a problem at the line of each setting in it', () => {
  const problems = problemsOf('myhostname = x\nmail_name = $mydomain\nmydomain = $mail_name\n');
  assert.deepEqual(problems.map((problem) => problem.line).sort(), [2, 3]);
});

test('expansion: a parameter using a bad one does not repeat its problem', () => {
  assert.deepEqual(problemsOf('mydomain = ${relayhost\nmyhostname = $mydomain\n').map((problem) => problem.line), [1]);
});

test('expansion: an unclosed ${ is a problem with its line', () => {
  assert.deepEqual(problemsOf('myhostname = x\nmydomain = ${relayhost\n').map((problem) => problem.line), [2]);
});

test('alias: postscreen_blacklist_action sets postscreen_denylist_action', () => {
  const config = load('postscreen_blacklist_action = enforce');
  assert.equal(config.get('postscreen_denylist_action'), 'enforce');
  assert.equal(config.where('postscreen_denylist_action'), `${FILE}:1`);
});

test('alias: of an old and a new name, the later line wins', () => {
  assert.equal(load('postscreen_denylist_action = drop\npostscreen_blacklist_action = enforce').get('postscreen_denylist_action'), 'enforce');
  assert.equal(load('postscreen_blacklist_action = enforce\npostscreen_denylist_action = drop').get('postscreen_denylist_action'), 'drop');
});

test('where: file:line of a setting, "default" otherwise', () => {
  const config = load('# head\nmyhostname = mx1.example.net');
  assert.equal(config.where('myhostname'), `${FILE}:2`);
  assert.equal(config.where('mydomain'), 'default');
});

test('resolvePath: relative against the config directory, absolute unchanged', () => {
  const config = load('');
  assert.equal(config.resolvePath('transport'), join(DIR, 'transport'));
  assert.equal(config.resolvePath('/etc/postfix/transport'), '/etc/postfix/transport');
});

test('unknown parameter: ERR_CONFIG with file:line', () => {
  const problems = problemsOf('myhostname = x\n\nno_such_parameter = 1\n');
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[FILE, 3]]);
});

const badValueCases: { name: string; input: string }[] = [
  { name: 'time with a bad unit', input: 'postscreen_greet_wait = 6x' },
  { name: 'time with a fraction', input: 'postscreen_greet_wait = 1.5s' },
  { name: 'size with a suffix', input: 'message_size_limit = 10M' },
  { name: 'integer that is not', input: 'postscreen_dnsbl_threshold = two' },
  { name: 'action that is not', input: 'postscreen_greet_action = reject' },
  { name: 'tables with a word that is not a table', input: 'transport_maps = /etc/postfix/transport' },
  { name: 'tables with an unsupported type', input: 'transport_maps = mysql:/etc/postfix/transport.cf' },
  { name: 'match list with an unsupported type', input: 'relay_domains = ldap:/etc/postfix/ldap.cf' },
  { name: 'mynetworks with host bits', input: 'mynetworks = 10.1.2.3/8' },
  { name: 'mynetworks with a bad prefix', input: 'mynetworks = 10.0.0.0/33' },
  { name: 'banner without ESMTP', input: 'smtpd_banner = $myhostname Postfix' },
  { name: 'listen without a port', input: 'mxscreen_listen = 127.0.0.1' },
  { name: 'listen with a bad port', input: 'mxscreen_listen = 127.0.0.1:70000' },
  { name: 'metrics listen without a port', input: 'mxscreen_metrics_listen = localhost' },
  { name: 'dns server that is a name', input: 'mxscreen_dns_servers = ns.example.net' },
];

for (const { name, input } of badValueCases) {
  test(`bad value: ${name} is a problem at its line`, () => {
    const problems = problemsOf(`# first line\n${input}\n`);
    assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[FILE, 2]]);
  });
}

test('good listen and DNS server forms are accepted', () => {
  const config = load('mxscreen_listen = 127.0.0.1:2525 [::1]:25 localhost:0\nmxscreen_dns_servers = 127.0.0.1 127.0.0.1:5353 ::1 [::1]:53\nmxscreen_metrics_listen =');
  assert.deepEqual(config.get('mxscreen_listen'), ['127.0.0.1:2525', '[::1]:25', 'localhost:0']);
});

test('a bad default value is reported at line 0 naming the default', () => {
  const problems = problemsOf('myhostname = two words\n');
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[FILE, 0]]);
  assert.ok(problems.every((problem) => problem.message.includes('default')));
});

test('tables: relay_recipient_maps and transport_maps open hash: tables (relative names)', () => {
  const directory = tempDir({
    transport: 'example.com smtp:[127.0.0.1]:2526\n',
    relay_recipients: '@example.org OK\njoe@example.com OK\n',
  });
  const config = load('transport_maps = hash:transport\nrelay_recipient_maps = texthash:relay_recipients\nrelay_domains = example.net, hash:transport', directory);
  assert.equal(config.get('transport_maps')[0]?.lookup('example.com'), 'smtp:[127.0.0.1]:2526');
  assert.equal(config.get('relay_recipient_maps')[0]?.lookup('JOE@example.com'), 'OK');
  const relay = config.get('relay_domains');
  assert.deepEqual(relay.patterns, ['example.net', 'hash:transport']);
  assert.equal(relay.tables[0], config.get('transport_maps')[0], 'one instance per table spec');
  assert.deepEqual([...configSources(config)].sort(), [join(directory, 'main.cf'), join(directory, 'relay_recipients'), join(directory, 'transport')]);
});

test('tables: a list parameter naming a table opens it at load; configuredTable returns it', () => {
  const directory = tempDir({ 'client_access.cidr': '192.0.2.0/24 reject\n' });
  const config = load('postscreen_access_list = permit_mynetworks, cidr:client_access.cidr', directory);
  const table = configuredTable(config, 'cidr:client_access.cidr');
  assert.equal(table.lookup('192.0.2.7'), 'reject');
  assert.equal(configuredTable(config, 'cidr:client_access.cidr'), table);
});

test('tables: a bad table line is a problem at the table file:line', () => {
  const directory = tempDir({ 'client_access.cidr': '# head\n192.0.2.0/24 reject\n192.0.2.1/24 reject\n' });
  const problems = problemsOf('postscreen_access_list = permit_mynetworks, cidr:client_access.cidr', directory);
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[join(directory, 'client_access.cidr'), 3]]);
});

test('tables: a missing table file is a problem at the main.cf line naming it', () => {
  const directory = tempDir();
  const problems = problemsOf('myhostname = x\ntransport_maps = hash:transport', directory);
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[join(directory, 'main.cf'), 2]]);
});

test('tables: the same bad table named twice is reported once', () => {
  const directory = tempDir({ transport: 'no-value-here\n' });
  const problems = problemsOf('transport_maps = hash:transport\nrelay_domains = hash:transport', directory);
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [[join(directory, 'transport'), 1]]);
});

test('match list: a /file/name pattern file is read into the patterns', () => {
  const directory = tempDir({ domains: '# relay these\nexample.com, .example.org\n' });
  const config = load(`relay_domains = ${join(directory, 'domains')} example.net`, directory);
  assert.deepEqual(config.get('relay_domains').patterns, ['example.com', '.example.org', 'example.net']);
});

test('checkConfig lists every problem of main.cf and its tables, in order', () => {
  const directory = tempDir({
    'main.cf': [
      'myhostname = mx1.example.net', // 1
      'postscreen_greet_wait = soon', // 2
      'no_such_parameter = 1', // 3
      'not a setting', // 4
      'postscreen_access_list = permit_mynetworks, cidr:client_access.cidr', // 5
      'postscreen_greet_action = reject', // 6
      '',
    ].join('\n'),
    'client_access.cidr': '192.0.2.0/24\n',
  });
  const problems = checkConfig(join(directory, 'main.cf'));
  assert.deepEqual(problems.map((problem) => [problem.file, problem.line]), [
    [join(directory, 'main.cf'), 2],
    [join(directory, 'main.cf'), 3],
    [join(directory, 'main.cf'), 4],
    [join(directory, 'main.cf'), 6],
    [join(directory, 'client_access.cidr'), 1],
  ]);
});

test('checkConfig of a valid file is empty; loadConfig returns its Config', () => {
  const directory = tempDir({ 'main.cf': 'myhostname = mx1.example.net\n' });
  assert.deepEqual(checkConfig(join(directory, 'main.cf')), []);
  const config = loadConfig(join(directory, 'main.cf'));
  assert.equal(config.file, join(directory, 'main.cf'));
  assert.equal(config.directory, directory);
});

test('loadConfig of a missing file throws ERR_CONFIG at line 0', () => {
  const missing = join(tempDir(), 'main.cf');
  assert.throws(() => loadConfig(missing), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'ERR_CONFIG');
    assert.deepEqual(error.problems.map((problem) => [problem.file, problem.line]), [[missing, 0]]);
    return true;
  });
});

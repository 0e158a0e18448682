// postscreen_cache_map and the Redis client file (cache-map.ts): the embedded cache for any
// map type but redis:, memcache_table(5)-style lines, each problem at file:line, and a url
// with a password that no problem text, log name or check-config line ever shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey, parseRedisCacheFile, readCacheMap, redactedUrl } from '../../src/screen/cache-map.js';
import { checkConfiguration } from '../../src/main.js';
import { formatProblem } from '../../src/errors.js';

const FILE = '/etc/mxscreen/postscreen_cache.cf';

const good = [
  { name: 'url alone: the defaults', text: 'url = redis://127.0.0.1:6379/0\n', want: { url: 'redis://127.0.0.1:6379/0', keyFormat: 'postscreen:%s', timeoutMs: 50, connectTimeoutMs: 1000 } },
  {
    name: 'every name, comments, blank lines and a continuation line',
    text: '# shared with mx2\n\nurl = rediss://mx:s3cret@cache.example.net:6380/2\nkey_format = mx:%%:%s\ntimeout = 20ms\nconnect_timeout =\n  2\n',
    want: { url: 'rediss://mx:s3cret@cache.example.net:6380/2', keyFormat: 'mx:%%:%s', timeoutMs: 20, connectTimeoutMs: 2000 },
  },
  { name: 'no database, no port', text: 'url = redis://cache.example.net\ntimeout = 1s\n', want: { url: 'redis://cache.example.net', keyFormat: 'postscreen:%s', timeoutMs: 1000, connectTimeoutMs: 1000 } },
] as const;
for (const { name, text, want } of good) {
  test(`client file: ${name}`, () => {
    const { settings, problems } = parseRedisCacheFile(text, FILE);
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, { file: FILE, ...want });
  });
}

const bad = [
  { name: 'an unknown name', text: 'url = redis://h/0\nmemcache = inet:localhost:11211\n', want: [`${FILE}:2: unknown name "memcache" (expected url, key_format, timeout, connect_timeout)`] },
  { name: 'no "="', text: 'url redis://h/0\n', want: [`${FILE}:1: expected "name = value"`, `${FILE}:0: url is required (url = redis://host:port/db)`] },
  { name: 'no url', text: 'timeout = 1s\n', want: [`${FILE}:0: url is required (url = redis://host:port/db)`] },
  { name: 'a name set twice', text: 'url = redis://h/0\ntimeout = 1s\ntimeout = 2s\n', want: [`${FILE}:3: "timeout" is set twice (first at line 2)`] },
  { name: 'a wrong scheme', text: 'url = http://h/0\n', want: [`${FILE}:1: url: unsupported scheme "http" (expected redis or rediss)`] },
  { name: 'a database that is no number', text: '\nurl = redis://h/cache\n', want: [`${FILE}:2: url: the path must be a database number (/0, /1, …)`] },
  { name: 'url options', text: 'url = redis://h/0?timeout=1\n', want: [`${FILE}:1: url: query and fragment options are not supported`] },
  { name: 'a bad time', text: 'url = redis://h/0\ntimeout = fast\n', want: [`${FILE}:2: timeout: bad time value "fast" (expected a number with optional unit ms, s, m, h, d or w)`] },
  { name: 'a bare number is seconds: 50 is too long', text: 'url = redis://h/0\ntimeout = 50\n', want: [`${FILE}:2: timeout: 50 is out of range (1ms to 10s)`] },
  { name: 'a zero timeout', text: 'url = redis://h/0\ntimeout = 0\n', want: [`${FILE}:2: timeout: 0 is out of range (1ms to 10s)`] },
  { name: 'a connect_timeout too long', text: 'url = redis://h/0\nconnect_timeout = 2m\n', want: [`${FILE}:2: connect_timeout: 2m is out of range (1ms to 60s)`] },
  { name: 'key_format without %s', text: 'url = redis://h/0\nkey_format = postscreen\n', want: [`${FILE}:2: key_format: "postscreen" must contain %s exactly once`] },
  { name: 'key_format with another directive', text: 'url = redis://h/0\nkey_format = %d:%s\n', want: [`${FILE}:2: key_format: "%d" is not supported (only %s, the client address, and %%)`] },
  { name: 'key_format with %s twice', text: 'url = redis://h/0\nkey_format = %s:%s\n', want: [`${FILE}:2: key_format: "%s:%s" must contain %s exactly once`] },
  { name: 'a stray continuation line', text: '  url = redis://h/0\n', want: [`${FILE}:1: continuation line without a setting before it`, `${FILE}:0: url is required (url = redis://host:port/db)`] },
] as const;
for (const { name, text, want } of bad) {
  test(`client file problem: ${name}`, () => {
    const { settings, problems } = parseRedisCacheFile(text, FILE);
    assert.equal(settings, undefined);
    assert.deepEqual(problems.map(formatProblem), want);
  });
}

test('a url that does not parse is reported without its text (it may hold a password)', () => {
  const { problems } = parseRedisCacheFile('url = redis://mx:s3cret@[bad/0\n', FILE);
  assert.equal(problems.length, 1);
  assert.match(formatProblem(problems[0]!), /^\/etc\/mxscreen\/postscreen_cache\.cf:1: url: not a URL/);
  assert.doesNotMatch(formatProblem(problems[0]!), /s3cret/);
});

test('any map type but redis: is the embedded cache; redis: reads the file relative to the config directory', () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-cache-map-'));
  try {
    const at = { file: join(directory, 'main.cf'), line: 7 };
    for (const value of ['btree:/var/lib/postfix/postscreen_cache', 'lmdb:$data_directory/x', 'memcache:/etc/postfix/memcache.cf', 'proxy:btree:/x']) {
      assert.deepEqual(readCacheMap(value, directory, at), { map: { kind: 'embedded' }, problems: [] });
    }
    assert.deepEqual(readCacheMap('redis:missing.cf', directory, at).problems.map(formatProblem), [`${at.file}:7: postscreen_cache_map: cannot read ${join(directory, 'missing.cf')}: ENOENT`]);
    writeFileSync(join(directory, 'cache.cf'), 'url = redis://127.0.0.1:6379/1\n');
    const read = readCacheMap('redis:cache.cf', directory, at);
    assert.deepEqual(read.problems, []);
    assert.equal(read.map.kind, 'redis');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('the key of a client: %s is its address, %% a per cent sign', () => {
  assert.equal(cacheKey('postscreen:%s', '192.0.2.1'), 'postscreen:192.0.2.1');
  assert.equal(cacheKey('a%%b:%s', '2001:db8::1'), 'a%b:2001:db8::1');
});

test('the server as logs name it has no user and no password', () => {
  assert.equal(redactedUrl('redis://mx:s3cret@cache.example.net:6380/2'), 'redis://cache.example.net:6380/2');
  assert.equal(redactedUrl('rediss://:s3cret@10.0.0.1'), 'rediss://10.0.0.1');
});

test('check-config reports a bad client file at its file:line and never prints the password', () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-cache-map-'));
  try {
    writeFileSync(join(directory, 'main.cf'), 'mxscreen_listen = 127.0.0.1:0\nmxscreen_metrics_listen =\npostscreen_cache_map = redis:cache.cf\n');
    writeFileSync(join(directory, 'cache.cf'), 'url = redis://mx:s3cret@127.0.0.1:6379/0\ntimeout = 50\nttl = 3600\n');
    const lines = checkConfiguration(join(directory, 'main.cf')).map(formatProblem);
    assert.deepEqual(lines, [
      `${join(directory, 'cache.cf')}:2: timeout: 50 is out of range (1ms to 10s)`,
      `${join(directory, 'cache.cf')}:3: unknown name "ttl" (expected url, key_format, timeout, connect_timeout)`,
    ]);
    writeFileSync(join(directory, 'cache.cf'), 'url = redis://mx:s3cret@127.0.0.1:6379/0\n');
    assert.deepEqual(checkConfiguration(join(directory, 'main.cf')), []);
    writeFileSync(join(directory, 'cache.cf'), 'url = redis://mx:s3cret@[::1/0\n');
    const broken = checkConfiguration(join(directory, 'main.cf')).map(formatProblem).join('\n');
    assert.match(broken, /cache\.cf:1: url: not a URL/);
    assert.doesNotMatch(broken, /s3cret/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

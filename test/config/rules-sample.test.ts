// The sample configuration in rules/ (what `npm start` runs) loads without problems and
// says what the README promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfig, loadConfig } from '../../src/config/config.js';
import { matchDomain, matchNetwork } from '../../src/tables/match-list.js';
import { checkConfiguration } from '../../src/main.js';
import { formatProblem } from '../../src/errors.js';
import { screenStageSettingsFromConfig } from '../../src/screen/screen-settings.js';

/** The repository root: the nearest directory above this (compiled) file with package.json. */
function repositoryRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 10; depth++) {
    if (existsSync(join(directory, 'package.json'))) return directory;
    directory = dirname(directory);
  }
  throw new Error('package.json not found');
}

const SAMPLE = join(repositoryRoot(), 'rules', 'main.cf');

test('rules/main.cf: check-config finds no problem', () => {
  assert.deepEqual(checkConfig(SAMPLE), []);
});

test('rules/main.cf: listens and serves metrics on loopback', () => {
  const config = loadConfig(SAMPLE);
  assert.deepEqual(config.get('mxscreen_listen'), ['127.0.0.1:2525']);
  assert.equal(config.get('mxscreen_metrics_listen'), '127.0.0.1:9125');
  assert.equal(config.get('smtpd_banner'), 'mx1.example.net ESMTP mxscreen');
});

test('rules/main.cf: relays example.com to the sink on 127.0.0.1:2526 for listed recipients', () => {
  const config = loadConfig(SAMPLE);
  assert.equal(matchDomain(config.get('relay_domains'), 'example.com', true), true);
  assert.equal(matchDomain(config.get('relay_domains'), 'example.org', true), false);
  assert.equal(config.get('transport_maps')[0]?.lookup('example.com'), 'smtp:[127.0.0.1]:2526');
  const recipients = config.get('relay_recipient_maps')[0];
  assert.equal(recipients?.lookup('info@example.com'), 'OK');
  assert.equal(recipients?.lookup('nobody@example.com'), undefined);
});

test('rules/main.cf: the demo client on 127.0.0.1 is screened, not trusted', () => {
  const config = loadConfig(SAMPLE);
  assert.equal(matchNetwork(config.get('mynetworks'), '127.0.0.1'), false);
  assert.equal(config.get('postscreen_denylist_action'), 'enforce');
  assert.ok(config.where('postscreen_denylist_action').startsWith(`${SAMPLE}:`), 'set through its old name postscreen_blacklist_action');
  assert.equal(config.get('queue_directory'), join(repositoryRoot(), 'var', 'queue'));
});

const PAIR = join(repositoryRoot(), 'rules', 'mx-pair');

test('rules/mx-pair: mx1 and mx2 pass check-config, their Redis client file included', () => {
  for (const host of ['mx1', 'mx2']) assert.deepEqual(checkConfiguration(join(PAIR, host, 'main.cf')).map(formatProblem), [], host);
});

test('rules/mx-pair: both hosts share one Redis client file; mx2 vetoes only its own address', () => {
  const [mx1, mx2] = ['mx1', 'mx2'].map((host) => screenStageSettingsFromConfig(loadConfig(join(PAIR, host, 'main.cf'))));
  assert.equal(mx1!.cache.map.kind, 'redis');
  assert.deepEqual(mx2!.cache.map, mx1!.cache.map);
  assert.equal(mx1!.cache.map.kind === 'redis' && mx1!.cache.map.redis.file, join(PAIR, 'postscreen_cache.cf'));
  assert.equal(mx1!.cache.map.kind === 'redis' && mx1!.cache.map.redis.url, 'redis://127.0.0.1:6379/0');
  assert.equal(matchNetwork(mx1!.screener.allowlistInterfaces, '127.0.0.1'), true);
  assert.equal(matchNetwork(mx2!.screener.allowlistInterfaces, '127.0.0.22'), false, 'ALLOWLIST VETO on mx2');
  assert.equal(matchNetwork(mx2!.screener.allowlistInterfaces, '192.0.2.1'), true);
  assert.deepEqual(loadConfig(join(PAIR, 'mx2', 'main.cf')).get('mxscreen_listen'), ['127.0.0.22:2525']);
});

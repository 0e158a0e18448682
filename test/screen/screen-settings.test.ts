import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromText } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { screenSettingsFromConfig } from '../../src/screen/screen-settings.js';

let directory: string;
before(() => {
  directory = mkdtempSync(join(tmpdir(), 'mxscreen-settings-'));
  writeFileSync(join(directory, 'client_access.cidr'), '192.0.2.0/24 reject\n');
});
after(() => rmSync(directory, { recursive: true, force: true }));

const config = (lines: string[]) => configFromText(['myhostname = mx1.example.test', ...lines, ''].join('\n'), { file: join(directory, 'main.cf'), directory });

/** The problems screenSettingsFromConfig throws, as `line: message` pairs. */
function problems(lines: string[]): { line: number; message: string }[] {
  try {
    screenSettingsFromConfig(config(lines));
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'ERR_CONFIG');
    return error.problems.map((p) => ({ line: p.line, message: p.message }));
  }
  return [];
}

test('Postfix defaults: 6s greet wait, ignore actions, threshold 1, TTL bounds 60s..1h, banner = smtpd_banner', () => {
  const settings = screenSettingsFromConfig(config([]));
  assert.equal(settings.greetWaitMs, 6000);
  assert.equal(settings.greetAction, 'ignore');
  assert.equal(settings.dnsblAction, 'ignore');
  assert.equal(settings.denylistAction, 'ignore');
  assert.equal(settings.dnsblThreshold, 1);
  assert.equal(settings.dnsblMinTtlMs, 60_000);
  assert.equal(settings.dnsblMaxTtlMs, 3_600_000);
  assert.equal(settings.greetTtlMs, 86_400_000);
  assert.equal(settings.greetBanner, 'mx1.example.test ESMTP mxscreen');
  assert.deepEqual(settings.dnsblSites, []);
  assert.deepEqual(settings.accessList.elements.map((e) => e.kind), ['permit_mynetworks']);
});

test("seed 001's postscreen lines, old names included, are read", () => {
  const settings = screenSettingsFromConfig(
    config([
      'postscreen_greet_action = enforce',
      'postscreen_dnsbl_action = enforce',
      'postscreen_blacklist_action = enforce',
      'postscreen_access_list = permit_mynetworks, cidr:client_access.cidr',
      'postscreen_dnsbl_sites = zen.dnsbl.test*2, b.dnsbl.test=127.0.0.[2..11]',
      'postscreen_greet_wait = 150ms',
    ]),
  );
  assert.equal(settings.greetAction, 'enforce');
  assert.equal(settings.denylistAction, 'enforce');
  assert.equal(settings.greetWaitMs, 150);
  assert.deepEqual(
    settings.dnsblSites.map((s) => [s.domain, s.filter?.text, s.weight]),
    [
      ['zen.dnsbl.test', undefined, 2],
      ['b.dnsbl.test', '127.0.0.[2..11]', 1],
    ],
  );
  const table = settings.accessList.elements[1];
  assert.ok(table?.kind === 'table');
  assert.equal(table.table.lookup('192.0.2.7'), 'reject');
});

test('a bad postscreen_dnsbl_sites entry is a problem at the line of the setting', () => {
  const found = problems(['# comment', 'postscreen_dnsbl_sites = zen.dnsbl.test*x, ok.dnsbl.test, bad.dnsbl.test=127.0.0.[9..2]']);
  assert.equal(found.length, 2);
  assert.ok(found.every((p) => p.line === 3));
});

test('an unknown postscreen_access_list element is a problem at the line of the setting', () => {
  const found = problems(['postscreen_access_list = permit_mynetworks, allow_everyone']);
  assert.equal(found.length, 1);
  assert.equal(found[0]?.line, 2);
});

// rules/systemd/mxscreen.service (issue 11): the keys the service recipe needs, the README's
// install steps using the same paths, and systemd's own check (systemd-analyze verify).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../fakes/repository-root.js';
import { parseUnit, UNIT_FILE } from './systemd-unit.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { configFromText } from '../../src/config/config.js';

const unit = parseUnit(readFileSync(UNIT_FILE, 'utf8'));
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string): string | undefined => service.get(key)?.at(-1);
const defaults = configFromText('', { file: '/etc/mxscreen/main.cf', directory: '/etc/mxscreen' });

/** A systemd time span as the unit writes it (`45s`, `2min`, `45`), in ms. */
function timeSpanMs(text: string): number {
  const match = /^(\d+)\s*(s|sec|min|m)?$/.exec(text);
  assert.ok(match, `time span ${text}`);
  return Number(match[1]) * (match[2] === 'min' || match[2] === 'm' ? 60_000 : 1000);
}

test('the unit runs mxscreen start on /etc/mxscreen/main.cf in the foreground, as root so that it can drop to mail_owner', () => {
  assert.ok(['simple', 'notify'].includes(one('Type') ?? ''), `Type=${one('Type')}`);
  assert.match(one('ExecStart') ?? '', /^\/\S+\/mxscreen start -c \/etc\/mxscreen\/main\.cf$/);
  assert.equal(service.get('User'), undefined, 'no User=: mxscreen starts as root, binds, then drops to mail_owner itself');
  const capabilities = (one('CapabilityBoundingSet') ?? '').split(/\s+/);
  for (const needed of ['CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID']) assert.ok(capabilities.includes(needed), needed);
  assert.deepEqual(unit.get('Install')?.get('WantedBy'), ['multi-user.target']);
});

test('reload is SIGHUP, stop is SIGTERM with a stop timeout above mxscreen_shutdown_timeout, restart on failure', () => {
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.ok(timeSpanMs(one('TimeoutStopSec') ?? '') > defaults.get('mxscreen_shutdown_timeout'), `TimeoutStopSec=${one('TimeoutStopSec')}`);
  assert.equal(one('Restart'), 'on-failure');
});

test('hardening: ProtectSystem=strict with only the default queue_directory writable, NoNewPrivileges, PrivateTmp', () => {
  assert.equal(one('ProtectSystem'), 'strict');
  assert.deepEqual(service.get('ReadWritePaths'), [defaults.get('queue_directory')]);
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.equal(one('ProtectHome'), 'yes');
  assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX');
  assert.notEqual(one('MemoryDenyWriteExecute'), 'yes', "Node's JIT needs writable executable memory");
});

test('README "Install as a service" uses this unit, its command path, its queue directory and main.cf', () => {
  const readme = readFileSync(join(repositoryRoot(), 'README.md'), 'utf8');
  const start = readme.indexOf('## Install as a service');
  assert.ok(start >= 0, 'README has an "Install as a service" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const command = (one('ExecStart') ?? '').split(' ')[0]!;
  for (const text of ['rules/systemd/mxscreen.service', command, defaults.get('queue_directory'), '/etc/mxscreen/main.cf', 'useradd', 'systemctl enable --now mxscreen', 'systemctl reload mxscreen', 'journalctl -u mxscreen']) {
    assert.ok(section.includes(text), `the section names ${text}`);
  }
});

const analyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).error === undefined;
const skipVerify = !analyze && !process.env.CI ? 'systemd-analyze is not installed (apt-get install systemd)' : false;
if (skipVerify) console.log(`# skipping systemd-analyze verify: ${skipVerify}`);

test('systemd-analyze verify finds nothing to say about the unit', { skip: skipVerify }, () => {
  // verify checks that ExecStart's program exists; the installed command is not here, /bin/true stands in.
  const command = (one('ExecStart') ?? '').split(' ')[0]!;
  const copy = join(temporaryDirectory('mxscreen-unit-'), 'mxscreen.service');
  writeFileSync(copy, readFileSync(UNIT_FILE, 'utf8').split(command).join('/bin/true'));
  const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.error, undefined, 'systemd-analyze ran');
  assert.equal(result.stderr + result.stdout, '');
  assert.equal(result.status, 0);
});

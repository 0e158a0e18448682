// The mxscreen command as an operator runs it: check-config, start with SIGHUP/SIGTERM,
// queue list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repositoryRoot } from '../fakes/repository-root.js';

const CLI = join(repositoryRoot(), 'dist/src/cli.js');

function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function tempConfig(lines: readonly string[]): { directory: string; file: string } {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-cli-'));
  const file = join(directory, 'main.cf');
  writeFileSync(file, lines.join('\n') + '\n');
  return { directory, file };
}

test('check-config accepts the sample configuration in rules/', () => {
  const result = runCli(['check-config', '--config', join(repositoryRoot(), 'rules/main.cf')]);
  assert.equal(result.stdout, '');
  assert.equal(result.status, 0);
});

test('check-config prints every error as file:line: message and exits 1', () => {
  const { directory, file } = tempConfig(['myhostname = mx.example.net', 'no_such_parameter = 1', 'postscreen_greet_wait = soon', 'relay_recipient_maps = hash:missing_table']);
  try {
    const result = runCli(['check-config', '-c', file]);
    assert.equal(result.status, 1);
    const lines = result.stdout.trim().split('\n');
    assert.ok(lines.length >= 3, result.stdout);
    assert.ok(lines.some((line) => line.startsWith(`${file}:2: `) && line.includes('no_such_parameter')), result.stdout);
    assert.ok(lines.some((line) => line.startsWith(`${file}:3: `)), result.stdout);
    assert.ok(lines.some((line) => line.includes('missing_table')), result.stdout);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('check-config reports problems the stages find, such as a bad postscreen_dnsbl_sites entry', () => {
  const { directory, file } = tempConfig(['myhostname = mx.example.net', 'postscreen_dnsbl_sites = zen.dnsbl.test*x']);
  try {
    const result = runCli(['check-config', '-c', file]);
    assert.equal(result.status, 1);
    assert.match(result.stdout, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: postscreen_dnsbl_sites`));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('start runs in the foreground, reloads on SIGHUP (keeping the last good config on error) and stops on SIGTERM', async () => {
  const { directory, file } = tempConfig([
    'myhostname = mx.example.net',
    'mxscreen_listen = 127.0.0.1:0',
    'mxscreen_metrics_listen = 127.0.0.1:0',
    'mxscreen_dns_servers = 127.0.0.1:9',
    'queue_directory = queue',
    'postscreen_dnsbl_timeout = 1s',
    'mxscreen_shutdown_timeout = 1s',
  ]);
  const child = spawn(process.execPath, [CLI, 'start', '-c', file, '--no-privilege-drop'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const events: { event?: string }[] = [];
    const waiters: { event: string; resolve: () => void }[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as { event?: string };
      events.push(entry);
      for (const waiter of waiters.filter((w) => w.event === entry.event)) waiter.resolve();
    });
    const waitFor = (event: string) =>
      events.some((e) => e.event === event)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${event} line`)), 10_000);
            waiters.push({ event, resolve: () => (clearTimeout(timer), resolve()) });
          });
    await waitFor('START');
    child.kill('SIGHUP');
    await waitFor('RELOAD');
    appendFileSync(file, 'bogus_parameter = 1\n');
    child.kill('SIGHUP');
    await waitFor('RELOAD FAILED');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.ok(events.some((e) => e.event === 'STOP'));
  } finally {
    child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  }
});

test('queue list on an empty queue prints nothing and exits 0', () => {
  const { directory, file } = tempConfig(['queue_directory = queue']);
  try {
    const result = runCli(['queue', 'list', '-c', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, '');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

// `mxscreen start` as a service (issue 11, "Runs as a service, unprivileged"): started as
// root it binds a privileged port and its metrics port, then runs as mail_owner (the
// kernel's view, /proc/PID/status), queue files are mail_owner's, delivery, reload and stop
// work; a queue directory it does not own and an unknown mail_owner stop start-up with a
// clear error and exit 1; started as another user it stays that user.
// Needs root (and useradd for the dedicated test user): skipped otherwise, with a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repositoryRoot } from '../fakes/repository-root.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { until } from '../fakes/wait-until.js';
import { lookupSystemUser, type SystemUser } from '../../src/ops/privileges.js';
import { connectSmtp, relayMainCf, sendOne, testMessage } from '../queue/mxscreen-process.js';
import { parseUnit, UNIT_FILE } from '../ops/systemd-unit.js';

const CLI = join(repositoryRoot(), 'dist/src/cli.js');
/** A dedicated system user for these tests, created when missing and kept (no login, no home). */
const TEST_OWNER = 'mxscreen-test';

const isRoot = process.getuid?.() === 0;
const hasUseradd = spawnSync('useradd', ['--help'], { stdio: 'ignore' }).error === undefined;
const skip = !isRoot
  ? 'the privilege drop needs a test run as root (mxscreen start must start as root to drop to mail_owner)'
  : !hasUseradd && !lookupSystemUser(TEST_OWNER) && !process.env.CI
    ? `useradd is not installed and user ${TEST_OWNER} does not exist`
    : false;
if (skip) console.log(`# skipping privilege-drop tests: ${skip}`);

function testOwner(): SystemUser {
  const known = lookupSystemUser(TEST_OWNER);
  if (known) return known;
  const result = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', TEST_OWNER], { encoding: 'utf8' });
  // Another test process may have created it meanwhile (exit 9: already exists).
  const user = lookupSystemUser(TEST_OWNER);
  assert.ok(user, `useradd ${TEST_OWNER} failed: ${result.stderr}`);
  return user;
}

/** Whether `user` can execute `node` (a binary under /root, as npx's cache puts one, cannot be). */
function canExecute(node: string, user: { uid: number; gid: number }): boolean {
  return spawnSync(node, ['-e', '0'], { uid: user.uid, gid: user.gid, stdio: 'ignore' }).status === 0;
}

let nodeCopy: string | undefined;
/**
 * A node binary that `user` can execute: process.execPath, or a copy of it in a directory
 * anyone may enter. The filter forks its workers after the drop, so mail_owner must be able
 * to execute node (README "Install as a service"); the test runs the node it was given.
 */
function nodeFor(user: { uid: number; gid: number }): string {
  if (canExecute(process.execPath, user)) return process.execPath;
  if (nodeCopy === undefined) {
    const directory = temporaryDirectory('mxscreen-node-');
    chmodSync(directory, 0o755);
    nodeCopy = join(directory, 'node');
    copyFileSync(process.execPath, nodeCopy);
    chmodSync(nodeCopy, 0o755);
  }
  return nodeCopy;
}

/** A port below 1024 that nothing listens on now, so only root can bind it. */
async function freePrivilegedPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 600 + Math.floor(Math.random() * 400);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below 1024');
}

/** A config directory that other users may read (as the dropped filter must, on reload), with main.cf and a queue directory owned by `queueOwner`. */
function serviceDirectory(mainCf: string, queueOwner: { uid: number; gid: number } | undefined): { directory: string; file: string; queue: string } {
  const directory = temporaryDirectory('mxscreen-privileges-');
  chmodSync(directory, 0o755);
  const file = join(directory, 'main.cf');
  writeFileSync(file, mainCf, { mode: 0o644 });
  const queue = join(directory, 'queue');
  if (queueOwner) {
    mkdirSync(queue, { mode: 0o700 });
    chownSync(queue, queueOwner.uid, queueOwner.gid);
  }
  return { directory, file, queue };
}

interface Started {
  readonly child: ChildProcess;
  readonly events: { event?: string; [field: string]: unknown }[];
  waitFor(event: string): Promise<{ event?: string; [field: string]: unknown }>;
  readonly exit: Promise<number | null>;
  stderr(): string;
}

/** `mxscreen ARGS` as a child; `wrapper` runs it under another command (setpriv …). */
function startCli(args: readonly string[], options: { uid?: number; gid?: number } = {}, wrapper: readonly string[] = [], node?: string): Started {
  // Whoever it ends up running as (mail_owner, or the user it starts as) executes node again for each worker.
  const runsAs = options.uid !== undefined && options.gid !== undefined ? { uid: options.uid, gid: options.gid } : lookupSystemUser(TEST_OWNER);
  const command = [...wrapper, node ?? (runsAs ? nodeFor(runsAs) : process.execPath), CLI, ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const events: { event?: string }[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as { event?: string });
    } catch {
      // not a log line
    }
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => (exited = true));
  return {
    child,
    events,
    exit,
    stderr: () => stderr,
    waitFor: async (event) => {
      await until(`a ${event} line (stderr: ${stderr})`, () => exited || events.some((line) => line.event === event), 15_000);
      const line = events.find((entry) => entry.event === event);
      assert.ok(line, `mxscreen exited before logging ${event}: ${stderr}`);
      return line;
    },
  };
}

/** A field of /proc/PID/status (the kernel's view of a process). */
function statusField(pid: number, name: string): string {
  return (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '').trim();
}

/** Uid:, Gid: and Groups: of a process (real, effective, saved, file system). */
function processIds(pid: number): { uids: number[]; gids: number[]; groups: number[] } {
  const field = (name: string) => statusField(pid, name).split(/\s+/).filter(Boolean).map(Number);
  return { uids: field('Uid'), gids: field('Gid'), groups: field('Groups') };
}

async function stop(started: Started): Promise<number | null> {
  started.child.kill('SIGTERM');
  const timer = setTimeout(() => started.child.kill('SIGKILL'), 10_000);
  const code = await started.exit;
  clearTimeout(timer);
  return code;
}

test('started as root: binds port < 1024 and metrics, then runs as mail_owner; queue files are mail_owner\'s; mail, reload, queue flush and stop work', { skip }, async () => {
  const owner = testOwner();
  const mailbox = await MailboxServer.start();
  const port = await freePrivilegedPort();
  const { file, queue } = serviceDirectory(
    relayMainCf(`127.0.0.1:${port}`, mailbox.port, [`mail_owner = ${TEST_OWNER}`, 'mxscreen_metrics_listen = 127.0.0.1:0', 'mxscreen_shutdown_timeout = 1s', 'minimal_backoff_time = 1h', 'maximal_backoff_time = 1h']),
    owner,
  );
  const mx = startCli(['start', '-c', file]);
  try {
    const privileges = await mx.waitFor('PRIVILEGES');
    assert.deepEqual([privileges.user, privileges.uid, privileges.gid, privileges.dropped], [TEST_OWNER, owner.uid, owner.gid, true]);
    await mx.waitFor('START');
    const listen = mx.events.find((line) => line.event === 'LISTEN' && line.path === undefined);
    assert.equal(listen?.port, port, 'the SMTP socket is on the privileged port');
    // The kernel's view: real, effective, saved and file system IDs all mail_owner's, no other group.
    const ids = processIds(mx.child.pid!);
    assert.deepEqual(ids.uids, [owner.uid, owner.uid, owner.uid, owner.uid]);
    assert.deepEqual(ids.gids, [owner.gid, owner.gid, owner.gid, owner.gid]);
    assert.deepEqual(ids.groups, [owner.gid]);
    // What start-up created is mail_owner's: the queue subdirectories and control/master.pid.
    for (const name of readdirSync(queue)) assert.equal(statSync(join(queue, name)).uid, owner.uid, `${name} owned by mail_owner`);
    for (const name of readdirSync(join(queue, 'control'))) assert.equal(statSync(join(queue, 'control', name)).uid, owner.uid, `control/${name}`);
    // The metrics endpoint bound before the drop still answers.
    const metricsListen = mx.events.find((line) => line.event === 'LISTEN' && line.path === '/metrics');
    const metrics = await fetch(`http://127.0.0.1:${String(metricsListen?.port)}/healthz`);
    assert.equal(metrics.status, 200);

    // A message while the mailbox server refuses: its queue and state files are mail_owner's.
    mailbox.setMode('tempfail');
    const client = await connectSmtp(port);
    assert.equal(await sendOne(client, 'alice@sender.test', 'info@example.com', testMessage('drop-1', 200)), true);
    client.close();
    await mx.waitFor('status=deferred');
    await until('the message in deferred/', () => readdirSync(join(queue, 'deferred')).length === 1, 10_000);
    const deferred = readdirSync(join(queue, 'deferred'));
    assert.equal(statSync(join(queue, 'deferred', deferred[0]!)).uid, owner.uid, 'the new queue file is mail_owner\'s');
    for (const name of readdirSync(join(queue, 'state'))) assert.equal(statSync(join(queue, 'state', name)).uid, owner.uid, `state/${name}`);

    // Reload as mail_owner: main.cf is re-read by the dropped process.
    mx.child.kill('SIGHUP');
    await until('a RELOAD line after SIGHUP', () => mx.events.some((line) => line.event === 'RELOAD' && line.config === file), 10_000);
    assert.ok(!mx.events.some((line) => line.event === 'RELOAD FAILED'), 'reload as mail_owner works');

    // `mxscreen queue flush` run by root: its control/ request is mail_owner's, so the filter reads it and delivers.
    mailbox.setMode('accept');
    const flush = spawnSync(process.execPath, [CLI, 'queue', 'flush', '-c', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(flush.status, 0, flush.stdout + flush.stderr);
    await mx.waitFor('status=sent');
    await until('the message at the mailbox server', () => mailbox.received.length === 1, 10_000);

    assert.equal(await stop(mx), 0, mx.stderr());
    assert.ok(mx.events.some((line) => line.event === 'STOP'));
  } finally {
    mx.child.kill('SIGKILL');
    await mailbox.close();
  }
});

test('started as root with a queue directory mail_owner does not own: start-up fails with the reason, exit 1', { skip }, async () => {
  const owner = testOwner();
  const { file, queue } = serviceDirectory(relayMainCf('127.0.0.1:0', 9, [`mail_owner = ${TEST_OWNER}`]), { uid: 0, gid: 0 });
  const mx = startCli(['start', '-c', file]);
  assert.equal(await mx.exit, 1);
  assert.equal(mx.stderr(), `mxscreen: queue_directory ${queue} is owned by uid 0, not by mail_owner ${TEST_OWNER} (uid ${owner.uid}); chown -R ${TEST_OWNER}: ${queue}\n`);
  assert.ok(!mx.events.some((line) => line.event === 'LISTEN'), 'nothing was bound');
});

test('started as root with a queue subdirectory mail_owner does not own (left by a root run): start-up fails with the reason, exit 1', { skip }, async () => {
  const owner = testOwner();
  const { file, queue } = serviceDirectory(relayMainCf('127.0.0.1:0', 9, [`mail_owner = ${TEST_OWNER}`]), owner);
  mkdirSync(join(queue, 'deferred'), { mode: 0o700 }); // root's, as an older mxscreen run as root left it
  const mx = startCli(['start', '-c', file]);
  assert.equal(await mx.exit, 1);
  assert.equal(mx.stderr(), `mxscreen: queue_directory ${queue}/deferred is owned by uid 0, not by mail_owner ${TEST_OWNER} (uid ${owner.uid}); chown -R ${TEST_OWNER}: ${queue}\n`);
});

test('started as root with an unknown mail_owner: start-up fails with the reason, exit 1', { skip }, async () => {
  const { file } = serviceDirectory(relayMainCf('127.0.0.1:0', 9, ['mail_owner = mxscreen-no-such-user']), { uid: 0, gid: 0 });
  const mx = startCli(['start', '-c', file]);
  assert.equal(await mx.exit, 1);
  assert.match(mx.stderr(), /^mxscreen: mail_owner mxscreen-no-such-user: unknown user; create it/);
});

test('started as root with two workers and a node mail_owner cannot execute: start-up fails with the reason, exit 1, instead of hanging', { skip }, async () => {
  const owner = testOwner();
  const { file } = serviceDirectory(relayMainCf('127.0.0.1:0', 9, [`mail_owner = ${TEST_OWNER}`, 'mxscreen_workers = 2']), owner);
  const hidden = temporaryDirectory('mxscreen-hidden-node-'); // 0700, root's: as npx's cache under /root
  chmodSync(hidden, 0o700);
  const node = join(hidden, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  const mx = startCli(['start', '-c', file], {}, [], node);
  const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref());
  const exit = await Promise.race([mx.exit, hung]);
  if (exit === 'hung') mx.child.kill('SIGKILL');
  assert.equal(exit, 1, `exit status (stderr: ${mx.stderr()})`);
  assert.match(mx.stderr(), /^mxscreen: .*mxscreen worker \d could not be started: spawn \S+ EACCES/);
});

test('started as an unprivileged user (nobody, a port above 1023): runs as that user, mail_owner ignored', { skip }, async (t) => {
  const nobody = lookupSystemUser('nobody');
  assert.ok(nobody, 'user nobody exists');
  const readable = spawnSync(nodeFor(nobody), ['-e', `require('node:fs').accessSync(${JSON.stringify(CLI)}, 4)`], { uid: nobody.uid, gid: nobody.gid, stdio: 'ignore' });
  if (readable.status !== 0) {
    t.skip(`user nobody cannot read ${CLI} (a repository under a private home directory)`);
    return;
  }
  const mailbox = await MailboxServer.start();
  const { file, queue } = serviceDirectory(relayMainCf('127.0.0.1:0', mailbox.port, ['mail_owner = mxscreen-no-such-user', 'mxscreen_shutdown_timeout = 1s']), nobody);
  const mx = startCli(['start', '-c', file], { uid: nobody.uid, gid: nobody.gid });
  try {
    const privileges = await mx.waitFor('PRIVILEGES');
    assert.deepEqual([privileges.uid, privileges.dropped, privileges.mailOwner], [nobody.uid, false, 'mxscreen-no-such-user']);
    await mx.waitFor('START');
    assert.deepEqual(processIds(mx.child.pid!).uids, [nobody.uid, nobody.uid, nobody.uid, nobody.uid]);
    const listen = mx.events.find((line) => line.event === 'LISTEN' && line.path === undefined);
    const client = await connectSmtp(Number(listen?.port));
    assert.equal(await sendOne(client, 'alice@sender.test', 'info@example.com', testMessage('nobody-1', 200)), true);
    client.close();
    await until('the message at the mailbox server', () => mailbox.received.length === 1, 10_000);
    assert.equal(statSync(join(queue, 'incoming')).uid, nobody.uid);
    assert.equal(await stop(mx), 0, mx.stderr());
  } finally {
    mx.child.kill('SIGKILL');
    await mailbox.close();
  }
});

const hasSetpriv = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).error === undefined;
const skipSetpriv = skip || (!hasSetpriv && !process.env.CI ? 'setpriv (util-linux) is not installed' : false);

test('with only what rules/systemd/mxscreen.service leaves root (CapabilityBoundingSet, NoNewPrivileges), start binds port < 1024, drops, and starts again on its own queue', { skip: skipSetpriv }, async () => {
  const owner = testOwner();
  const bounding = parseUnit(readFileSync(UNIT_FILE, 'utf8')).get('Service')?.get('CapabilityBoundingSet')?.at(-1) ?? '';
  const capabilities = bounding.split(/\s+/).map((name) => `+${name.replace(/^CAP_/, '').toLowerCase()}`);
  assert.ok(capabilities.length >= 1, bounding);
  // No CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH: root cannot look into the 0700 queue directory.
  const wrapper = ['setpriv', `--bounding-set=-all,${capabilities.join(',')}`, '--inh-caps=-all', '--no-new-privs'];
  const port = await freePrivilegedPort();
  const { file, queue } = serviceDirectory(relayMainCf(`127.0.0.1:${port}`, 9, [`mail_owner = ${TEST_OWNER}`, 'mxscreen_shutdown_timeout = 1s']), owner);
  for (const round of ['first start (creates the queue subdirectories)', 'second start (checks them)']) {
    const mx = startCli(['start', '-c', file], {}, wrapper);
    try {
      const privileges = await mx.waitFor('PRIVILEGES');
      assert.equal(privileges.dropped, true, round);
      await mx.waitFor('START');
      assert.equal(mx.events.find((line) => line.event === 'LISTEN' && line.path === undefined)?.port, port, round);
      assert.deepEqual(processIds(mx.child.pid!).uids, [owner.uid, owner.uid, owner.uid, owner.uid], round);
      assert.equal(statusField(mx.child.pid!, 'CapEff'), '0000000000000000', `${round}: no capability left`);
      assert.equal(statusField(mx.child.pid!, 'CapPrm'), '0000000000000000', `${round}: none to regain`);
      assert.equal(statusField(mx.child.pid!, 'NoNewPrivs'), '1', round);
      assert.equal(await stop(mx), 0, `${round}: ${mx.stderr()}`);
    } finally {
      mx.child.kill('SIGKILL');
    }
  }
  assert.equal(statSync(join(queue, 'incoming')).uid, owner.uid);
});

// ops/privileges.ts: the passwd parse, the root/mail_owner/queue_directory decision, and
// the order of the set*id calls, on an injected probe and injected process calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MxError } from '../../src/errors.js';
import { createLogger } from '../../src/ops/log.js';
import { lookupSystemUser, parsePasswdLine, planPrivileges, planQueueCommand, Privileges, type PrivilegeCalls, type PrivilegeProbe, type SystemUser } from '../../src/ops/privileges.js';

const OWNER: SystemUser = { name: 'mxscreen', uid: 998, gid: 997 };

function probe(uid: number, owners: Record<string, number>, users: readonly SystemUser[] = [OWNER]): PrivilegeProbe {
  return { uid, gid: uid, lookupUser: (name) => users.find((user) => user.name === name), ownerOf: (path) => owners[path] };
}

test('parsePasswdLine reads name, uid and primary gid, and refuses what is not a passwd line', () => {
  const cases: { input: string; want: SystemUser | undefined }[] = [
    { input: 'mxscreen:x:998:997::/var/spool/mxscreen:/usr/sbin/nologin', want: OWNER },
    { input: 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', want: { name: 'nobody', uid: 65534, gid: 65534 } },
    { input: '# comment', want: undefined },
    { input: 'short:x:1', want: undefined },
    { input: 'bad:x:abc:1::/:/bin/sh', want: undefined },
    { input: ':x:1:1::/:/bin/sh', want: undefined },
  ];
  for (const { input, want } of cases) assert.deepEqual(parsePasswdLine(input), want, input);
});

test('lookupSystemUser finds root through getent, and no user for an unknown or option-like name', () => {
  assert.deepEqual(lookupSystemUser('root'), { name: 'root', uid: 0, gid: 0 });
  assert.equal(lookupSystemUser('mxscreen-no-such-user'), undefined);
  assert.equal(lookupSystemUser('--help'), undefined);
  assert.equal(lookupSystemUser('0'), undefined); // getent passwd 0 would answer root: never by number
});

test('not root, or --no-privilege-drop: stay, mail_owner ignored, nothing looked up', () => {
  const untouched: PrivilegeProbe = { uid: 1000, gid: 1000, lookupUser: () => assert.fail('looked up'), ownerOf: () => assert.fail('stat') };
  assert.deepEqual(planPrivileges('mail_owner', 'mxscreen', '/q', untouched), { kind: 'stay', reason: 'not root', uid: 1000, gid: 1000, mailOwner: 'mxscreen' });
  const rootUntouched = { ...untouched, uid: 0, gid: 0 };
  assert.deepEqual(planPrivileges('stay', 'mxscreen', '/q', rootUntouched), { kind: 'stay', reason: 'asked', uid: 0, gid: 0, mailOwner: 'mxscreen' });
});

test('root with mail_owner owning the queue directory and its subdirectories: drop to mail_owner', () => {
  assert.deepEqual(planPrivileges('mail_owner', 'mxscreen', '/q', probe(0, { '/q': 998 })), { kind: 'drop', owner: OWNER, queueDirectory: '/q' });
});

test('root start-up errors say what is wrong, as postfix check would', () => {
  const cases: { name: string; mailOwner: string; owners: Record<string, number>; users?: SystemUser[]; want: RegExp }[] = [
    { name: 'unknown user', mailOwner: 'nosuch', owners: { '/q': 998 }, want: /^mail_owner nosuch: unknown user/ },
    { name: 'user ID 0', mailOwner: 'toor', owners: { '/q': 0 }, users: [{ name: 'toor', uid: 0, gid: 5 }], want: /^mail_owner toor: user has privileged user ID 0$/ },
    { name: 'group ID 0', mailOwner: 'wheelie', owners: { '/q': 7 }, users: [{ name: 'wheelie', uid: 7, gid: 0 }], want: /^mail_owner wheelie: user has privileged group ID 0$/ },
    { name: 'no queue directory', mailOwner: 'mxscreen', owners: {}, want: /^queue_directory \/q does not exist; create it owned by mail_owner mxscreen \(uid 998\)$/ },
    { name: 'queue directory owned by root', mailOwner: 'mxscreen', owners: { '/q': 0 }, want: /^queue_directory \/q is owned by uid 0, not by mail_owner mxscreen \(uid 998\); chown -R mxscreen: \/q$/ },
  ];
  for (const { name, mailOwner, owners, users, want } of cases) {
    assert.throws(
      () => planPrivileges('mail_owner', mailOwner, '/q', probe(0, owners, users)),
      (error: unknown) => error instanceof MxError && error.code === 'ERR_CONFIG' && want.test(error.message),
      name,
    );
  }
});

test('queue commands run by root become mail_owner only when it owns the queue', () => {
  assert.deepEqual(planQueueCommand('mxscreen', '/q', probe(0, { '/q': 998 })), { kind: 'drop', owner: OWNER, queueDirectory: '/q' });
  assert.deepEqual(planQueueCommand('mxscreen', '/q', probe(0, { '/q': 0 })), { kind: 'stay', reason: "queue not mail_owner's", uid: 0, gid: 0, mailOwner: 'mxscreen' });
  assert.equal(planQueueCommand('nosuch', '/q', probe(0, { '/q': 998 })).kind, 'stay');
  assert.equal(planQueueCommand('mxscreen', '/q', probe(1000, { '/q': 998 })).kind, 'stay');
});

/** Process calls that record their order and act like the kernel for a root process. */
function fakeCalls(options: { regainable?: boolean } = {}): PrivilegeCalls & { readonly log: string[] } {
  const ids = { uid: 0, euid: 0, gid: 0, egid: 0, groups: [0, 1, 2] };
  const log: string[] = [];
  return {
    log,
    setgroups: (groups) => (log.push(`setgroups ${groups.join(',')}`), (ids.groups = groups)),
    setegid: (gid) => (log.push(`setegid ${gid}`), (ids.egid = gid)),
    seteuid: (uid) => (log.push(`seteuid ${uid}`), (ids.euid = uid)),
    setgid: (gid) => {
      log.push(`setgid ${gid}`);
      if (ids.euid !== 0) throw new Error('EPERM');
      ids.gid = ids.egid = gid;
    },
    setuid: (uid) => {
      log.push(`setuid ${uid}`);
      if (ids.euid !== 0 && !options.regainable) throw new Error('EPERM');
      ids.uid = ids.euid = uid;
    },
    getuid: () => ids.uid,
    geteuid: () => ids.euid,
    getgid: () => ids.gid,
    getegid: () => ids.egid,
    getgroups: () => ids.groups,
  };
}

const DROP = { kind: 'drop', owner: OWNER, queueDirectory: '/q' } as const;

test('asOwner runs the start with mail_owner as effective user, then takes euid 0 back, also when the start fails', async () => {
  const calls = fakeCalls();
  const privileges = new Privileges(DROP, calls, () => undefined);
  const seen = await privileges.asOwner(async () => calls.geteuid());
  assert.equal(seen, 998);
  assert.deepEqual(calls.log, ['setgroups 997', 'setegid 997', 'seteuid 998', 'seteuid 0']);
  await assert.rejects(privileges.asOwner(async () => Promise.reject(new Error('stage failed'))), /stage failed/);
  assert.equal(calls.geteuid(), 0);
});

test('asOwner checks the queue subdirectories as mail_owner first: one owned by root stops the start', async () => {
  const calls = fakeCalls();
  const owners: Record<string, number> = { '/q/incoming': 998, '/q/deferred': 0 };
  let checkedAs: number | undefined;
  const ownerOf = (path: string) => ((checkedAs = calls.geteuid()), owners[path]);
  let started = false;
  await assert.rejects(
    new Privileges(DROP, calls, ownerOf).asOwner(async () => (started = true)),
    (error: unknown) => error instanceof MxError && /^queue_directory \/q\/deferred is owned by uid 0, not by mail_owner mxscreen \(uid 998\); chown -R mxscreen: \/q$/.test(error.message),
  );
  assert.equal(started, false);
  assert.equal(checkedAs, 998, 'checked with mail_owner as effective user');
  assert.equal(calls.geteuid(), 0);
});

test('drop: setgroups, then setgid, then setuid; checks the IDs and that root cannot come back', () => {
  const calls = fakeCalls();
  const lines: string[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
  new Privileges(DROP, calls).drop(log);
  assert.deepEqual(calls.log, ['setgroups 997', 'setgid 997', 'setuid 998', 'setuid 0']);
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(entry.event, 'PRIVILEGES');
  assert.deepEqual([entry.user, entry.uid, entry.gid, entry.dropped], ['mxscreen', 998, 997, true]);
});

test('drop refuses to go on when root could be regained', () => {
  const log = createLogger({ destination: { write: () => undefined } });
  assert.throws(() => new Privileges(DROP, fakeCalls({ regainable: true })).drop(log), /root privileges could be regained/);
});

test('a stay plan calls nothing and logs the user it runs as', () => {
  const calls = fakeCalls();
  const lines: string[] = [];
  const log = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
  new Privileges({ kind: 'stay', reason: 'not root', uid: 65534, gid: 65534, mailOwner: 'mxscreen' }, calls).drop(log);
  assert.deepEqual(calls.log, []);
  const entry = JSON.parse(lines[0]!) as { event: string; uid: number; dropped: boolean; msg: string };
  assert.equal(entry.event, 'PRIVILEGES');
  assert.equal(entry.uid, 65534);
  assert.equal(entry.dropped, false);
  assert.match(entry.msg, /not started as root, mail_owner mxscreen ignored/);
});

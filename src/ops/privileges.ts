/*
 * privileges — the user mxscreen runs as: root starts it, mail_owner (postconf(5)) works.
 *
 * Decides: started as root, `mxscreen start` resolves mail_owner (getent(1), so NSS users
 * count; /etc/passwd without getent; group = its primary group), refuses user or group ID 0
 * and a queue_directory (or existing subdirectory) mail_owner does not own, as `postfix
 * check` would; runs the stages' start with mail_owner's effective IDs, so their files are
 * its own; binds as root; then drops for good (setgroups([gid]), setgid, setuid) and checks
 * that root cannot come back. Any other user stays itself, mail_owner ignored. One
 * PRIVILEGES log line. Queue commands run by root become mail_owner when it owns the queue.
 * Leaves to others: the order of start-up (main.ts), what the stages write (queue/, policy/).
 * Bugs: a file that queue work already under way creates during the bind (a few ms, between
 * the stages' start and the drop) is root's; no capability survives the drop.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MxError } from '../errors.js';
import type { Logger } from './log.js';
import { CONTROL_DIRECTORY, QUEUE_NAMES, STATE_DIRECTORY } from '../queue/spool.js';
import { RECYCLE_DIRECTORY } from '../queue/file-pool.js';

/** A user from the passwd database: name, user ID, primary group ID. */
export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** What `mxscreen start` does about privileges: drop to mail_owner when root, or stay who it is (--no-privilege-drop). */
export type PrivilegeMode = 'mail_owner' | 'stay';

/** Why a plan stays: not started as root, --no-privilege-drop, or (queue commands) a queue that is not mail_owner's. */
export type StayReason = 'not root' | 'asked' | 'queue not mail_owner\'s';

/** The decision: drop from root to `owner`, or stay the user it was started as (and why). */
export type PrivilegePlan =
  | { readonly kind: 'drop'; readonly owner: SystemUser; readonly queueDirectory: string }
  | { readonly kind: 'stay'; readonly reason: StayReason; readonly uid: number; readonly gid: number; readonly mailOwner: string };

/** What planPrivileges reads from the system; injected by unit tests. */
export interface PrivilegeProbe {
  /** The real user ID of this process. */
  readonly uid: number;
  readonly gid: number;
  /** The passwd entry of `name`, undefined when there is none. */
  lookupUser(name: string): SystemUser | undefined;
  /** The owner's uid of `path`, undefined when it does not exist. */
  ownerOf(path: string): number | undefined;
}

/** The queue subdirectories Spool.open creates (queue/spool.ts, queue/file-pool.ts). */
const QUEUE_SUBDIRECTORIES: readonly string[] = [...QUEUE_NAMES, STATE_DIRECTORY, CONTROL_DIRECTORY, RECYCLE_DIRECTORY];

/** A portable user name (useradd(8)'s rule, plus the `$` of machine accounts); never an option or a number. */
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

/**
 * One passwd(5) line `name:password:uid:gid:gecos:home:shell` → SystemUser; undefined
 * when the line is not one (comment, too few fields, IDs that are not numbers).
 */
export function parsePasswdLine(line: string): SystemUser | undefined {
  const fields = line.trim().split(':');
  if (fields.length < 4 || !fields[0]) return undefined;
  const [name, , uidText, gidText] = fields as [string, string, string, string];
  if (!/^\d+$/.test(uidText) || !/^\d+$/.test(gidText)) return undefined;
  return { name, uid: Number(uidText), gid: Number(gidText) };
}

/**
 * The passwd entry of `name` from getent(1) (NSS: files, LDAP, systemd-userdb), or from
 * /etc/passwd when getent is not installed. Undefined when the user does not exist.
 * Throws MxError ERR_CONFIG when getent fails in another way.
 */
export function lookupSystemUser(name: string): SystemUser | undefined {
  if (!USER_NAME.test(name)) return undefined;
  let output: string;
  try {
    output = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { status?: number | null };
    if (failure.code === 'ENOENT') return fromPasswdFile(name, '/etc/passwd');
    if (failure.status === 2) return undefined; // getent: key not found
    throw new MxError('ERR_CONFIG', `mail_owner ${name}: cannot look up the user with getent: ${failure.message}`, { cause: error });
  }
  const user = parsePasswdLine(output.split('\n')[0] ?? '');
  return user?.name === name ? user : undefined;
}

function fromPasswdFile(name: string, file: string): SystemUser | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const user = parsePasswdLine(line);
    if (user?.name === name) return user;
  }
  return undefined;
}

/** The live system: this process's IDs, getent, stat. */
export const SYSTEM_PROBE: PrivilegeProbe = {
  uid: process.getuid?.() ?? -1,
  gid: process.getgid?.() ?? -1,
  lookupUser: lookupSystemUser,
  ownerOf: (path) => {
    try {
      return statSync(path).uid;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  },
};

/**
 * Decides what to do about privileges (pure but for `probe`). `mode` 'stay' or a non-root
 * start: stay. Root: resolve `mailOwner` and check that it owns `queueDirectory` (absolute;
 * its subdirectories are checked by Privileges.asOwner, as mail_owner: root without
 * CAP_DAC_READ_SEARCH cannot look into a 0700 directory). Throws MxError ERR_CONFIG with
 * the reason: unknown user, user or group ID 0, queue directory missing or owned by another uid.
 */
export function planPrivileges(mode: PrivilegeMode, mailOwner: string, queueDirectory: string, probe: PrivilegeProbe): PrivilegePlan {
  if (mode === 'stay' || probe.uid !== 0) return { kind: 'stay', reason: mode === 'stay' ? 'asked' : 'not root', uid: probe.uid, gid: probe.gid, mailOwner };
  const owner = probe.lookupUser(mailOwner);
  if (!owner) throw new MxError('ERR_CONFIG', `mail_owner ${mailOwner}: unknown user; create it (README "Install as a service") or set mail_owner in main.cf`);
  if (owner.uid === 0) throw new MxError('ERR_CONFIG', `mail_owner ${mailOwner}: user has privileged user ID 0`);
  if (owner.gid === 0) throw new MxError('ERR_CONFIG', `mail_owner ${mailOwner}: user has privileged group ID 0`);
  const uid = probe.ownerOf(queueDirectory);
  if (uid === undefined) throw new MxError('ERR_CONFIG', `queue_directory ${queueDirectory} does not exist; create it owned by mail_owner ${owner.name} (uid ${owner.uid})`);
  checkOwner(queueDirectory, uid, owner, queueDirectory);
  return { kind: 'drop', owner, queueDirectory };
}

/**
 * Checks that every existing queue subdirectory (incoming, active, deferred, hold, corrupt,
 * state, control, recycle) is `owner`'s. Throws MxError ERR_CONFIG naming the first that is not.
 */
export function checkQueueSubdirectories(queueDirectory: string, owner: SystemUser, ownerOf: PrivilegeProbe['ownerOf']): void {
  for (const name of QUEUE_SUBDIRECTORIES) {
    const path = join(queueDirectory, name);
    const uid = ownerOf(path);
    if (uid !== undefined) checkOwner(path, uid, owner, queueDirectory);
  }
}

function checkOwner(path: string, uid: number, owner: SystemUser, queueDirectory: string): void {
  if (uid === owner.uid) return;
  throw new MxError('ERR_CONFIG', `queue_directory ${path} is owned by uid ${uid}, not by mail_owner ${owner.name} (uid ${owner.uid}); chown -R ${owner.name}: ${queueDirectory}`);
}

/** The process calls the drop makes; injected by unit tests. */
export interface PrivilegeCalls {
  setgroups(groups: number[]): void;
  setegid(gid: number): void;
  seteuid(uid: number): void;
  setgid(gid: number): void;
  setuid(uid: number): void;
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  getegid(): number;
  getgroups(): number[];
}

const PROCESS_CALLS: PrivilegeCalls = {
  setgroups: (groups) => process.setgroups!(groups),
  setegid: (gid) => process.setegid!(gid),
  seteuid: (uid) => process.seteuid!(uid),
  setgid: (gid) => process.setgid!(gid),
  setuid: (uid) => process.setuid!(uid),
  getuid: () => process.getuid!(),
  geteuid: () => process.geteuid!(),
  getgid: () => process.getgid!(),
  getegid: () => process.getegid!(),
  getgroups: () => process.getgroups!(),
};

/** Carries out a PrivilegePlan around start-up (main.ts): asOwner → bind → drop. */
export class Privileges {
  readonly plan: PrivilegePlan;
  readonly #calls: PrivilegeCalls;
  readonly #ownerOf: PrivilegeProbe['ownerOf'];

  constructor(plan: PrivilegePlan, calls: PrivilegeCalls = PROCESS_CALLS, ownerOf: PrivilegeProbe['ownerOf'] = SYSTEM_PROBE.ownerOf) {
    this.plan = plan;
    this.#calls = calls;
    this.#ownerOf = ownerOf;
  }

  /** planPrivileges on the live system; throws MxError ERR_CONFIG (see there). */
  static prepare(mode: PrivilegeMode, mailOwner: string, queueDirectory: string): Privileges {
    return new Privileges(planPrivileges(mode, mailOwner, queueDirectory, SYSTEM_PROBE));
  }

  /**
   * With mail_owner's effective user and group IDs (and no supplementary groups): checks
   * the queue subdirectories (checkQueueSubdirectories), then runs `start`, so every file
   * and directory it creates is mail_owner's; then takes the effective user ID 0 back
   * (binding port 25 needs it). A stay plan just runs `start`. Throws what those throw.
   */
  async asOwner<T>(start: () => Promise<T>): Promise<T> {
    if (this.plan.kind !== 'drop') return start();
    const { owner, queueDirectory } = this.plan;
    const calls = this.#calls;
    switchIds(owner, () => {
      calls.setgroups([owner.gid]);
      calls.setegid(owner.gid);
      calls.seteuid(owner.uid);
    });
    try {
      checkQueueSubdirectories(queueDirectory, owner, this.#ownerOf);
      return await start();
    } finally {
      calls.seteuid(0);
    }
  }

  /**
   * After the sockets are bound: setgroups([gid]), setgid(gid), setuid(uid), in that order
   * (each later call needs the privilege the earlier ones keep); then checks that every ID
   * is mail_owner's and that setuid(0) fails. Logs one PRIVILEGES line, for a stay plan too.
   * Throws MxError ERR_CONFIG when the IDs are not what they should be (never runs on as root).
   */
  drop(log: Logger): void {
    const plan = this.plan;
    switch (plan.kind) {
      case 'stay': {
        const why = stayText(plan.reason);
        log.info({ event: 'PRIVILEGES', uid: plan.uid, gid: plan.gid, mailOwner: plan.mailOwner, dropped: false }, `running as uid ${plan.uid} (gid ${plan.gid}): ${why}, mail_owner ${plan.mailOwner} ignored`);
        return;
      }
      case 'drop': {
        const { name, uid, gid } = plan.owner;
        this.#become(plan.owner);
        log.info({ event: 'PRIVILEGES', user: name, uid, gid, dropped: true }, `running as mail_owner ${name} (uid ${uid}, gid ${gid})`);
        return;
      }
      default: {
        const never: never = plan;
        throw new Error(`unknown privilege plan ${String(never)}`);
      }
    }
  }

  /** drop() without the log line (queue commands, whose stdout is their answer). */
  dropQuietly(): void {
    if (this.plan.kind === 'drop') this.#become(this.plan.owner);
  }

  #become({ name, uid, gid }: SystemUser): void {
    const calls = this.#calls;
    switchIds({ name, uid, gid }, () => {
      calls.setgroups([gid]);
      calls.setgid(gid);
      calls.setuid(uid);
    });
    const ids = [calls.getuid(), calls.geteuid(), calls.getgid(), calls.getegid()];
    const groups = calls.getgroups().filter((group) => group !== gid);
    if (ids.join() !== [uid, uid, gid, gid].join() || groups.length > 0) {
      throw new MxError('ERR_CONFIG', `mail_owner ${name}: dropping privileges left uid/euid/gid/egid ${ids.join('/')} and groups ${groups.join(',') || '-'}`);
    }
    let regained = true;
    try {
      calls.setuid(0);
    } catch {
      regained = false;
    }
    if (regained) throw new MxError('ERR_CONFIG', `mail_owner ${name}: root privileges could be regained after the drop`);
  }
}

function stayText(reason: StayReason): string {
  switch (reason) {
    case 'not root':
      return 'not started as root';
    case 'asked':
      return '--no-privilege-drop';
    case "queue not mail_owner's":
      return 'queue_directory is not mail_owner\'s';
    default: {
      const never: never = reason;
      throw new Error(`unknown reason ${String(never)}`);
    }
  }
}

/** Runs set*id calls; a failure (EPERM: CAP_SETUID or CAP_SETGID missing) becomes MxError ERR_CONFIG naming mail_owner. */
function switchIds(owner: SystemUser, change: () => void): void {
  try {
    change();
  } catch (error) {
    throw new MxError('ERR_CONFIG', `mail_owner ${owner.name}: cannot change to uid ${owner.uid}, gid ${owner.gid}: ${(error as Error).message} (a root without CAP_SETUID and CAP_SETGID?)`, { cause: error });
  }
}

/**
 * `mxscreen queue …` run by root (postsuper(1) style): the plan to become mail_owner when
 * mail_owner exists and owns `queueDirectory`, so the requests it leaves in control/ and
 * the files it repairs stay the running filter's; otherwise to stay root (a filter started
 * with --no-privilege-drop, or no queue yet). Never throws for a missing user or directory.
 */
export function planQueueCommand(mailOwner: string, queueDirectory: string, probe: PrivilegeProbe): PrivilegePlan {
  const stay: PrivilegePlan = { kind: 'stay', reason: probe.uid === 0 ? 'queue not mail_owner\'s' : 'not root', uid: probe.uid, gid: probe.gid, mailOwner };
  if (probe.uid !== 0) return stay;
  const owner = probe.lookupUser(mailOwner);
  if (!owner || owner.uid === 0 || owner.gid === 0 || probe.ownerOf(queueDirectory) !== owner.uid) return stay;
  return { kind: 'drop', owner, queueDirectory };
}

/*
 * postfix-peer — a private Postfix instance for the benchmark's peer mode: the same
 * relay job as mxscreen's bench configuration, so one run prints mxscreen/Postfix.
 *
 * Decides: a temporary directory holds its own config_directory (main.cf, master.cf),
 * queue_directory and data_directory (owned by mail_owner = postfix), started with
 * `postfix -c DIR start` and stopped with `postfix -c DIR stop`; the system instance
 * is never touched. The configuration is the relay of bench/smtp-source.ts: smtpd only
 * on 127.0.0.1:PORT (no postscreen, no chroot), mynetworks = 127.0.0.0/8,
 * relay_domains = example.com sent to the sink by transport_maps, no local delivery, no
 * TLS, the log in a file of the instance (maillog_file, postlogd), fsync as always.
 * Leaves to others: the load and the figures (the scenario).
 * Bugs: needs root (master binds and drops to mail_owner) and the Debian postfix package;
 * `available()` says why not otherwise.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const POSTFIX = '/usr/sbin/postfix';

/** Why a Postfix peer cannot run here, or undefined when it can. */
export function peerUnavailable(): string | undefined {
  if (!existsSync(POSTFIX)) return `${POSTFIX} is not installed (Debian package postfix)`;
  if (process.getuid?.() !== 0) return 'the Postfix peer needs root (its master drops to mail_owner = postfix)';
  return undefined;
}

/** The uid and gid of the postfix user (from /etc/passwd). */
function postfixOwner(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'latin1').split('\n').find((entry) => entry.startsWith('postfix:'));
  if (!line) throw new Error('no postfix user in /etc/passwd');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The master.cf services an smtpd-only relay needs; chroot off everywhere. */
const MASTER_SERVICES = [
  'cleanup   unix  n - n - 0 cleanup',
  'qmgr      unix  n - n 300 1 qmgr',
  'rewrite   unix  - - n - - trivial-rewrite',
  'bounce    unix  - - n - 0 bounce',
  'defer     unix  - - n - 0 bounce',
  'trace     unix  - - n - 0 bounce',
  'verify    unix  - - n - 1 verify',
  'flush     unix  n - n 1000? 0 flush',
  'proxymap  unix  - - n - - proxymap',
  'smtp      unix  - - n - - smtp',
  'showq     unix  n - n - - showq',
  'error     unix  - - n - - error',
  'retry     unix  - - n - - error',
  'discard   unix  - - n - - discard',
  'anvil     unix  - - n - 1 anvil',
  'scache    unix  - - n - 1 scache',
  'postlog   unix-dgram n - n - 1 postlogd',
];

export class PostfixPeer {
  readonly port: number;
  readonly #directory: string;

  private constructor(directory: string, port: number) {
    this.#directory = directory;
    this.port = port;
  }

  /** The config directory (for `postfix -c`). */
  get configDirectory(): string {
    return join(this.#directory, 'etc');
  }

  /** The master process id (from the instance's pid/master.pid). */
  masterPid(): number {
    return Number(readFileSync(join(this.#directory, 'spool', 'pid', 'master.pid'), 'latin1').trim());
  }

  /** The instance's log (maillog_file). */
  log(): string {
    try {
      return readFileSync(join(this.#directory, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Writes the instance under a new temporary directory and starts it: smtpd on
   * 127.0.0.1:`port`, example.com relayed to 127.0.0.1:`sinkPort`; `extra` main.cf lines
   * are appended. Rejects with postfix's output when start fails.
   */
  static async start(port: number, sinkPort: number, extra: readonly string[] = []): Promise<PostfixPeer> {
    const directory = mkdtempSync(join(tmpdir(), 'mxscreen-postfix-peer-'));
    // mail_owner must traverse it (mkdtemp makes it 0700).
    chmodSync(directory, 0o755);
    const etc = join(directory, 'etc');
    mkdirSync(etc);
    mkdirSync(join(directory, 'spool'));
    mkdirSync(join(directory, 'data'));
    const owner = postfixOwner();
    chownSync(join(directory, 'data'), owner.uid, owner.gid);
    writeFileSync(
      join(etc, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${join(directory, 'spool')}`,
        `data_directory = ${join(directory, 'data')}`,
        'mail_owner = postfix',
        'myhostname = mx-peer.relay.test',
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'mynetworks = 127.0.0.0/8',
        'mydestination =',
        'local_recipient_maps =',
        'alias_maps =',
        'alias_database =',
        'biff = no',
        'relay_domains = example.com',
        `transport_maps = inline:{ example.com=smtp:[127.0.0.1]:${sinkPort} }`,
        'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
        'smtpd_tls_security_level = none',
        'smtp_tls_security_level = none',
        `maillog_file_prefixes = ${directory}`,
        `maillog_file = ${join(directory, 'maillog')}`,
        ...extra,
        '',
      ].join('\n'),
    );
    writeFileSync(join(etc, 'master.cf'), [`127.0.0.1:${port} inet n - n - - smtpd`, ...MASTER_SERVICES, ''].join('\n'));
    const peer = new PostfixPeer(directory, port);
    try {
      await run(POSTFIX, ['-c', etc, 'start'], { timeout: 30_000 });
    } catch (error) {
      const log = peer.log();
      rmSync(directory, { recursive: true, force: true });
      throw new Error(`postfix -c ${etc} start failed (${userInfo().username}): ${String(error)}\n${log.slice(-2000)}`);
    }
    return peer;
  }

  /** Stops the instance (postfix stop, bounded) and removes its directory. */
  async stop(): Promise<void> {
    try {
      await run(POSTFIX, ['-c', this.configDirectory, 'stop'], { timeout: 30_000 });
    } finally {
      rmSync(this.#directory, { recursive: true, force: true });
    }
  }
}

/*
 * redis-server — a real Redis (the Debian package's /usr/bin/redis-server) on a loopback
 * port for the shared verdict cache tests, started and stopped by the test.
 *
 * Decides: the server runs with `--save '' --appendonly no` (nothing written to disk),
 * `--bind 127.0.0.1`, on a port picked free, with DEBUG allowed from loopback (DEBUG SLEEP
 * makes it slow); start() waits until it answers PING; kill() is SIGKILL (a crash), restart()
 * brings it back on the same port, empty. redisSkip() says why a test must skip: only when the
 * binary is absent and CI is not set; under CI a missing binary fails the test instead.
 * Leaves to others: what the test stores and expects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];

/** The redis-server binary, if installed. */
export function redisServerBinary(): string | undefined {
  return CANDIDATES.find((path) => existsSync(path));
}

/** node:test's `skip` option: a message when redis-server is absent and CI is not set, else false (under CI the test runs and fails). */
export function redisSkip(): string | false {
  if (redisServerBinary() !== undefined || process.env.CI) return false;
  return 'redis-server is not installed (apt-get install redis-server); skipped outside CI';
}

/** A free loopback TCP port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** True once something on `port` answers `PING` with `+PONG` (or `-NOAUTH` with --requirepass). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) done(text.startsWith('+PONG') || text.startsWith('-NOAUTH'));
    });
  });
}

export class RedisServer {
  #child: ChildProcess | undefined;
  readonly #args: readonly string[];

  private constructor(
    readonly port: number,
    args: readonly string[],
  ) {
    this.#args = args;
  }

  /** `redis://127.0.0.1:PORT/0`, or with `user:password@` when given. */
  url(credentials = ''): string {
    return `redis://${credentials}127.0.0.1:${this.port}/0`;
  }

  /** Starts redis-server on a free port; `extra` arguments are appended (e.g. `--requirepass`). */
  static async start(extra: readonly string[] = []): Promise<RedisServer> {
    const binary = redisServerBinary();
    if (binary === undefined) throw new Error('redis-server is not installed (apt-get install redis-server)');
    const port = await freePort();
    const server = new RedisServer(port, ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', '--enable-debug-command', 'local', ...extra]);
    await server.#spawn(binary);
    return server;
  }

  async #spawn(binary: string): Promise<void> {
    const child = spawn(binary, this.#args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 5000;
    while (!(await pong(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${this.port}: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** SIGKILL, as a crash; resolves when the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts it again on the same port (empty: nothing was saved). */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn(redisServerBinary()!);
  }

  /** Stops it (SIGKILL: nothing to save). */
  stop(): Promise<void> {
    return this.kill();
  }
}

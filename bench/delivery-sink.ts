/*
 * delivery-sink — the mailbox server a benchmark's relay delivers to: Postfix's
 * smtp-sink(1) as a child process when installed (C, so it takes little of the CPU the
 * relay under test needs), else mxscreen's bundled Sink in this process.
 *
 * Decides: smtp-sink runs as `smtp-sink [-u postfix] -c 127.0.0.1:PORT 1000`; its
 * counter (`-c`, "sess=N quit=N mesg=N" lines ended by CR) is the count of messages
 * whose DATA completed. `lastAt` is performance.now() when the count last grew.
 * Leaves to others: what is sent (the scenarios).
 * Bugs: the smtp-sink port is found free by binding port 0 and closing it (a tiny race).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { Sink } from '../src/sink/sink.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export interface DeliverySink {
  readonly kind: 'smtp-sink' | 'bundled Sink';
  readonly port: number;
  /** Messages received so far. */
  count(): number;
  /** performance.now() of the last message received (0: none). */
  lastAt(): number;
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts smtp-sink when installed, else the bundled Sink; rejects when smtp-sink does not listen within 5 s. */
export async function startDeliverySink(): Promise<DeliverySink> {
  if (!existsSync(SMTP_SINK)) {
    let last = 0;
    const sink = await Sink.start({ listen: '127.0.0.1:0', onMessage: () => void (last = performance.now()) });
    return { kind: 'bundled Sink', port: sink.port, count: () => sink.count, lastAt: () => last, close: () => sink.close() };
  }
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'postfix'] : []), '-c', `127.0.0.1:${port}`, '1000'];
  const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let count = 0;
  let last = 0;
  let tail = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('latin1')).slice(-200);
    const counts = [...tail.matchAll(/mesg=(\d+)/g)];
    const seen = Number(counts.at(-1)?.[1] ?? count);
    if (seen > count) {
      count = seen;
      last = performance.now();
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Bounded: 100 tries of 50 ms for the port to accept.
  for (let attempt = 0; ; attempt += 1) {
    const open = await new Promise<boolean>((resolve) => {
      const probe = connect({ port, host: '127.0.0.1' }, () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (open) break;
    if (attempt >= 100) {
      child.kill('SIGKILL');
      throw new Error(`smtp-sink did not listen on 127.0.0.1:${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    kind: 'smtp-sink',
    port,
    count: () => count,
    lastAt: () => last,
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/*
 * mxscreen-process — `mxscreen start` as a child process, and a client that sends one
 * message per SMTP transaction, for the crash-safety test and the relay benchmark.
 *
 * Decides: the child runs `node dist/src/cli.js start --config FILE` with its JSON log on
 * a pipe; started() resolves with the SMTP port from its LISTEN line. sendMessages()
 * sends messages over one session and reports, per message, whether it got 250.
 * Leaves to others: what mxscreen does (src/), the mailbox server (fakes/mailbox-server.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { repositoryRoot } from '../fakes/repository-root.js';

export interface MxscreenProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

/**
 * main.cf of a relay on loopback: SMTP on `listen`, no metrics, no DNS use, mail for
 * example.com to the mailbox server on `mailboxPort`; `extra` lines are appended.
 */
export function relayMainCf(listen: string, mailboxPort: number, extra: readonly string[] = []): string {
  return [
    'myhostname = mx1.relay.test',
    `mxscreen_listen = ${listen}`,
    'mxscreen_metrics_listen =',
    'mxscreen_dns_servers = 127.0.0.1:9',
    'mynetworks = 127.0.0.0/8',
    'queue_directory = queue',
    'postscreen_greet_wait = 10ms',
    'relay_domains = example.com',
    `transport_maps = inline:{ example.com=smtp:[127.0.0.1]:${mailboxPort} }`,
    ...extra,
    '',
  ].join('\n');
}

/** Starts mxscreen on `configFile`; rejects when it exits first or after `timeoutMs`. */
export async function startMxscreenProcess(configFile: string, timeoutMs = 20_000): Promise<MxscreenProcess> {
  const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/src/cli.js'), 'start', '--config', configFile, '--no-privilege-drop'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mxscreen did not start within ${timeoutMs} ms`)), timeoutMs);
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { event?: string; port?: number; path?: string };
        if (entry.event === 'LISTEN' && entry.path === undefined && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not JSON: ignore
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mxscreen exited with ${code}`));
    });
  });
  return { child, port, exited };
}

/** One SMTP session from `localAddress` to mxscreen on `port`. */
export function connectSmtp(port: number, localAddress = '127.0.0.1'): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({ host: '127.0.0.1', port, localAddress, ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
    connection.once('error', reject);
    connection.connect(() => {
      connection.removeListener('error', reject);
      connection.on('error', () => undefined);
      resolve(connection);
    });
  });
}

/** Sends one message on `connection`; resolves true on 250, false on any failure. Never rejects. */
export function sendOne(connection: SMTPConnection, from: string, to: string, message: string): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      connection.send({ from, to: [to] }, message, (error) => resolve(!error));
    } catch {
      resolve(false);
    }
  });
}

/** A message of about `size` bytes whose Message-ID is `<id@sender.test>`. */
export function testMessage(id: string, size: number): string {
  const line = 'The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuvwxyz.\r\n';
  const body = line.repeat(Math.ceil(size / line.length)).slice(0, size);
  return `From: load@sender.test\r\nTo: info@example.com\r\nSubject: ${id}\r\nMessage-ID: <${id}@sender.test>\r\n\r\n${body}`;
}

/** The Message-ID of a received message body, or undefined. */
export function messageIdOf(body: Buffer): string | undefined {
  return /^Message-ID: <([^>]+)@sender\.test>/im.exec(body.subarray(0, 2048).toString('latin1'))?.[1];
}

// The whole chain on loopback for integration tests: an in-process DNS server serving
// DNSBL zones, a mailbox server (the sink), and mxscreen started on a main.cf written
// into a temporary directory, with its log lines captured as parsed JSON.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { startMxscreen, type Mxscreen } from '../../src/main.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { startDnsServer, type FakeDns } from '../fakes/dns-server.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import type { ReceivedMessage } from '../../src/sink/sink.js';

export const ZONE = 'zen.dnsbl.test';

export interface LogLine {
  readonly event?: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

/** Captured log lines with a way to wait for one. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  private waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  write(text: string): void {
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      const line = JSON.parse(raw) as LogLine;
      this.lines.push(line);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.match(line)) return true;
        waiter.resolve(line);
        return false;
      });
    }
  }

  events(event: string): LogLine[] {
    return this.lines.filter((line) => line.event === event);
  }

  /** Resolves with the first line (already seen or future) that matches; rejects after `timeoutMs`. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a log line')), timeoutMs);
      this.waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }
}

export interface Chain {
  readonly dns: FakeDns;
  readonly mailbox: MailboxServer;
  readonly directory: string;
  readonly configFile: string;
  mx: Mxscreen;
  log: LogCapture;
  /** The port mxscreen's SMTP listener is bound to. */
  readonly port: number;
  /** Stops mxscreen and starts it again on the same configuration and queue. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** main.cf lines every integration test starts from; `extra` lines override them. */
function mainCf(dnsPort: number, extra: readonly string[]): string {
  return [
    'myhostname = mx1.example.net',
    'mxscreen_listen = 127.0.0.1:0',
    // One process (the injected resolver reaches it); workers.test.ts sets mxscreen_workers itself.
    'mxscreen_workers = 1',
    'mxscreen_metrics_listen =',
    `mxscreen_dns_servers = 127.0.0.1:${dnsPort}`,
    'mynetworks = 127.0.0.1/32',
    'queue_directory = queue',
    'postscreen_greet_wait = 150ms',
    'postscreen_greet_action = enforce',
    `postscreen_dnsbl_sites = ${ZONE}*2`,
    'postscreen_dnsbl_action = drop',
    'postscreen_dnsbl_timeout = 1s',
    'relay_domains = hash:transport',
    'transport_maps = hash:transport',
    'relay_recipient_maps = hash:relay_recipients',
    // seed 001's relay control (Postfix's default ends in defer_unauth_destination: 454)
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    'message_size_limit = 20000',
    'minimal_backoff_time = 100ms',
    'maximal_backoff_time = 200ms',
    'queue_run_delay = 100ms',
    'mxscreen_shutdown_timeout = 1s',
    ...extra,
    '',
  ].join('\n');
}

/**
 * Starts DNS, mailbox and mxscreen. `extra` main.cf lines override the defaults;
 * `options.processMetrics` adds Node's process metrics to /metrics (off by default).
 */
export async function startChain(extra: readonly string[] = [], options: { readonly processMetrics?: boolean } = {}): Promise<Chain> {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-it-'));
  const dns = await startDnsServer();
  // RFC 5782 §5 test points, so the DNSBL self-test (dnsbl-health.ts) finds the zone healthy.
  dns.listDnsbl(ZONE, '127.0.0.2', ['127.0.0.2']);
  const mailbox = await MailboxServer.start();
  writeFileSync(join(directory, 'transport'), `example.com   smtp:[127.0.0.1]:${mailbox.port}\n`);
  writeFileSync(join(directory, 'relay_recipients'), 'info@example.com OK\njoe@example.com OK\n');
  const configFile = join(directory, 'main.cf');
  writeFileSync(configFile, mainCf(dns.port, extra));
  const start = async () => {
    const log = new LogCapture();
    const mx = await startMxscreen({
      configFile,
      resolver: createNodeResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 1000, tries: 1 }),
      logDestination: log,
      processMetrics: options.processMetrics ?? false,
    });
    return { mx, log };
  };
  let running = await start();
  const chain: Chain = {
    dns,
    mailbox,
    directory,
    configFile,
    mx: running.mx,
    log: running.log,
    get port() {
      return chain.mx.smtp[0].port;
    },
    async restart() {
      await chain.mx.stop();
      running = await start();
      chain.mx = running.mx;
      chain.log = running.log;
    },
    async close() {
      await chain.mx.stop();
      await mailbox.close();
      await dns.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
  return chain;
}

/** Opens an SMTP client session (nodemailer) from `localAddress`, after the greeting. */
export function openSession(port: number, localAddress: string): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const connection = new SMTPConnection({ host: '127.0.0.1', port, localAddress, ignoreTLS: true, greetingTimeout: 5000, socketTimeout: 5000 });
    connection.once('error', reject);
    connection.connect(() => {
      connection.off('error', reject);
      connection.on('error', () => undefined);
      resolve(connection);
    });
  });
}

/** Sends one raw message; resolves with nodemailer's info (accepted, rejected, response). */
export function sendRaw(connection: SMTPConnection, from: string, to: readonly string[], raw: string | Buffer): Promise<SMTPConnection.SentMessageInfo> {
  return new Promise((resolve, reject) => {
    connection.send({ from, to: [...to] }, raw, (error, info) => (error ? reject(error) : resolve(info)));
  });
}

/** Removes the first header (Received:, with its folded lines) from a message. */
export function withoutFirstHeader(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const match = /^[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*/.exec(text);
  return Buffer.from(text.slice(match ? match[0].length : 0), 'latin1');
}

/** Resolves with the first `count` messages the mailbox received; rejects after `timeoutMs`. */
export async function waitForMessages(mailbox: MailboxServer, count: number, timeoutMs = 5000): Promise<ReceivedMessage[]> {
  const deadline = Date.now() + timeoutMs;
  while (mailbox.received.length < count) {
    if (Date.now() > deadline) throw new Error(`mailbox received ${mailbox.received.length} of ${count} messages`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return mailbox.received.slice(0, count);
}

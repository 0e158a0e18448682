/*
 * transcript — SMTP transcript tests for the policy stage (Postfix smtpd_check.in/.ref style).
 *
 * Decides: a transcript is text, one step per line: `C: command` is sent, `P: a | b`
 * sends commands pipelined in one write, `S: reply` is the expected reply: its last line
 * must start with the given text (`S: 250` or the whole `S: 554 5.7.1 <x@y>: Relay access
 * denied`), `S~ regexp` must match it. `#` lines are comments. The policy
 * stage runs on loopback with a main.cf and table files written to a temporary
 * directory, the fake DNS server as its resolver, and a real Spool.
 * Leaves to others: what the transcripts say (the tests).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { systemClock, type Clock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/config.js';
import { createNodeResolver } from '../../src/dns/node-resolver.js';
import { createLogger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { Spool } from '../../src/queue/spool.js';
import type { ScreenVerdict } from '../../src/screen-verdict.js';
import { Smtpd, type SmtpdDeps } from '../../src/policy/smtpd.js';
import { smtpdSettingsFromConfig } from '../../src/policy/smtpd-settings.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import type { FakeDns } from '../fakes/dns-server.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { startHandoverServer } from '../fakes/handover-server.js';

const WAIT = 2000;

export type LogLine = Record<string, unknown> & { event?: string; msg?: string };

export interface PolicyUnderTest {
  readonly port: number;
  readonly directory: string;
  readonly smtpd: Smtpd;
  readonly spool: Spool;
  readonly logs: LogLine[];
  readonly metrics: Metrics;
  readonly queued: string[];
  close(): Promise<void>;
}

export interface PolicyOptions {
  /** main.cf lines (queue_directory and myhostname are added). */
  readonly mainCf: string;
  /** Table files relative to the config directory. */
  readonly files?: Readonly<Record<string, string>>;
  readonly dns?: FakeDns;
  readonly clock?: Clock;
  readonly verdict?: Partial<ScreenVerdict>;
  readonly deps?: Partial<SmtpdDeps>;
}


/** Starts the policy stage on 127.0.0.1:0 as `options` configure it. */
export async function startPolicy(options: PolicyOptions): Promise<PolicyUnderTest> {
  const directory = temporaryDirectory('mxscreen-transcript-');
  for (const [name, text] of Object.entries(options.files ?? {})) {
    mkdirSync(dirname(join(directory, name)), { recursive: true });
    writeFileSync(join(directory, name), text);
  }
  writeFileSync(join(directory, 'main.cf'), `myhostname = mx1.example.net\nqueue_directory = queue\n${options.mainCf}\n`);
  const config = loadConfig(join(directory, 'main.cf'));
  const settings = smtpdSettingsFromConfig(config);
  const logs: LogLine[] = [];
  const log = createLogger({ destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) } });
  const metrics = new Metrics();
  const clock = options.clock ?? systemClock;
  const spool = await Spool.open(join(directory, 'queue'), { log, metrics, clock });
  const queued: string[] = [];
  const smtpd = new Smtpd(settings, {
    queue: spool,
    clock,
    log,
    metrics,
    onQueued: (id) => queued.push(id),
    ...(options.dns ? { resolver: createNodeResolver({ servers: [options.dns.server], timeoutMs: 1000 }) } : {}),
    verifyCacheDirectory: join(directory, 'queue'),
    ...options.deps,
  });
  const server = await startHandoverServer((socket, verdict) => smtpd.accept(socket, verdict), { idPrefix: 'X', verdict: options.verdict });
  return {
    port: server.port,
    directory,
    smtpd,
    spool,
    logs,
    metrics,
    queued,
    async close() {
      await server.close();
      await smtpd.close(200);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Reads one reply and returns its last line. */
export async function lastLine(client: ScriptedClient): Promise<string> {
  const reply = await client.readReply(WAIT);
  return reply.lines[reply.lines.length - 1]!;
}

/**
 * Runs `script` (see file head) from source address `from` against the SMTP server on
 * `policy.port` (the policy stage, or a whole mxscreen); the greeting is read first. Fails the test with the step, expected and actual reply on a mismatch.
 */
export async function runTranscript(policy: Pick<PolicyUnderTest, 'port'>, script: string, from = '127.0.0.2'): Promise<void> {
  const client = await connectClient({ port: policy.port, localAddress: from });
  try {
    const greeting = await lastLine(client);
    assert.match(greeting, /^220 /, 'greeting');
    let step = 0;
    for (const raw of script.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      step++;
      if (line.startsWith('C: ') || line === 'C:') {
        client.send(`${line.slice(3)}\r\n`);
      } else if (line.startsWith('P: ')) {
        client.send(`${line.slice(3).split(' | ').join('\r\n')}\r\n`);
      } else if (line.startsWith('S: ')) {
        const want = line.slice(3);
        const got = await lastLine(client);
        assert.ok(got.startsWith(want), `step ${step}: expected "${want}", got "${got}"`);
      } else if (line.startsWith('S~ ')) {
        const want = new RegExp(line.slice(3));
        const got = await lastLine(client);
        assert.match(got, want, `step ${step}`);
      } else {
        throw new Error(`bad transcript line "${line}"`);
      }
    }
  } finally {
    await client.close();
  }
}

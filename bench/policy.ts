/*
 * bench/policy — the policy stage on loopback: time to the 220 greeting, RCPT TO latency
 * through seed 001's restriction lists (fake DNS on loopback: PTR, DNSBL, MX), and the
 * MIME header checks' streaming throughput and memory on a large message.
 *
 * Prints one JSON object. Every load is bounded in count (--sessions, --rcpts, --mb) and
 * in time (each wait 5 s). Run: node dist/bench/policy.js [--sessions 200] [--mb 25]
 * Leaves to others: the other stages' benches (bench/run.ts runs them all).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/clock.js';
import { loadConfig } from '../src/config/config.js';
import { createNodeResolver } from '../src/dns/node-resolver.js';
import { createLogger } from '../src/ops/log.js';
import { Metrics } from '../src/ops/metrics.js';
import { Spool } from '../src/queue/spool.js';
import { Smtpd } from '../src/policy/smtpd.js';
import { smtpdSettingsFromConfig } from '../src/policy/smtpd-settings.js';
import { inspectContent } from '../src/policy/content-inspection.js';
import { parseRegexpTable } from '../src/tables/regexp-table.js';
import { startDnsServer } from '../test/fakes/dns-server.js';
import { connectClient, type ScriptedClient } from '../test/fakes/scripted-client.js';
import { percentile } from './percentile.js';
import { startHandoverServer } from '../test/fakes/handover-server.js';

const { values } = parseArgs({ options: { sessions: { type: 'string' }, rcpts: { type: 'string' }, mb: { type: 'string' } } });
const SESSIONS = Math.min(2000, Number(values.sessions ?? 200));
const RCPTS = Math.min(100, Number(values.rcpts ?? 10));
const MB = Math.min(100, Number(values.mb ?? 25));
const WAIT = 5000;

async function last(client: ScriptedClient): Promise<string> {
  const reply = await client.readReply(WAIT);
  return reply.lines[reply.lines.length - 1]!;
}

async function sessionsBench(): Promise<Record<string, number>> {
  const dns = await startDnsServer();
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-bench-policy-'));
  try {
    dns.setMx('example.com', [{ exchange: 'mail.example.com', priority: 10 }]);
    dns.setPtr('127.0.0.2', ['client.example.org']);
    writeFileSync(join(directory, 'transport'), 'example.com smtp:[127.0.0.1]:2526\n');
    writeFileSync(join(directory, 'relay_recipients'), '@example.com OK\n');
    writeFileSync(join(directory, 'client_access.cidr'), '192.0.2.0/24 OK\n');
    mkdirSync(join(directory, 'queue'));
    writeFileSync(
      join(directory, 'main.cf'),
      [
        'myhostname = mx1.example.net',
        'queue_directory = queue',
        `mxscreen_dns_servers = ${dns.server}`,
        'mynetworks = 127.0.0.1/32',
        'relay_domains = hash:transport',
        'relay_recipient_maps = hash:relay_recipients',
        'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
        'smtpd_recipient_restrictions = reject_unauth_pipelining, reject_non_fqdn_recipient, reject_unknown_recipient_domain,',
        '  permit_mynetworks, check_client_access cidr:client_access.cidr, reject_unknown_reverse_client_hostname,',
        '  reject_rbl_client zen.dnsbl.test=127.0.0.10, reject_rbl_client zen.dnsbl.test, reject_unlisted_recipient, permit',
      ].join('\n'),
    );
    const config = loadConfig(join(directory, 'main.cf'));
    const log = createLogger({ level: 'warn' });
    const metrics = new Metrics();
    const spool = await Spool.open(join(directory, 'queue'), { log, metrics, clock: systemClock });
    const smtpd = new Smtpd(smtpdSettingsFromConfig(config), { queue: spool, clock: systemClock, log, metrics, resolver: createNodeResolver({ servers: [dns.server], timeoutMs: 1000 }) });
    const server = await startHandoverServer((socket, verdict) => smtpd.accept(socket, verdict), { idPrefix: 'B', verdict: { outcome: 'pass-old' } });
    const port = server.port;
    const greet: number[] = [];
    const rcpt: number[] = [];
    const started = performance.now();
    for (let i = 0; i < SESSIONS; i++) {
      const t0 = performance.now();
      const client = await connectClient({ port, localAddress: '127.0.0.2' });
      await last(client);
      greet.push(performance.now() - t0);
      client.send('EHLO client.example.org\r\n');
      await last(client);
      client.send('MAIL FROM:<a@sender.example>\r\n');
      await last(client);
      for (let r = 0; r < RCPTS; r++) {
        const t1 = performance.now();
        client.send(`RCPT TO:<user${r}@example.com>\r\n`);
        const line = await last(client);
        if (!line.startsWith('250')) throw new Error(`unexpected ${line}`);
        rcpt.push(performance.now() - t1);
      }
      client.send('QUIT\r\n');
      await client.close();
    }
    const seconds = (performance.now() - started) / 1000;
    await server.close();
    await smtpd.close(500);
    greet.sort((a, b) => a - b);
    rcpt.sort((a, b) => a - b);
    return {
      sessions: SESSIONS,
      greeting_ms_median: Number(percentile(greet, 50).toFixed(3)),
      greeting_ms_p99: Number(percentile(greet, 99).toFixed(3)),
      rcpt_ms_median: Number(percentile(rcpt, 50).toFixed(3)),
      rcpt_ms_p99: Number(percentile(rcpt, 99).toFixed(3)),
      sessions_per_second: Number((SESSIONS / seconds).toFixed(1)),
    };
  } finally {
    await dns.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** A MB-megabyte multipart message produced chunk by chunk (never whole in memory). */
function* largeMessage(mb: number): Generator<Buffer> {
  yield Buffer.from('From: a@b.example\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n');
  const line = Buffer.from(`${'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw'.repeat(1)}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n`);
  const perPart = Math.ceil((1024 * 1024) / line.length);
  for (let part = 0; part < mb; part++) {
    yield Buffer.from(`--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''report-${part}.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n`);
    for (let i = 0; i < perPart; i += 64) yield Buffer.concat(Array.from({ length: 64 }, () => line));
  }
  yield Buffer.from('--B--\r\n');
}

async function mimeBench(): Promise<Record<string, number>> {
  const rules = parseRegexpTable('pcre:mime_header_checks', 'pcre', '/^Content-(Disposition|Type).*name\\s*=\\s*"?([^";]*\\.(bat|com|exe|jar|pif|scr|swf))"?\\s*(;|$)/ REJECT bad\n', 'bench');
  const log = createLogger({ level: 'warn' });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  const started = performance.now();
  const inspection = inspectContent(Readable.from(largeMessage(MB)), { tables: { header_checks: [], mime_header_checks: [rules.table], nested_header_checks: [] }, blockedTypes: [] }, log);
  let bytes = 0;
  let chunks = 0;
  for await (const chunk of inspection.output) {
    bytes += (chunk as Buffer).length;
    if (++chunks % 256 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    message_mb: MB,
    verdict_accept: inspection.verdict().kind === 'accept' ? 1 : 0,
    mime_mb_per_second: Number((bytes / 1024 / 1024 / seconds).toFixed(1)),
    heap_growth_mb: Number(((heapPeak - heapBefore) / 1024 / 1024).toFixed(1)),
  };
}

const result = { bench: 'policy', ...(await sessionsBench()), ...(await mimeBench()) };
process.stdout.write(`${JSON.stringify(result)}\n`);

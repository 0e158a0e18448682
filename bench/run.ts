/*
 * bench/run — `npm run bench`: runs every benchmark scenario, one after the other, each
 * in its own process, and prints their JSON reports as one JSON object.
 *
 * Decides: the scenarios and their order (SCENARIOS), and that each runs alone on the
 * machine (2 cores: a scenario's load generator and mxscreen share them) with a time
 * bound; a scenario that fails or overruns is reported as such and the others still run.
 * Leaves to others: what each scenario measures (the head of each bench/<name>.ts).
 * Options: --only NAME[,NAME…]   --runs N (1; with N > 1 every figure is the median)
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repositoryRoot } from '../test/fakes/repository-root.js';

/** name, what it answers, time bound in seconds. */
const SCENARIOS = [
  { name: 'mixed-load', about: 'clean, DNSBL-listed and pregreet clients, then mail: connections/s (with its closed-loop bound), messages/s, latency, peak RSS', limitS: 300 },
  { name: 'screen', about: 'issue 3: 10,000 connections in the greet wait (RSS), PASS OLD time to 220 at 1,000/s, DNSBL burst through the DNS server and the screener', limitS: 300 },
  { name: 'screen-redis', file: 'screen', args: ['--parts', 'pass-old-redis,pass-old-redis-down'], about: 'issue 11: PASS OLD time to 220 at 1,000/s with the verdict cache shared on a real redis-server (mx1 passes, mx2 measured), and with Redis killed', limitS: 300 },
  { name: 'policy', about: 'issue 4: time to 220, RCPT through seed 001 restrictions, MIME header checks on 25 MB', limitS: 300 },
  { name: 'relay-throughput', about: 'issue 5: 2,000 x 10 KiB over 50 sessions from mynetworks (screen skipped), accepted-and-delivered messages/s, end of DATA → 250 latency', limitS: 300 },
  { name: 'smtp-source', about: 'issue 12: Postfix smtp-source -s 50 -m 2000 -l 10240 from mynetworks to smtp-sink: msg/s and CPU ms/msg of mxscreen (at mxscreen_workers 1, 2, all when it exists) beside a private Postfix instance, and the ratio', limitS: 600 },
  { name: 'burst', about: 'issue 12: 1,000 / 5,000 / 10,000 new clients at once, each from its own 127.x.y.z: timeouts, errors, conn/s, RSS growth, listen-queue overflows', limitS: 600 },
  { name: 'queue-100k', about: 'issue 5: 100,000 messages in deferred/: start-up scan, a queue run rescanning deferred/, RSS', limitS: 600 },
] as const;

const { values } = parseArgs({ options: { only: { type: 'string' }, runs: { type: 'string', default: '1' } } });
const only = values.only?.split(',').map((name) => name.trim());
const runs = Math.max(1, Math.min(9, Number(values.runs) || 1));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Runs dist/bench/NAME.js; resolves its JSON report, or an error record. */
function runScenario(name: string, limitS: number, args: readonly string[] = []): Promise<Json> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/bench', `${name}.js`), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitS * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(output.slice(output.indexOf('{'))) as Json);
      } catch {
        resolve({ error: `exited ${signal ?? code}`, output: output.slice(-2000) });
      }
    });
  });
}

/** Median of numbers at the same path in every report; other values from the first. */
function median(reports: readonly Json[]): Json {
  const first = reports[0];
  if (typeof first === 'number') {
    const sorted = reports.filter((r): r is number => typeof r === 'number').sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? first;
  }
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(first)) {
      out[key] = median(reports.map((r) => (r && typeof r === 'object' && !Array.isArray(r) ? (r[key] ?? null) : null)));
    }
    return out;
  }
  return first ?? null;
}

const results: { [name: string]: Json } = {};
for (const scenario of SCENARIOS) {
  if (only && !only.includes(scenario.name)) continue;
  process.stderr.write(`bench: ${scenario.name} (${scenario.about})${runs > 1 ? `, ${runs} runs` : ''}\n`);
  const reports: Json[] = [];
  for (let run = 0; run < runs; run += 1) reports.push(await runScenario('file' in scenario ? scenario.file : scenario.name, scenario.limitS, 'args' in scenario ? scenario.args : []));
  results[scenario.name] = runs > 1 ? { medianOf: runs, ...(median(reports) as object) } : reports[0]!;
}
process.stdout.write(`${JSON.stringify({ machine: `${process.platform} ${process.arch}, node ${process.version}`, results }, null, 2)}\n`);

/*
 * prometheus-server — a real Prometheus (the Debian package's /usr/bin/prometheus) on a
 * loopback port, scraping loopback targets, for tests that check what Prometheus sees.
 *
 * Decides: a temporary directory holds its configuration, rule file and TSDB; it listens on
 * 127.0.0.1 only (a free port found by binding port 0); scrape and rule evaluation every
 * second; `query` is the HTTP API's instant query (/api/v1/query), `alerts` its
 * /api/v1/alerts. Every wait is bounded; stop() sends SIGTERM, then SIGKILL after 5 s,
 * and a test process that exits first takes Prometheus with it (SIGKILL).
 * Leaves to others: what to scrape and which rules (the test writes them).
 * Bugs: the free port could be taken between the probe and Prometheus' bind; start() then
 * fails with Prometheus' own error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { temporaryDirectory } from './temporary-directory.js';
import { until } from './wait-until.js';

export interface ScrapeTarget {
  /** host:port on loopback. */
  readonly address: string;
  /** The instance label Prometheus gives the target's series. */
  readonly instance: string;
}

export interface InstantSample {
  readonly metric: Record<string, string>;
  /** [unix seconds, value as text ("NaN", "+Inf" included)]. */
  readonly value: [number, string];
}

export interface PrometheusAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing';
}

export interface PrometheusServer {
  readonly port: number;
  /** Instant query at now. Rejects on an HTTP or PromQL error, with Prometheus' message. */
  query(expr: string): Promise<InstantSample[]>;
  /** Alerts pending or firing now. */
  alerts(): Promise<PrometheusAlert[]>;
  /** Everything Prometheus wrote to stderr, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  const body = (await response.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? response.status}`);
  return body.data;
}

/**
 * Starts `binary` scraping `targets` (job "mxscreen", /metrics, every second) and evaluating
 * `rules` (a rule file as an object, written as YAML) every second. Resolves once
 * Prometheus answers /-/ready; rejects after 20 s or when it exits first.
 */
export async function startPrometheus(binary: string, targets: readonly ScrapeTarget[], rules: unknown): Promise<PrometheusServer> {
  const directory = temporaryDirectory('mxscreen-prometheus-');
  writeFileSync(join(directory, 'rules.yml'), stringify(rules));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [join(directory, 'rules.yml')],
    scrape_configs: [{ job_name: 'mxscreen', metrics_path: '/metrics', static_configs: targets.map((target) => ({ targets: [target.address], labels: { instance: target.instance } })) }],
  };
  writeFileSync(join(directory, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${join(directory, 'prometheus.yml')}`, `--storage.tsdb.path=${join(directory, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let exited = false;
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  // A test process that dies before stop() must not leave Prometheus running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exit.then(() => process.off('exit', killOnExit));
  let ready = false;
  const poll = setInterval(() => {
    fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(1000) })
      .then((response) => (ready ||= response.ok))
      .catch(() => undefined);
  }, 100);
  try {
    await until('Prometheus to answer /-/ready', () => ready || exited, 20_000);
  } finally {
    clearInterval(poll);
  }
  if (exited) throw new Error(`prometheus exited at start:\n${stderr}`);
  return {
    port,
    async query(expr) {
      const data = await getJson<{ resultType: string; result: InstantSample[] }>(port, `/api/v1/query?query=${encodeURIComponent(expr)}`);
      return data.result;
    },
    async alerts() {
      return (await getJson<{ alerts: PrometheusAlert[] }>(port, '/api/v1/alerts')).alerts;
    },
    log: () => stderr,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

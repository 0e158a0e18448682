// rules/prometheus/: the alert rules and the sample scrape configuration, checked by the real
// promtool (check rules, check config, test rules on test/rules/mxscreen-alerts.test.yml), and
// read as YAML for what promtool cannot see: every alert has `for:`, a severity and a summary
// and description, and a promtool unit test that makes it fire and one that keeps it silent;
// the sample scrapes mx1 and mx2 on the port of rules/main.cf's mxscreen_metrics_listen; the
// README's alert table follows the rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { repositoryRoot } from '../fakes/repository-root.js';
import { systemBinary } from '../fakes/system-binary.js';

const root = repositoryRoot();
const ALERTS = join(root, 'rules/prometheus/mxscreen-alerts.yml');
const CONFIG = join(root, 'rules/prometheus/prometheus.yml');
const UNIT_TESTS = join(root, 'test/rules/mxscreen-alerts.test.yml');
const promtool = systemBinary('promtool', 'prometheus');
const run = promisify(execFile);

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface UnitTest {
  readonly name: string;
  readonly alert_rule_test?: readonly { alertname: string; eval_time: string; exp_alerts?: readonly unknown[] }[];
}

function alertRules(): AlertRule[] {
  const file = parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((group) => group.rules);
}

/** Runs promtool with `args`; resolves with its output, rejects (with the output) on a non-zero exit. Bounded: 30 s. */
async function promtoolRun(args: readonly string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(promtool.path!, [...args], { timeout: 30_000 });
    return stdout + stderr;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}${failed.stderr ?? ''}`);
  }
}

test('promtool check rules accepts rules/prometheus/mxscreen-alerts.yml', { skip: promtool.skip }, async () => {
  const output = await promtoolRun(['check', 'rules', ALERTS]);
  assert.match(output, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
});

test('promtool check config accepts rules/prometheus/prometheus.yml and the rule file it names', { skip: promtool.skip }, async () => {
  const output = await promtoolRun(['check', 'config', CONFIG]);
  assert.match(output, /SUCCESS: 1 rule files found/);
  assert.match(output, /is valid prometheus config file syntax/);
});

test('promtool test rules: every alert fires on the series that should trigger it and stays silent on the others (test/rules/mxscreen-alerts.test.yml)', { skip: promtool.skip }, async () => {
  const output = await promtoolRun(['test', 'rules', UNIT_TESTS]);
  assert.match(output, /SUCCESS/);
});

test('every alert has for:, severity critical or warning, and a summary and description naming what to do', () => {
  const rules = alertRules();
  assert.ok(rules.length >= 12, 'the alerts of issue 13 are there');
  const names = rules.map((rule) => rule.alert);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const rule of rules) {
    assert.match(rule.alert, /^Mxscreen[A-Z]\w+$/, 'named Mxscreen…');
    assert.match(rule.for ?? '', /^\d+[smh]$/, `${rule.alert} has for:`);
    assert.ok(['critical', 'warning'].includes(rule.labels?.['severity'] ?? ''), `${rule.alert} has severity critical or warning`);
    assert.ok((rule.annotations?.['summary'] ?? '').length > 40, `${rule.alert} has a summary`);
    assert.ok((rule.annotations?.['description'] ?? '').length > 80, `${rule.alert} has a description`);
    assert.match(rule.annotations!['summary']!, /\{\{ \$labels\.instance \}\}/, `${rule.alert}'s summary names the instance`);
  }
  // The alerts issue 13 asks for, by the metric each watches.
  const watched = (metric: string) => rules.filter((rule) => new RegExp(`\\b${metric}\\b`).test(rule.expr)).map((rule) => rule.alert);
  for (const metric of [
    'up',
    'mxscreen_queue_messages',
    'mxscreen_queue_oldest_seconds',
    'mxscreen_nexthop_up',
    'mxscreen_deliveries_total',
    'mxscreen_bounces_total',
    'mxscreen_dnsbl_site_healthy',
    'mxscreen_self_listed',
    'mxscreen_self_listing_check_success',
    'mxscreen_stress_mode',
    'mxscreen_verdict_cache_backend_up',
    'mxscreen_nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.notDeepEqual(watched(metric), [], `an alert watches ${metric}`);
  }
  const listed = rules.find((rule) => /mxscreen_self_listed\b/.test(rule.expr))!;
  assert.deepEqual([listed.for, listed.labels?.['severity']], ['15m', 'critical'], 'listed for 15 minutes is critical (as dnsbl_exporter users alert)');
  assert.equal(rules.find((rule) => /mxscreen_self_listing_check_success/.test(rule.expr))!.labels?.['severity'], 'warning', 'a check that cannot tell is a warning');
});

test('every alert has a promtool unit test that makes it fire and one that keeps it silent', () => {
  const file = parse(readFileSync(UNIT_TESTS, 'utf8')) as { rule_files: string[]; tests: UnitTest[] };
  assert.deepEqual(
    file.rule_files.map((path) => resolve(dirname(UNIT_TESTS), path)),
    [ALERTS],
    'the unit tests load the shipped rule file',
  );
  const cases = file.tests.flatMap((unit) => unit.alert_rule_test ?? []);
  const missing = alertRules()
    .map((rule) => rule.alert)
    .filter((alert) => {
      const mine = cases.filter((c) => c.alertname === alert);
      return !mine.some((c) => (c.exp_alerts ?? []).length > 0) || !mine.some((c) => (c.exp_alerts ?? []).length === 0);
    });
  assert.deepEqual(missing, [], 'alerts without a firing and a silent case in test/rules/mxscreen-alerts.test.yml');
});

test('README "Dashboard and alerts" has a row for every alert with its severity and for:', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Dashboard and alerts'), readme.indexOf('## Tests and benchmark'));
  const missing = alertRules()
    .map((rule) => `| \`${rule.alert}\` | ${rule.labels?.['severity']} | ${rule.for} |`)
    .filter((row) => !section.includes(row));
  assert.deepEqual(missing, [], 'README rows missing or out of date');
});

test('prometheus.yml scrapes mx1 and mx2 on the metrics port of rules/main.cf, every 15s, and loads the alert rules', () => {
  const config = parse(readFileSync(CONFIG, 'utf8')) as {
    global: { scrape_interval: string; evaluation_interval: string };
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
  };
  assert.deepEqual(config.rule_files.map((path) => resolve(dirname(CONFIG), path)), [ALERTS]);
  assert.deepEqual([config.global.scrape_interval, config.global.evaluation_interval], ['15s', '15s']);
  const listen = /^mxscreen_metrics_listen\s*=\s*(\S+)\s*$/m.exec(readFileSync(join(root, 'rules/main.cf'), 'utf8'));
  assert.ok(listen, 'rules/main.cf sets mxscreen_metrics_listen');
  const port = listen[1]!.split(':').pop();
  const job = config.scrape_configs.find((scrape) => scrape.job_name === 'mxscreen');
  assert.ok(job, 'a job named mxscreen, as the instance-down alert expects');
  assert.deepEqual(
    job.static_configs.map((target) => [target.labels?.['instance'], target.targets.map((address) => address.split(':').pop())]),
    [
      ['mx1', [port]],
      ['mx2', [port]],
    ],
  );
});

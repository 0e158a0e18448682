// rules/grafana/mxscreen-dashboard.json: typechecked against @grafana/schema's Dashboard type
// (a fresh object literal, so unknown keys and wrong enum strings are errors), and read for
// what the type cannot say: data source, job and instance variables; every panel with a unique
// id, a place on the grid that no other panel takes, and targets on the Prometheus data source
// whose every series selector filters on $job and $instance; a panel for each item of issue 13
// and for every metric mxscreen exports. That each query returns data against a real
// Prometheus is test/integration/prometheus.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Panel } from '@grafana/schema';
import { Metrics } from '../../src/ops/metrics.js';
import { repositoryRoot } from '../fakes/repository-root.js';
import { dashboardPanels, dashboardQueries, readDashboard, SERIES_FILTER } from './dashboard-queries.js';

const root = repositoryRoot();
const run = promisify(execFile);

test('the dashboard typechecks against @grafana/schema Dashboard (tsc on the JSON as an object literal)', async () => {
  // JSON modules widen strings, so `import json` would not check enum fields; an object
  // literal written from the file keeps them literal, and `satisfies` rejects unknown keys.
  // Json<T> turns the schema's string enums into their values, which is what JSON holds.
  const directory = mkdtempSync(join(root, 'dist', 'dashboard-typecheck-'));
  try {
    const source = join(directory, 'dashboard.ts');
    writeFileSync(
      source,
      [
        "import type { Dashboard } from '@grafana/schema';",
        'type Json<T> = T extends string ? `${T}` : T extends object ? { [K in keyof T]: Json<T[K]> } : T;',
        `export const dashboard = (${readFileSync(join(root, 'rules/grafana/mxscreen-dashboard.json'), 'utf8')}) satisfies Json<Dashboard>;`,
        '',
      ].join('\n'),
    );
    const tsc = join(root, 'node_modules/.bin/tsc');
    const args = ['--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', source];
    await run(tsc, args, { timeout: 60_000 }).catch((error: { stdout?: string; message: string }) => {
      throw new Error(`the dashboard does not fit @grafana/schema's Dashboard:\n${error.stdout ?? error.message}`);
    });
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('variables: a Prometheus data source, and job and instance, multi-valued with All, read from mxscreen series', () => {
  const dashboard = readDashboard();
  const variables = dashboard.templating?.list ?? [];
  assert.deepEqual(
    variables.map((variable) => [variable.name, variable.type]),
    [
      ['datasource', 'datasource'],
      ['job', 'query'],
      ['instance', 'query'],
    ],
  );
  assert.equal(variables[0]!.query, 'prometheus');
  for (const variable of variables.slice(1)) {
    assert.equal(variable.multi, true, `${variable.name} is multi-valued (mx1 and mx2 side by side)`);
    assert.equal(variable.includeAll, true);
    assert.deepEqual(variable.datasource, { type: 'prometheus', uid: '${datasource}' });
    assert.match(JSON.stringify(variable.query), /label_values\(mxscreen_\w+/);
  }
  assert.match(JSON.stringify(variables[2]!.query), /job=~\\"\$job\\"/, 'instance follows the chosen jobs');
});

test('every panel has a unique id and its own place on the 24-column grid; rows span it', () => {
  const panels = dashboardPanels(readDashboard());
  assert.ok(panels.length > 25);
  const ids = panels.map((panel) => panel.id);
  assert.equal(new Set(ids).size, ids.length, 'unique ids');
  const taken = new Map<string, string>();
  for (const panel of panels) {
    const { x, y, w, h } = panel.gridPos ?? { x: -1, y: -1, w: 0, h: 0 };
    assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${panel.title} has a gridPos inside 24 columns`);
    if (panel.type === 'row') assert.deepEqual([x, w, h], [0, 24, 1], `row ${panel.title}`);
    for (let column = x; column < x + w; column += 1) {
      for (let line = y; line < y + h; line += 1) {
        const other = taken.get(`${column},${line}`);
        assert.equal(other, undefined, `${panel.title} overlaps ${other}`);
        taken.set(`${column},${line}`, panel.title ?? '');
      }
    }
  }
});

test('every panel queries the Prometheus data source variable, each target with its refId, and every series selector filters on $job and $instance', () => {
  const panels = dashboardPanels(readDashboard()).filter((panel): panel is Panel => panel.type !== 'row');
  for (const panel of panels) {
    assert.ok(panel.title && panel.description, `panel ${panel.id} has a title and a description`);
    assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, `${panel.title}: data source`);
    const targets = panel.targets ?? [];
    assert.ok(targets.length > 0, `${panel.title} has targets`);
    assert.equal(new Set(targets.map((target) => target['refId'])).size, targets.length, `${panel.title}: unique refIds`);
    for (const target of targets) {
      assert.deepEqual(target['datasource'], { type: 'prometheus', uid: '${datasource}' }, `${panel.title}: target data source`);
      assert.ok(typeof target['legendFormat'] === 'string' && target['legendFormat'].includes('{{instance}}'), `${panel.title}: the legend names the instance`);
    }
  }
  const queries = dashboardQueries(readDashboard());
  for (const { panel, expr } of queries) {
    const selectors = [...expr.matchAll(/\b(up|mxscreen_[a-z0-9_]+)\b(\{[^}]*\})?/g)];
    assert.ok(selectors.length > 0, `${panel}: ${expr} reads a series`);
    for (const [selector, , matchers] of selectors) {
      assert.ok(matchers?.startsWith(`{${SERIES_FILTER}`), `${panel}: ${selector} filters on ${SERIES_FILTER}`);
    }
  }
});

test('a panel for each item of issue 13, and every metric mxscreen exports is on the dashboard', () => {
  const queries = dashboardQueries(readDashboard());
  const shown = (pattern: RegExp) => queries.some(({ expr }) => pattern.test(expr));
  const items: [string, RegExp][] = [
    ['connections by verdict', /by \(instance, verdict\) \(rate\(mxscreen_connections_total/],
    ['screen test results and actions', /by \(instance, test, result, action\) \(rate\(mxscreen_screen_verdicts_total/],
    ['PASS OLD share (cache hit ratio)', /mxscreen_screen_cache_lookups_total\{[^}]*result="hit"\}.*\/ sum by \(instance\) \(rate\(mxscreen_screen_cache_lookups_total/],
    ['DNSBL answers by site', /by \(instance, site, result\) \(rate\(mxscreen_dnsbl_answers_total/],
    ['DNSBL latency by site', /histogram_quantile\(0\.99, sum by \(instance, site, le\) \(rate\(mxscreen_dnsbl_query_seconds_bucket/],
    ['DNSBL rank', /mxscreen_dnsbl_rank_bucket/],
    ['DNSBL site health', /mxscreen_dnsbl_site_healthy/],
    ['active connections by stage', /by \(instance, stage\) \(mxscreen_connections_active/],
    ['stress mode', /mxscreen_stress_mode/],
    ['restriction rejects by list', /by \(instance, list, result\) \(rate\(mxscreen_smtpd_restrictions_total\{[^}]*result=~"reject\|defer"/],
    ['content checks by action', /by \(instance, action\) \(rate\(mxscreen_content_checks_total/],
    ['SMTP replies by code class', /label_replace\(rate\(mxscreen_smtp_replies_total.*"class", "\$\{1\}xx", "code"/],
    ['queue size by queue', /by \(instance, queue\) \(mxscreen_queue_messages/],
    ['oldest message by queue', /by \(instance, queue\) \(mxscreen_queue_oldest_seconds/],
    ['deliveries by status and nexthop', /by \(instance, status, nexthop\) \(rate\(mxscreen_deliveries_total/],
    ['delivery latency', /histogram_quantile\(0\.99, sum by \(instance, le\) \(rate\(mxscreen_delivery_seconds_bucket/],
    ['bounces by reason', /by \(instance, reason\) \(rate\(mxscreen_bounces_total/],
    ['nexthop up', /by \(instance, nexthop\) \(mxscreen_nexthop_up/],
    ['self-listing', /by \(instance, site, address\) \(mxscreen_self_listed\{/],
    ['self-listing check', /mxscreen_self_listing_check_success/],
    ['verdict cache backend up (Redis)', /mxscreen_verdict_cache_backend_up/],
    ['process CPU', /rate\(mxscreen_process_cpu_seconds_total/],
    ['process memory', /mxscreen_process_resident_memory_bytes/],
    ['event-loop lag', /mxscreen_nodejs_eventloop_lag_p99_seconds/],
  ];
  assert.deepEqual(items.filter(([, pattern]) => !shown(pattern)).map(([item]) => item), [], 'issue 13 items without a panel');
  const exported = new Metrics().registry.getMetricsAsArray().map((metric) => metric.name);
  assert.deepEqual(exported.filter((name) => !shown(new RegExp(`\\b${name}(_bucket|_count|_sum)?\\b`))), [], 'metrics of src/ops/metrics.ts no panel shows');
});

// README promises every log event (LOG_EVENTS) and every metric (Metrics) it lists; each must
// be asserted by some test, so that a new one cannot be added without a test that reads it.
// The check is textual and deliberately simple, on the test sources (test/**/*.ts outside
// test/docs, comment lines skipped):
// - a log event is asserted when a line names it quoted ('E', "E" or `E`) together with
//   the word event/events (`line.event === 'E'`, `capture.events('E')`, `{ event: 'E' }`,
//   `screen.events(), ['CONNECT', …]`, a helper such as `oneEvent(lines, 'E')`) or waitFor;
// - a metric is asserted when a line names it (or its _count/_sum/_bucket series) together
//   with every one of its label names (`mxscreen_deliveries_total{status="sent",nexthop=…}`,
//   `sample(text, 'mxscreen_nexthop_up', { nexthop })`).
// It cannot tell a strong assertion from a weak one; the tests it points to are where that is judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LOG_EVENTS } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { repositoryRoot } from '../fakes/repository-root.js';

const root = repositoryRoot();

/** Every non-comment line of test/**\/*.ts except test/docs/, with its file. */
function testSourceLines(): { file: string; text: string }[] {
  const lines: { file: string; text: string }[] = [];
  const walk = (directory: string): void => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) {
        if (relative(root, path) !== join('test', 'docs')) walk(path);
      } else if (entry.name.endsWith('.ts')) {
        for (const text of readFileSync(path, 'utf8').split('\n')) {
          if (!/^\s*(\/\/|\/?\*)/.test(text)) lines.push({ file: relative(root, path), text });
        }
      }
    }
  };
  walk(join(root, 'test'));
  return lines;
}

const lines = testSourceLines();

test('every log event is asserted by some test (a line naming the event with event/events/waitFor)', () => {
  assert.ok(lines.length > 1000, 'the test sources were found');
  const unasserted = LOG_EVENTS.filter(
    (event) => !lines.some(({ text }) => [`'${event}'`, `"${event}"`, `\`${event}\``].some((quoted) => text.includes(quoted)) && /event|waitFor/i.test(text)),
  );
  assert.deepEqual(unasserted, [], 'log events no test asserts (add a test that produces the event and reads its line)');
});

test('every metric is asserted with its labels by some test (a line naming the metric and each of its label names)', () => {
  const metrics = new Metrics().registry.getMetricsAsArray();
  assert.ok(metrics.length > 20);
  const unasserted = metrics
    .filter((metric) => {
      const series = new RegExp(`\\b${metric.name}(_count|_sum|_bucket)?\\b`);
      const labels = (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
      return !lines.some(({ text }) => series.test(text) && labels.every((label) => new RegExp(`\\b${label}\\b`).test(text)));
    })
    .map((metric) => metric.name);
  assert.deepEqual(unasserted, [], 'metrics no test asserts with their labels');
});

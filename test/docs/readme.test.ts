// The README is the front door: its parameter table must match the catalogue, and it must
// show the three commands a new user runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../fakes/repository-root.js';
import { renderParameterTable, TABLE_BEGIN, TABLE_END } from '../../src/config/parameter-table.js';

const readme = readFileSync(join(repositoryRoot(), 'README.md'), 'utf8');

test('README parameter table is the catalogue (regenerate: node dist/src/config/parameter-table.js)', () => {
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  assert.ok(begin >= 0 && end > begin, 'README has the parameter table markers');
  assert.equal(readme.slice(begin, end + TABLE_END.length + 1), renderParameterTable());
});

test('README shows npm ci, npm start and npm test', () => {
  for (const command of ['npm ci', 'npm start', 'npm test']) assert.ok(readme.includes(command), command);
});

test('README explains every log event', async () => {
  const { LOG_EVENTS } = await import('../../src/ops/log.js');
  const section = readme.slice(readme.indexOf('## Log events'), readme.indexOf('## Metrics'));
  const missing = LOG_EVENTS.filter((event) => !section.includes(`\`${event}\``));
  assert.deepEqual(missing, []);
});

test('README lists every metric', async () => {
  const { Metrics } = await import('../../src/ops/metrics.js');
  const section = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('## Tests and benchmark'));
  const missing = new Metrics().registry.getMetricsAsArray().map((metric) => metric.name).filter((name) => !section.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
});

/*
 * dashboard-queries — the panels and PromQL queries of rules/grafana/mxscreen-dashboard.json,
 * as the dashboard test and the real-Prometheus integration test read them.
 *
 * Decides: how a query is turned into one Prometheus can answer without Grafana: $job and
 * $instance become regular expressions (Grafana writes a multi-value choice as (a|b)),
 * $__rate_interval a fixed window.
 * Leaves to others: what a query must return (the tests).
 * Bugs: only the variables the dashboard uses are substituted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dashboard, Panel, RowPanel } from '@grafana/schema';
import { repositoryRoot } from '../fakes/repository-root.js';

/** What every series selector of the dashboard starts with. */
export const SERIES_FILTER = 'job=~"$job",instance=~"$instance"';

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(repositoryRoot(), 'rules/grafana/mxscreen-dashboard.json'), 'utf8')) as Dashboard;
}

/** Every panel, rows and the panels inside collapsed rows included, in file order. */
export function dashboardPanels(dashboard: Dashboard): (Panel | RowPanel)[] {
  return (dashboard.panels ?? []).flatMap((panel) => (panel.type === 'row' ? [panel, ...((panel as RowPanel).panels ?? [])] : [panel]));
}

export interface DashboardQuery {
  /** The panel's title. */
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

/** Every target expression of every panel. */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  return dashboardPanels(dashboard)
    .filter((panel): panel is Panel => panel.type !== 'row')
    .flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title ?? '', refId: String(target['refId']), expr: String(target['expr']) })));
}

/** `expr` with the dashboard variables replaced: job and instance by the regular expressions given, $__rate_interval by `rateInterval` (e.g. "5m"). */
export function substituteVariables(expr: string, values: { readonly job: string; readonly instance: string; readonly rateInterval: string }): string {
  return expr.replaceAll('$__rate_interval', values.rateInterval).replaceAll('$job', values.job).replaceAll('$instance', values.instance);
}

/**
 * deploy/grafana/dashboards/meshgrad.json: every PromQL expression parses (promtool, through a
 * recording rule per expression) and names only metrics and labels the processes export — taken
 * from the real metric factories, not from a list kept by hand.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { DEPLOY, hasTool, run, titled, withTempDir } from './tools.js';

const PROMTOOL = 'promtool';
const havePromtool = hasTool(PROMTOOL);

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos: { x: number; y: number; w: number; h: number };
}

const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/dashboards/meshgrad.json'), 'utf8')) as { uid: string; title: string; panels: Panel[] };

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}
const panels = allPanels(dashboard.panels);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t, name: `${p.title} / ${t.refId}` })));

/** Grafana's built-in interval variables, replaced by a concrete duration so promtool can parse. */
function concrete(expr: string): string {
  const out = expr.replace(/\$\{?__(rate_interval|interval|range)\}?/g, '5m').replace(/\$\{?__range_s\}?/g, '3600');
  if (out.includes('$')) throw new Error(`unknown Grafana variable in ${expr}`);
  return out;
}

const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan',
]);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** The series names an expression reads: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  s = s.replace(GROUPING, ' ').replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue; // the exponent of a number such as 1e3, or a duration unit
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // a function or aggregation
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Label names an expression mentions: in matchers and in by/without/on/ignoring/group_x lists. */
function labelNames(expr: string): string[] {
  const s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const labels = new Set<string>();
  for (const m of s.matchAll(/\{([^}]*)\}/g)) for (const l of m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(l[1]);
  for (const m of s.matchAll(GROUPING)) for (const l of m[2].split(',').map((x) => x.trim()).filter(Boolean)) labels.add(l);
  return [...labels];
}

/** Labels Prometheus attaches to every scraped series (compose: job, instance; Kubernetes: also pod and friends). */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'container', 'endpoint', 'service'];

/** Every series name the two roles expose, with the label names each may carry. */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const series = new Map<string, Set<string>>();
  const registries = [new Registry(), new Registry()];
  createCoordinatorMetrics(registries[0]);
  createWorkerMetrics(registries[1]);
  for (const registry of registries) {
    // The factories register prom-client's default metrics; should that move elsewhere, add them here.
    if (!registry.getSingleMetric('process_cpu_seconds_total')) collectDefaultMetrics({ register: registry });
    for (const m of await registry.getMetricsAsJSON()) {
      const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] };
      const labels = [...(metric.labelNames ?? []), ...TARGET_LABELS];
      const add = (name: string, extra: string[] = []): void => {
        const set = series.get(name) ?? new Set<string>();
        for (const l of [...labels, ...extra]) set.add(l);
        series.set(name, set);
      };
      const type = String(m.type);
      if (type === 'histogram') {
        add(`${m.name}_bucket`, ['le']);
        add(`${m.name}_sum`);
        add(`${m.name}_count`);
      } else if (type === 'summary') {
        add(m.name, ['quantile']);
        add(`${m.name}_sum`);
        add(`${m.name}_count`);
      } else add(m.name);
    }
  }
  return series;
}

describe('deploy/grafana/dashboards/meshgrad.json', () => {
  let exported: Map<string, Set<string>>;
  beforeAll(async () => {
    exported = await exportedSeries();
  });

  it('has queries, unique panel ids, a grid that fits, and the provisioned data source', () => {
    expect(dashboard.uid).toBe('meshgrad');
    expect(queries.length).toBeGreaterThan(20);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    for (const { panel, target, name } of queries) {
      expect(target.expr.trim(), name).not.toBe('');
      for (const ds of [panel.datasource, target.datasource]) expect(ds, name).toEqual({ type: 'prometheus', uid: 'prometheus' });
    }
  });

  it('covers what the issue asks for', () => {
    const all = queries.map((q) => q.target.expr).join('\n');
    for (const needle of [
      'meshgrad_loss', 'meshgrad_accuracy_ratio', 'rate(meshgrad_samples_total', 'meshgrad_step_duration_seconds_bucket',
      'meshgrad_straggler_wait_seconds', 'meshgrad_worker_compute_seconds', 'meshgrad_message_bytes_total', 'meshgrad_workers',
      'meshgrad_world_size', 'meshgrad_worker_failures_total', 'meshgrad_membership_changes_total', 'meshgrad_checkpoint_duration_seconds',
      'meshgrad_checkpoint_size_bytes', 'meshgrad_checkpoint_last_timestamp_seconds', 'meshgrad_learning_rate', 'meshgrad_gradient_norm',
      'nodejs_eventloop_lag',
    ]) expect(all, needle).toContain(needle);
    expect(queries.some((q) => /histogram_quantile\([^,]+, sum by \([^)]*\ble\b[^)]*\) \(rate\(meshgrad_step_duration_seconds_bucket/.test(q.target.expr))).toBe(true);
    expect(queries.some((q) => /by \(instance\)/.test(q.target.expr) && q.target.expr.includes('meshgrad_worker_compute_seconds'))).toBe(true);
  });

  it('reads only series the coordinator and worker export, with labels they carry', () => {
    expect(exported.size).toBeGreaterThan(50);
    const problems: string[] = [];
    for (const { target, name } of queries) {
      const metrics = metricNames(target.expr);
      if (metrics.length === 0 && !/time\(\)/.test(target.expr)) problems.push(`${name}: reads no metric: ${target.expr}`);
      const allowed = new Set<string>();
      for (const m of metrics) {
        const labels = exported.get(m);
        if (!labels) problems.push(`${name}: '${m}' is not exported`);
        else for (const l of labels) allowed.add(l);
      }
      for (const l of labelNames(target.expr)) if (!allowed.has(l)) problems.push(`${name}: label '${l}' is on none of ${metrics.join(', ')}`);
      for (const m of (target.legendFormat ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
        if (!allowed.has(m[1])) problems.push(`${name}: legend label '${m[1]}' is on none of ${metrics.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('and that check catches a misspelt metric or label', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(meshgrad_step_duration_seconds_bucket{job="x"}[5m]))) * 1e3')).toEqual(['meshgrad_step_duration_seconds_bucket']);
    expect(metricNames('time() - max(meshgrad_checkpoint_last_timestamp_seconds offset 5m)')).toEqual(['meshgrad_checkpoint_last_timestamp_seconds']);
    expect(metricNames('a / on (instance) group_left (role) b and c')).toEqual(['a', 'b', 'c']);
    expect(exported.has('meshgrad_step_duration_seconds_bucket')).toBe(true);
    expect(exported.has('meshgrad_step_duration_seconds')).toBe(false);
    expect(exported.has('meshgrad_samples_total')).toBe(true);
    expect(exported.get('meshgrad_loss')?.has('split')).toBe(true);
    expect(exported.get('meshgrad_loss')?.has('phase')).toBe(false);
    expect(labelNames('sum by (instance, le) (rate(x_bucket{phase="forward"}[5m]))').sort()).toEqual(['instance', 'le', 'phase']);
  });

  it.skipIf(!havePromtool)(titled('parses every expression with promtool', PROMTOOL, havePromtool), () => {
    const rules = queries.map(({ panel, target }) => ({ record: `dashboard:panel_${panel.id}_${target.refId}`, expr: concrete(target.expr) }));
    withTempDir((dir) => {
      const file = join(dir, 'dashboard-rules.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'meshgrad-dashboard', rules }] }));
      const r = run(PROMTOOL, ['check', 'rules', file]);
      expect(r.output).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
      expect(r.status).toBe(0);
    });
  });

  it.skipIf(!havePromtool)(titled('and promtool rejects an invalid expression', PROMTOOL, havePromtool), () => {
    withTempDir((dir) => {
      const file = join(dir, 'broken-rules.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'broken', rules: [{ record: 'dashboard:broken', expr: 'sum(rate(meshgrad_samples_total[5m])' }] }] }));
      const r = run(PROMTOOL, ['check', 'rules', file]);
      expect(r.status).not.toBe(0);
      expect(r.output).toMatch(/dashboard:broken|parse/);
    });
  });
});

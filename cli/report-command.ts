/**
 * `meshgrad report RUN [--out FILE]`: one self-contained HTML page about a run — its loss and
 * accuracy curves per split (train, validation, test; one point per epoch), its final test figures,
 * the per-epoch table and its configuration. RUN is a --summary-json file (written by `train`,
 * `coordinator` or `local`) or a --checkpoint-dir (its history.json, and latest.safetensors'
 * metadata when there). The page loads nothing: no scripts, no stylesheets, no fonts, the charts
 * are inline SVG (cli/svg-chart.ts), so it opens offline and can be kept beside the run.
 */

import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { LATEST } from '../coordinator/run-checkpoint.js';
import { historyPath, HISTORY_FILE, METRICS_COLUMNS, readHistoryFile, type EpochRecord } from './run-record.js';
import { escapeXml, lineChart, type Series } from './svg-chart.js';
import type { Output } from './progress.js';

/** What a report is drawn from: the summary's figures (when RUN is a summary), config and history. */
export interface ReportInput {
  /** RUN as given. */
  readonly source: string;
  readonly kind: 'summary' | 'checkpoint-dir';
  readonly config: Record<string, unknown>;
  readonly history: readonly EpochRecord[];
  /** The summary's top-level figures (testAccuracy, testLoss, steps, ...); empty for a directory. */
  readonly summary: Record<string, unknown>;
  /** latest.safetensors' cursor, when RUN is a checkpoint directory that has one. */
  readonly checkpoint?: { readonly path: string; readonly step: number | null; readonly epoch: number | null };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `meshgrad.meta` JSON of a safetensors file, read from its header only (not the tensors). */
export function readSafetensorsMeta(path: string): Record<string, unknown> | null {
  const fd = openSync(path, 'r');
  try {
    const size = Buffer.alloc(8);
    if (readSync(fd, size, 0, 8, 0) !== 8) return null;
    const length = Number(size.readBigUInt64LE(0));
    if (!(length > 0 && length < 100 * 2 ** 20)) return null;
    const header = Buffer.alloc(length);
    if (readSync(fd, header, 0, length, 8) !== length) return null;
    const parsed = JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, string> };
    const meta = parsed.__metadata__?.['meshgrad.meta'];
    const value = meta === undefined ? null : (JSON.parse(meta) as unknown);
    return isObject(value) ? value : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function checkHistory(source: string, history: unknown): EpochRecord[] {
  if (!Array.isArray(history)) throw new Error(`${source}: has no epoch history ('history' array): written before --summary-json recorded epochs? Run again to get one`);
  history.forEach((r, i) => {
    if (!isObject(r) || typeof r.epoch !== 'number') throw new Error(`${source}: history[${i}] is not an epoch record (no numeric 'epoch')`);
  });
  return history as EpochRecord[];
}

/** Reads RUN (a summary JSON file or a checkpoint directory); errors are one line naming it. */
export function loadRun(run: string): ReportInput {
  let st;
  try {
    st = statSync(run);
  } catch {
    throw new Error(`${run}: no such file or directory (give a --summary-json file or a --checkpoint-dir)`);
  }
  if (st.isDirectory()) {
    const latest = join(run, LATEST);
    const meta = existsSync(latest) ? readSafetensorsMeta(latest) : null;
    const cursor = isObject(meta?.cursor) ? meta.cursor : null;
    const checkpoint = existsSync(latest)
      ? { path: latest, step: typeof cursor?.step === 'number' ? cursor.step : null, epoch: typeof cursor?.epoch === 'number' ? cursor.epoch : null }
      : undefined;
    const kept = readHistoryFile(historyPath(run));
    if (kept === null) {
      if (checkpoint) throw new Error(`${run}: holds a checkpoint (${LATEST}${checkpoint.step === null ? '' : `, step ${checkpoint.step}`}) but no epoch history (${HISTORY_FILE}, written by runs with --checkpoint-dir since issue 15): nothing to draw`);
      throw new Error(`${run}: holds no run history (no ${HISTORY_FILE}, no ${LATEST}): give a --summary-json file or a --checkpoint-dir`);
    }
    return { source: run, kind: 'checkpoint-dir', config: kept.config as unknown as Record<string, unknown>, history: checkHistory(historyPath(run), kept.history), summary: {}, checkpoint };
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(run, 'utf8'));
  } catch (err) {
    throw new Error(`${run}: not a JSON summary (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new Error(`${run}: not a JSON summary (not an object)`);
  const { history, config, ...summary } = value;
  return { source: run, kind: 'summary', config: isObject(config) ? config : {}, history: checkHistory(run, history), summary };
}

/** RUN's directory (RUN itself when a directory), `report.html`. */
export function defaultReportPath(run: string): string {
  const isDir = existsSync(run) && statSync(run).isDirectory();
  return join(isDir ? run : dirname(run), 'report.html');
}

const SPLITS = [
  { name: 'train', color: '#1f77b4', loss: 'trainLoss', accuracy: 'trainAccuracy', rmse: null },
  { name: 'val', color: '#ff7f0e', loss: 'valLoss', accuracy: 'valAccuracy', rmse: 'valRmse' },
  { name: 'test', color: '#2ca02c', loss: 'testLoss', accuracy: 'testAccuracy', rmse: 'testRmse' },
] as const;

/** Whether a history is a regression run's (RMSE figures instead of accuracy). */
function isRegression(history: readonly EpochRecord[]): boolean {
  return history.some((r) => typeof r.testRmse === 'number' || typeof r.valRmse === 'number');
}

/** The RMSE curves of a regression run (validation and test: training has none). */
function rmseSeries(history: readonly EpochRecord[]): Series[] {
  return SPLITS.flatMap((s) => {
    const key = s.rmse;
    if (key === null || !history.some((r) => typeof r[key] === 'number')) return [];
    return [{ name: s.name, color: s.color, points: history.map((r) => [r.epoch, r[key] ?? null] as const) }];
  });
}

/** The splits a history has figures for (val only with a validation split). */
function seriesOf(history: readonly EpochRecord[], metric: 'loss' | 'accuracy'): Series[] {
  return SPLITS.filter((s) => history.some((r) => r[s[metric]] !== null && r[s[metric]] !== undefined)).map((s) => ({
    name: s.name,
    color: s.color,
    points: history.map((r) => [r.epoch, r[s[metric]] ?? null] as const),
  }));
}

const percent = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : '–');
const fixed = (v: unknown, digits = 4): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

/** Config as rows of dotted keys; the model spec (long) as one JSON cell. */
function configRows(value: Record<string, unknown>, prefix = ''): [string, string][] {
  const rows: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (isObject(v) && key !== 'model') rows.push(...configRows(v, name));
    else rows.push([name, v === null || v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  return rows;
}

function cell(v: number | null | undefined, column: string): string {
  if (v === null || v === undefined) return '–';
  if (column === 'epoch' || column === 'step') return String(v);
  if (column.endsWith('accuracy')) return percent(v);
  if (column === 'lr') return v.toExponential(3);
  if (column === 'seconds') return v.toFixed(1);
  return v.toFixed(4);
}

export function renderReport(input: ReportInput): string {
  const { history, config, summary } = input;
  const last = history.at(-1);
  // The summary's figures follow early stopping's restored parameters; a directory has the last epoch's.
  const testAccuracy = typeof summary.testAccuracy === 'number' ? summary.testAccuracy : last?.testAccuracy;
  const regression = isRegression(history) || typeof summary.testRmse === 'number';
  const testRmse = typeof summary.testRmse === 'number' ? summary.testRmse : last?.testRmse;
  const lossName = typeof config.loss === 'string' ? config.loss : regression ? 'mse' : 'cross-entropy';
  const testLoss = typeof summary.testLoss === 'number' ? summary.testLoss : last?.testLoss;
  const steps = typeof summary.steps === 'number' ? summary.steps : (input.checkpoint?.step ?? last?.step);
  const model = isObject(config.model) && typeof config.model.name === 'string' ? config.model.name : String(config.modelSource ?? 'model');
  const dataset = typeof config.dataset === 'string' ? config.dataset : 'dataset';
  const title = `meshgrad run: ${model} on ${dataset}`;
  const facts = [
    regression ? `<span id="test-rmse" data-value="${testRmse ?? ''}">test RMSE <b>${fixed(testRmse)}</b></span>` : `<span id="test-accuracy" data-value="${testAccuracy ?? ''}">test accuracy <b>${percent(testAccuracy)}</b></span>`,
    `<span id="test-loss" data-value="${testLoss ?? ''}">test loss <b>${fixed(testLoss)}</b></span>`,
    `<span>${history.length} epoch(s), ${steps ?? '–'} steps</span>`,
  ];
  if (typeof summary.wallSeconds === 'number') facts.push(`<span>${summary.wallSeconds.toFixed(1)} s</span>`);
  if (typeof summary.workersJoined === 'number') facts.push(`<span>${summary.workersJoined} worker(s) joined</span>`);
  if (summary.interrupted === true) facts.push('<span class="warn">stopped before the end (interrupted)</span>');
  if (input.checkpoint) facts.push(`<span>checkpoint ${escapeXml(input.checkpoint.path)}${input.checkpoint.step === null ? '' : ` at step ${input.checkpoint.step}`}</span>`);
  const charts = history.length
    ? [
        lineChart({ title: 'Loss', metric: 'loss', xLabel: 'epoch', yLabel: `${lossName} loss`, series: seriesOf(history, 'loss') }),
        regression
          ? lineChart({ title: 'RMSE', metric: 'rmse', xLabel: 'epoch', yLabel: 'root mean squared error', series: rmseSeries(history) })
          : lineChart({ title: 'Accuracy', metric: 'accuracy', xLabel: 'epoch', yLabel: 'accuracy', series: seriesOf(history, 'accuracy'), formatY: (v) => `${Number((v * 100).toPrecision(4))}%` }),
      ].join('\n')
    : '<p class="warn">The run recorded no epoch (it stopped before the first one ended): no curves.</p>';
  const columns = METRICS_COLUMNS;
  const epochTable = [
    '<table id="epochs"><thead><tr>',
    ...columns.map(([name]) => `<th>${escapeXml(name)}</th>`),
    '</tr></thead><tbody>',
    ...history.map((r) => `<tr>${columns.map(([name, key]) => `<td>${escapeXml(cell(r[key], name))}</td>`).join('')}</tr>`),
    '</tbody></table>',
  ].join('');
  const rows = configRows(config);
  const configTable = rows.length
    ? `<table id="config"><tbody>${rows.map(([k, v]) => `<tr><th>${escapeXml(k)}</th><td>${k === 'model' ? `<code>${escapeXml(v)}</code>` : escapeXml(v)}</td></tr>`).join('')}</tbody></table>`
    : '<p class="warn">This summary records no configuration.</p>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 22px; margin-bottom: 4px; }
.source { color: #666; font-size: 13px; }
.facts span { display: inline-block; margin: 8px 18px 8px 0; font-size: 16px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 24px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
#epochs td { text-align: right; font-variant-numeric: tabular-nums; }
code { display: block; max-width: 860px; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.warn { color: #a33; }
</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<div class="source">from ${escapeXml(input.source)} (${input.kind === 'summary' ? 'summary JSON' : 'checkpoint directory'})</div>
<div class="facts" id="final">${facts.join('\n')}</div>
<h2>Curves</h2>
<div class="charts">
${charts}
</div>
<h2>Epochs</h2>
${epochTable}
<h2>Configuration</h2>
${configTable}
</body>
</html>
`;
}

export function reportCommand(out: Output): Command {
  const cmd = new Command('report')
    .description('write an HTML page about a run: loss and accuracy curves per split, final test figures, its configuration')
    .argument('<run>', 'a --summary-json file, or a --checkpoint-dir (its history.json)')
    .addOption(new Option('--out <file>', "the page to write (default: RUN's directory, report.html)"));
  cmd.addHelpText('after', '\nThe page is self-contained (inline SVG, no scripts, nothing fetched): open it in any browser, offline.\nExample: meshgrad train --epochs 5 --summary-json run/summary.json && meshgrad report run/summary.json');
  cmd.action((run: string, flags: { out?: string }) => {
    const input = loadRun(run);
    const target = flags.out ?? defaultReportPath(run);
    try {
      writeFileSync(target, renderReport(input));
    } catch (err) {
      throw new Error(`--out ${target}: cannot write it (${(err as Error).message})`);
    }
    out.write(`wrote report of ${input.history.length} epoch(s) to ${target}`);
  });
  return cmd;
}

// `meshgrad report` on a real run: a short `train` with --summary-json and --metrics-csv (the
// history and the CSV checked), then the report page, opened in headless Chromium (the rendered
// DOM must hold one curve per split and metric, the configuration table and the test accuracy;
// the screenshot must be a PNG). Without chromium those checks are skipped, saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const CHROMIUM = ['chromium', 'chromium-browser'].find((c) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', c]).status === 0);
if (CHROMIUM === undefined) console.log('test/cli/report.test.ts: the headless-browser checks are skipped: no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)');

interface Epoch {
  epoch: number;
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  testLoss: number;
  testAccuracy: number;
  lr: number;
  seconds: number;
}

let dir = '';
let summaryPath = '';
let csvPath = '';
let trainOutput = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshgrad-report-'));
  summaryPath = join(dir, 'run', 'summary.json');
  csvPath = join(dir, 'run', 'metrics.csv');
  const r = await runCli(['train', '--model', 'mlp', '--dataset', 'fashion-mnist', '--epochs', '2', '--train-samples', '512', '--test-samples', '200', '--batch-size', '64', '--threads', '1', '--summary-json', summaryPath, '--metrics-csv', csvPath]);
  trainOutput = `${r.stdout}\n${r.stderr}`;
  expect(r.code, trainOutput).toBe(0);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs chromium headless on a file; returns its stdout (the DOM with --dump-dom). */
function chromium(args: string[], page: string): { status: number | null; stdout: string; stderr: string } {
  const profile = join(dir, 'chromium-profile');
  mkdirSync(profile, { recursive: true });
  const r = spawnSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, ...args, pathToFileURL(page).href], { encoding: 'utf8', timeout: 60_000, maxBuffer: 32 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('a run you can look at', () => {
  it('the summary JSON keeps its figures and gains the history of both epochs and the configuration', () => {
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown> & { history: Epoch[]; config: Record<string, unknown> };
    for (const key of ['testAccuracy', 'testLoss', 'trainLoss', 'steps', 'samples', 'wallSeconds']) expect(typeof summary[key], key).toBe('number');
    expect(summary.steps).toBe(16);
    expect(summary.history.map((e) => e.epoch)).toEqual([1, 2]);
    expect(summary.history.map((e) => e.step)).toEqual([8, 16]);
    for (const e of summary.history) {
      for (const k of ['trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy', 'lr', 'seconds'] as const) expect(Number.isFinite(e[k]), `epoch ${e.epoch} ${k} = ${e[k]}`).toBe(true);
      expect(e.valLoss).toBeNull(); // no --val-fraction
    }
    expect(summary.history[1].testAccuracy).toBe(summary.testAccuracy);
    expect(summary.config).toMatchObject({ command: 'train', modelSource: 'mlp', dataset: 'fashion-mnist', batchSize: 64, seed: 1, epochs: 2, maxSteps: null, trainSamples: 512, testSamples: 200, backend: 'wasm', optimizer: { name: 'adam', lr: 0.001 } });
    expect((summary.config.model as { name: string }).name).toBe('mlp');
  });

  it('--metrics-csv has the header and one row per epoch', () => {
    const lines = readFileSync(csvPath, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,val_rmse,test_rmse,lr,seconds');
    expect(lines).toHaveLength(3);
    for (const [i, line] of lines.slice(1).entries()) {
      const f = line.split(',');
      expect(f).toHaveLength(12);
      expect(f[0]).toBe(String(i + 1));
      expect(f[4]).toBe(''); // no validation split
      expect([f[8], f[9]]).toEqual(['', '']); // no RMSE: a classification run
      for (const j of [1, 2, 3, 6, 7, 10, 11]) expect(Number.isFinite(Number(f[j])) && f[j] !== '', `row ${i + 1} column ${j}: ${f[j]}`).toBe(true);
    }
    expect(trainOutput).toContain(`wrote 2 epoch(s) of metrics to ${csvPath}`);
  });

  it('meshgrad report writes RUN-dir/report.html, self-contained', async () => {
    const r = await runCli(['report', summaryPath]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const page = join(dir, 'run', 'report.html');
    expect(r.stdout).toContain(`wrote report of 2 epoch(s) to ${page}`);
    const html = readFileSync(page, 'utf8');
    // Nothing fetched: no scripts, no external references of any kind.
    expect(html).not.toMatch(/<script|<link|\bsrc=|@import|url\(/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html.match(/<path class="curve"/g)).toHaveLength(4);
  });

  it.skipIf(CHROMIUM === undefined)('renders in headless Chromium: the curves, the configuration and the test accuracy', () => {
    const page = join(dir, 'run', 'report.html');
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as { testAccuracy: number };
    const dom = chromium(['--dump-dom'], page);
    expect(dom.status, dom.stderr).toBe(0);
    const curves = [...dom.stdout.matchAll(/<path class="curve" data-metric="(\w+)" data-split="(\w+)" d="([^"]*)"/g)].map((m) => ({ metric: m[1], split: m[2], d: m[3] }));
    expect(curves.map((c) => `${c.metric}/${c.split}`).sort()).toEqual(['accuracy/test', 'accuracy/train', 'loss/test', 'loss/train']);
    // Two epochs: each curve moves to the first point and draws a line to the second.
    for (const c of curves) expect(c.d, `${c.metric}/${c.split}`).toMatch(/^M[\d.]+ [\d.]+ L[\d.]+ [\d.]+$/);
    expect(dom.stdout).toMatch(/<table id="config">[\s\S]*<th>dataset<\/th><td>fashion-mnist<\/td>[\s\S]*<th>batchSize<\/th><td>64<\/td>/);
    expect(dom.stdout).toContain(`test accuracy <b>${(summary.testAccuracy * 100).toFixed(2)}%</b>`);

    const shot = join(dir, 'shot.png');
    const r = chromium([`--screenshot=${shot}`, '--window-size=1200,1600'], page);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(shot)).toBe(true);
    expect(statSync(shot).size).toBeGreaterThan(1000);
    expect([...readFileSync(shot).subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  }, 120_000);

  it('--out picks the page; a RUN that is not there or has no history fails in one line naming it', async () => {
    const out = join(dir, 'elsewhere.html');
    expect((await runCli(['report', summaryPath, '--out', out])).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<!DOCTYPE html>/);

    const missing = join(dir, 'nothing.json');
    const a = await runCli(['report', missing]);
    expect(a.code).toBe(1);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toContain(`${missing}: no such file or directory`);

    const empty = join(dir, 'empty-dir');
    mkdirSync(empty);
    const b = await runCli(['report', empty]);
    expect(b.code).toBe(1);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(b.stderr).toContain(`${empty}: holds no run history`);
  });

  it('--metrics-csv that cannot be written is refused before training, naming the path', async () => {
    const blocker = join(dir, 'run', 'summary.json'); // a file, so no directory can be made under it
    const path = join(blocker, 'metrics.csv');
    const r = await runCli(['train', '--max-steps', '1', '--train-samples', '64', '--batch-size', '64', '--metrics-csv', path]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`--metrics-csv ${path}`);
    expect(r.stdout).not.toContain('training');
  });
});

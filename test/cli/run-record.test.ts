// The run record of distributed runs (issue 15): `local` writes the history and its configuration
// (workers, balance) to --summary-json, JSON lines to --metrics-csv FILE.jsonl, and history.json to
// --checkpoint-dir, which a --resume continues and `meshgrad report DIR` draws. Also the recorder
// itself: rows written as epochs end, a repeated epoch replaced.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { csvHeader, RunRecorder, type EpochRecord, type RunConfigRecord } from '../../cli/run-record.js';
import { renderReport } from '../../cli/report-command.js';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

const epoch = (n: number, loss: number): EpochRecord => ({ epoch: n, step: n * 10, trainLoss: loss, trainAccuracy: 0.5, valLoss: loss, valAccuracy: 0.4, testLoss: loss, testAccuracy: 0.45, valRmse: null, testRmse: null, lr: 1e-3, seconds: 1 });

describe('RunRecorder', () => {
  it('writes the header at once, a row per epoch as it ends, and replaces an epoch that is run again', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-record-'));
    const csv = join(dir, 'm.csv');
    const recorder = new RunRecorder({ command: 'train' } as RunConfigRecord, { metricsFile: csv });
    expect(readFileSync(csv, 'utf8')).toBe(csvHeader());
    recorder.addEpoch(epoch(1, 2));
    expect(readFileSync(csv, 'utf8').split('\n')).toHaveLength(3); // header, row, ''
    recorder.addEpoch(epoch(2, 1.5));
    recorder.addEpoch(epoch(2, 1.4)); // a resumed run repeats the epoch its checkpoint was in
    await recorder.close();
    expect(recorder.history.map((e) => [e.epoch, e.trainLoss])).toEqual([[1, 2], [2, 1.4]]);
    // The page draws a val curve when there is a validation split: 3 splits × 2 metrics.
    const html = renderReport({ source: 'x', kind: 'summary', config: { dataset: 'fashion-mnist' }, history: recorder.history, summary: {} });
    expect(html.match(/<path class="curve"/g)).toHaveLength(6);
    expect(html).toContain('data-split="val"');
  });
});

describe('local: the record of a distributed run', () => {
  it('--summary-json, --metrics-csv .jsonl and history.json in --checkpoint-dir; --resume continues it; report reads the directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-record-'));
    const ckpt = join(dir, 'ckpt');
    const args = ['local', '--workers', '1', '--threads', '1', '--balance', 'even', '--train-samples', '256', '--test-samples', '100', '--batch-size', '64', '--checkpoint-dir', ckpt, '--summary-json', join(dir, 'summary.json'), '--metrics-csv', join(dir, 'metrics.jsonl')];
    const first = await runCli([...args, '--epochs', '2']);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { steps: number; workersJoined: number; history: EpochRecord[]; config: RunConfigRecord };
    expect(summary.steps).toBe(8);
    expect(summary.workersJoined).toBe(1);
    expect(summary.history.map((e) => [e.epoch, e.step])).toEqual([[1, 4], [2, 8]]);
    for (const e of summary.history) expect(Number.isFinite(e.testAccuracy) && Number.isFinite(e.lr) && Number.isFinite(e.trainLoss)).toBe(true);
    expect(summary.config).toMatchObject({ command: 'local', batchSize: 64, distributed: { workers: 1, balance: 'even', checkpointDir: ckpt, resumed: false } });
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    expect(Object.keys(lines[0])).toEqual(['epoch', 'step', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'test_loss', 'test_accuracy', 'val_rmse', 'test_rmse', 'lr', 'seconds']);
    const kept = JSON.parse(readFileSync(join(ckpt, 'history.json'), 'utf8')) as { history: EpochRecord[] };
    expect(kept.history).toEqual(summary.history);

    // One more epoch from the checkpoint: the history goes on from the two it had.
    const second = await runCli([...args, '--epochs', '3', '--resume']);
    expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
    const resumed = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { history: EpochRecord[]; config: RunConfigRecord };
    expect(resumed.history.map((e) => [e.epoch, e.step])).toEqual([[1, 4], [2, 8], [3, 12]]);
    expect(resumed.history.slice(0, 2)).toEqual(summary.history);
    expect(resumed.config.distributed?.resumed).toBe(true);

    const report = await runCli(['report', ckpt]);
    expect(report.stderr).toBe('');
    expect(report.stdout).toContain(`wrote report of 3 epoch(s) to ${join(ckpt, 'report.html')}`);
    const html = readFileSync(join(ckpt, 'report.html'), 'utf8');
    expect(html).toContain('checkpoint directory');
    expect(html).toMatch(/at step 12\b/);
    expect(html.match(/<path class="curve"/g)).toHaveLength(4);
  }, 120_000);

  it('a checkpoint directory without history.json is named in one line', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-record-'));
    const ckpt = join(dir, 'ckpt');
    const run = await runCli(['local', '--workers', '1', '--threads', '1', '--max-steps', '2', '--train-samples', '128', '--test-samples', '50', '--batch-size', '64', '--checkpoint-dir', ckpt]);
    expect(run.code, run.stderr).toBe(0);
    rmSync(join(ckpt, 'history.json'));
    const r = await runCli(['report', ckpt]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${ckpt}: holds a checkpoint (latest.safetensors, step 2) but no epoch history`);
  }, 60_000);
});

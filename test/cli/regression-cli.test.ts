// Regression from the command line: `train --loss mse` on a CSV's numeric column learns (its test
// RMSE well under the targets' spread), records RMSE per epoch (summary, --metrics-csv, report),
// and `local --workers 2 --loss huber` trains the parameters `train` does.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';
import { relativeDifference } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-regression-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DATA = ['--model', 'examples/data/houses-mlp.json', '--dataset', 'csv:examples/data/houses.csv', '--label', 'price_k'];

function targetsSpread(): number {
  const values = readFileSync('examples/data/houses.csv', 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[3]));
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
}

async function params(file: string): Promise<Map<string, Float32Array>> {
  return new Map([...(await loadCheckpoint(file)).params].map(([k, v]) => [k, v.value]));
}

describe('regression from the CLI', () => {
  it('train --loss mse learns the target and records its RMSE per epoch', async () => {
    const summaryPath = join(dir, 'summary.json');
    const metrics = join(dir, 'm.csv');
    const r = await runCli(['train', ...DATA, '--loss', 'mse', '--lr', '0.1', '--epochs', '40', '--val-fraction', '0.2', '--summary-json', summaryPath, '--metrics-csv', metrics]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/test RMSE [\d.]+, test loss/);
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as { testRmse: number; config: { loss: string }; history: { testRmse: number; valRmse: number; testAccuracy: number | null }[] };
    expect(summary.config.loss).toBe('mse');
    expect(summary.testRmse).toBeLessThan(targetsSpread() / 4);
    expect(summary.history).toHaveLength(40);
    expect(summary.history[0].testRmse).toBeGreaterThan(summary.testRmse);
    expect(summary.history.every((h) => h.testAccuracy === null && h.valRmse > 0)).toBe(true);
    const rows = readFileSync(metrics, 'utf8').trim().split('\n');
    const header = rows[0].split(',');
    expect(Number(rows[40].split(',')[header.indexOf('test_rmse')])).toBeCloseTo(summary.testRmse, 10);
    const report = join(dir, 'report.html');
    const rep = await runCli(['report', summaryPath, '--out', report]);
    expect(rep.code, rep.stderr).toBe(0);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('id="test-rmse"');
    expect(html).toMatch(/class="curve" data-metric="rmse" data-split="test"/);
    expect(html).toMatch(/class="curve" data-metric="rmse" data-split="val"/);
  });

  it('local --workers 2 --loss huber equals train', async () => {
    const run = async (args: string[], file: string): Promise<Map<string, Float32Array>> => {
      const r = await runCli([...args, ...DATA, '--loss', 'huber', '--huber-delta', '5', '--epochs', '3', '--seed', '2', '--threads', '1', '--save', join(dir, file)], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`meshgrad ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      return params(join(dir, file));
    };
    const single = await run(['train'], 'train.safetensors');
    const two = await run(['local', '--workers', '2', '--balance', 'even', '--metrics-port', '0'], 'local.safetensors');
    expect(relativeDifference(two, single)).toBeLessThan(1e-5);
  });

  it('refuses a regression loss on a dataset without numeric targets, before training', async () => {
    const r = await runCli(['train', '--model', 'mlp', '--dataset', 'fashion-mnist', '--loss', 'mse']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('a regression loss (--loss mse or huber) needs numeric targets, which only csv: and tsv: datasets have (their --label column), not fashion-mnist');
  });

  it("checkpoints name a dataset's classes, and a regression run's loss", async () => {
    const iris = join(dir, 'iris.safetensors');
    const r = await runCli(['train', '--model', 'examples/data/iris-mlp.json', '--dataset', 'csv:examples/data/iris.csv', '--label', 'species', '--max-steps', '2', '--save', iris]);
    expect(r.code, r.stderr).toBe(0);
    expect((await loadCheckpoint(iris)).meta).toMatchObject({ numClasses: 3, classNames: ['setosa', 'versicolor', 'virginica'] });
    const houses = join(dir, 'houses.safetensors');
    const h = await runCli(['train', ...DATA, '--loss', 'mse', '--max-steps', '2', '--save', houses]);
    expect(h.code, h.stderr).toBe(0);
    const meta = (await loadCheckpoint(houses)).meta;
    expect(meta).toMatchObject({ numClasses: 1, loss: 'mse' });
    expect(meta.classNames).toEqual([]);
  });
});

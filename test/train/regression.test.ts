// Regression: the mse and Huber losses (float64 finite differences, the naive formulas, shapes
// that would broadcast refused), a regression dataset's targets through training and evaluation
// (RMSE), the objective's checks, and a CSV whose label column is read as numeric targets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryDataset } from '../../shared/data/in-memory.js';
import { openDataset } from '../../shared/data/registry.js';
import { Linear } from '../../shared/nn/layers.js';
import * as F from '../../shared/ops/index.js';
import { computeGradients, evaluate } from '../../shared/train/classify.js';
import { objectiveFor } from '../../shared/train/objective.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-regression-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('regression losses', () => {
  it('mseLoss and huberLoss pass float64 finite-difference checks', () => {
    gradcheck((p, t) => F.mseLoss(p, t), [randInput([5, 2], 1), randInput([5, 2], 2)]);
    gradcheck((p, t) => F.mseLoss(p, t, { normalizer: 3 }), [randInput([4, 1], 3), randInput([4, 1], 4)]);
    // Differences of a few units against delta 1 and 0.5: both branches, away from the kinks.
    gradcheck((p, t) => F.huberLoss(p, t), [randInput([6, 2], 5, 2), randInput([6, 2], 6, 2)]);
    gradcheck((p, t) => F.huberLoss(p, t, { delta: 0.5, normalizer: 7 }), [randInput([3, 3], 7, 2), randInput([3, 3], 8)]);
  });

  it('equal the naive formulas, torch reduction mean', () => {
    const p = [0.5, -2, 3, 0.1];
    const t = [0, 1, -1, 0.1];
    const P = F.tensor(new Float64Array(p), [4, 1]);
    const T = F.tensor(new Float64Array(t), [4, 1]);
    const d = p.map((v, i) => v - t[i]);
    expect(F.mseLoss(P, T).item()).toBeCloseTo(d.reduce((a, v) => a + v * v, 0) / 4, 12);
    const huber = (delta: number): number => d.reduce((a, v) => a + (Math.abs(v) <= delta ? 0.5 * v * v : delta * (Math.abs(v) - 0.5 * delta)), 0) / 4;
    expect(F.huberLoss(P, T).item()).toBeCloseTo(huber(1), 12);
    expect(F.huberLoss(P, T, { delta: 2.5 }).item()).toBeCloseTo(huber(2.5), 12);
  });

  it('refuse a prediction and a target of different shapes (no [N,1] x [N] broadcast)', () => {
    expect(() => F.mseLoss(F.zeros([3, 1]), F.zeros([3]))).toThrow('mseLoss: the prediction [3, 1] and the target [3] differ in shape');
    expect(() => F.huberLoss(F.zeros([2]), F.zeros([2]), { delta: 0 })).toThrow('huberLoss: delta must be a positive number, got 0');
  });
});

describe('regression datasets', () => {
  const rows = Array.from({ length: 9 }, (_, i) => [i / 4, (i % 3) - 1]);
  const targets = rows.map(([a, b]) => [2 * a - b, a + 0.5]);
  const data = new InMemoryDataset({ x: rows, y: targets, task: 'regression', name: 'toy' });

  it('batch their targets beside the features, numClasses of them per sample', () => {
    expect(data.numClasses).toBe(2);
    const b = data.batch([4, 0]);
    expect([...b.targets!]).toEqual([...Float32Array.from([...targets[4], ...targets[0]])]);
    expect(() => new InMemoryDataset({ x: [[1], [2]], y: [1, Number.NaN], task: 'regression', name: 'bad' })).toThrow('bad: target 0 of sample 1 is NaN, expected a finite number');
  });

  it('train with mse and evaluate to the loss and the RMSE', () => {
    const model = new Linear(2, 2, new Rng(1));
    const objective = objectiveFor(data, {});
    expect(objective).toEqual({ loss: 'mse' });
    const r = computeGradients(model, data.batch([0, 1, 2, 3, 4, 5, 6, 7, 8]), objective);
    expect(model.parameters().every((p) => p.grad !== null)).toBe(true);
    const e = evaluate(model, data, 4);
    // The naive figures from the model's own predictions.
    const out = model.forward(F.tensor(Float32Array.from(rows.flat()), [9, 2])).dataSync();
    let sse = 0;
    targets.flat().forEach((t, i) => (sse += (out[i] - t) ** 2));
    expect(e.loss).toBeCloseTo(sse / 18, 4);
    expect(e.rmse).toBeCloseTo(Math.sqrt(sse / 18), 4);
    expect(Number.isNaN(e.accuracy)).toBe(true);
    expect(r.loss).toBeCloseTo(sse / 18, 4);
    const h = evaluate(model, data, 4, { loss: 'huber', huberDelta: 0.5 });
    expect(h.rmse).toBeCloseTo(e.rmse!, 6);
    expect(h.loss).toBeLessThan(e.loss);
  });

  it('the objective refuses a loss of the other task, and smoothing with a regression loss', () => {
    const labels = new InMemoryDataset({ x: [[1], [2]], y: [0, 1], name: 'labels' });
    expect(() => objectiveFor(labels, { loss: 'mse' })).toThrow('--loss mse is a regression loss, but labels holds class labels');
    expect(() => objectiveFor(data, { loss: 'cross-entropy' })).toThrow('--loss cross-entropy: toy holds regression targets; use --loss mse or huber');
    expect(() => objectiveFor(data, { loss: 'huber', labelSmoothing: 0.1 })).toThrow('--label-smoothing 0.1 applies to cross-entropy only, not --loss huber');
  });
});

describe('csv: regression targets', () => {
  it('reads the label column as numbers, unscaled, and names the row and column of a bad one', () => {
    const file = join(dir, 'r.csv');
    writeFileSync(file, 'a,b,price\n1,2,10.5\n2,1,20\n3,3,30\n4,0,40\n5,5,50.25\n');
    const ds = openDataset(`csv:${file}`, { labelColumn: 'price', task: 'regression' });
    expect(ds.train.task).toBe('regression');
    expect(ds.train.numClasses).toBe(1);
    const all = [...ds.train.batch(Array.from({ length: ds.train.size }, (_, i) => i)).targets!, ...ds.test.batch(Array.from({ length: ds.test.size }, (_, i) => i)).targets!];
    expect(all.sort((x, y) => x - y)).toEqual([10.5, 20, 30, 40, 50.25]);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'a,price\n1,2\n2,cheap\n3,4\n');
    expect(() => openDataset(`csv:${bad}`, { task: 'regression' })).toThrow("bad.csv: row 3, column 'price': 'cheap' is not a number (the regression target)");
  });

  it('other datasets have no numeric targets to regress on', () => {
    expect(() => openDataset(`images:${dir}`, { task: 'regression' })).toThrow('a regression loss (--loss mse or huber) needs numeric targets, which only csv: and tsv: datasets have (their --label column), not images:');
    expect(() => openDataset('fashion-mnist', { task: 'regression' })).toThrow('not fashion-mnist');
  });
});

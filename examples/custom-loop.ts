/**
 * Example: a training loop written by hand — forward, loss, backward and an optimizer step — for a
 * small regression (y = 3·x₀ − 2·x₁ + 1 plus noise) with a mean-squared-error loss, then the
 * model saved to a checkpoint and loaded back. In your own project the import is `from 'meshgrad'`.
 *
 *   node dist/examples/custom-loop.js [checkpoint-path]
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, nn, noGrad, ops, optimizerFor, Rng, saveModel } from '../lib/index.js';

const rng = new Rng(3);
const n = 64;
const xs = new Float32Array(n * 2);
const ys = new Float32Array(n);
for (let i = 0; i < n; i++) {
  xs[2 * i] = rng.normal();
  xs[2 * i + 1] = rng.normal();
  ys[i] = 3 * xs[2 * i] - 2 * xs[2 * i + 1] + 1 + 0.01 * rng.normal();
}
const x = ops.tensor(xs, [n, 2]);
const y = ops.tensor(ys, [n, 1]);

const model = new nn.Sequential(new nn.Linear(2, 8, rng), new nn.Tanh(), new nn.Linear(8, 1, rng));
const optimizer = optimizerFor(model, 'sgd', { lr: 0.05, momentum: 0.9 });

let first = NaN;
let last = NaN;
for (let step = 0; step < 200; step++) {
  optimizer.zeroGrad();
  const loss = ops.mse(model.forward(x), y);
  loss.backward();
  optimizer.step();
  last = loss.item();
  if (step === 0) first = last;
}
console.log(`first_loss=${first.toFixed(5)} last_loss=${last.toFixed(5)}`);
if (!(last < first)) throw new Error('the loss did not go down');

// Save, load into a fresh model of the same shape, and check that it predicts the same.
const path = process.argv[2] ?? join(mkdtempSync(join(tmpdir(), 'meshgrad-example-')), 'regression.safetensors');
await saveModel(path, model, { example: 'custom-loop' });
const copy = new nn.Sequential(new nn.Linear(2, 8, rng), new nn.Tanh(), new nn.Linear(8, 1, rng));
const meta = await loadModel(path, copy);
const difference = noGrad(() => ops.max(ops.abs(ops.sub(model.forward(x), copy.forward(x))), [0, 1]).item());
console.log(`saved=${path} meta=${JSON.stringify(meta)} max_difference=${difference}`);
if (difference !== 0) throw new Error('the loaded model predicts differently');

/**
 * Example: a dataset of your own, implementing the Dataset interface: samples generated on demand
 * (noisy 4×4 images of a horizontal or a vertical bar) rather than held in memory, trained with
 * `train` and scored with `evaluate`. In your own project the import is `from 'meshgrad'`.
 *
 *   node dist/examples/custom-dataset.js
 */

import { ensureBatchBuffers } from '../lib/data.js';
import { evaluate, nn, Rng, train, type Batch, type BatchBuffers, type Dataset } from '../lib/index.js';

const SIDE = 4;

/** Sample i is a bar (class 0: horizontal, 1: vertical) at a position and noise fixed by i and the seed. */
class BarsDataset implements Dataset {
  readonly name = 'bars';
  readonly sampleShape = [1, SIDE, SIDE] as const;
  readonly numClasses = 2;

  constructor(
    readonly size: number,
    private readonly seed: number,
  ) {}

  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch {
    const n = indices.length;
    const pixels = SIDE * SIDE;
    const buffers = ensureBatchBuffers(out, n, pixels);
    for (let b = 0; b < n; b++) {
      const index = indices[b];
      if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`bars: index ${index} out of range`);
      const rng = new Rng(this.seed * 1_000_003 + index);
      const label = index % 2;
      const at = rng.int(SIDE);
      for (let r = 0; r < SIDE; r++) {
        for (let c = 0; c < SIDE; c++) {
          const on = label === 0 ? r === at : c === at;
          buffers.x[b * pixels + r * SIDE + c] = (on ? 1 : 0) + 0.2 * rng.normal();
        }
      }
      buffers.y[b] = label;
    }
    return { x: buffers.x.subarray(0, n * pixels), y: buffers.y.subarray(0, n), size: n, sampleShape: this.sampleShape };
  }
}

const rng = new Rng(11);
const model = new nn.Sequential(new nn.Flatten(), new nn.Linear(SIDE * SIDE, 16, rng), new nn.ReLU(), new nn.Linear(16, 2, rng));
const trainSet = new BarsDataset(256, 1);
const testSet = new BarsDataset(64, 2);
const before = evaluate(model, testSet);
const result = await train(model, { train: trainSet, epochs: 5, batchSize: 32, lr: 0.01, seed: 2 });
const after = evaluate(model, testSet);
console.log(`steps=${result.steps} train_loss=${result.trainLoss.toFixed(4)}`);
console.log(`test_accuracy_before=${before.accuracy.toFixed(3)} test_accuracy_after=${after.accuracy.toFixed(3)} test_loss=${after.loss.toFixed(4)}`);

/**
 * Example: a model of your own (a Module subclass) trained with the library's `train`.
 * Two interleaved spirals, generated here, classified by a small MLP whose layers are registered
 * by hand. In your own project the import is `from 'meshgrad'`.
 *
 *   node dist/examples/custom-model.js
 */

import { InMemoryDataset, Module, nn, ops, Rng, train, type Tensor } from '../lib/index.js';

/** x -> relu(x·W1ᵀ + b1) -> relu(·W2ᵀ + b2) -> scores of `classes` classes. */
class SpiralNet extends Module {
  private readonly hidden: nn.Linear;
  private readonly out: nn.Linear;
  /** A parameter registered directly: a learned scale of the input. */
  private readonly inputScale: Tensor;

  constructor(inputs: number, width: number, classes: number, rng: Rng) {
    super();
    this.inputScale = this.registerParameter('input_scale', ops.ones([inputs]));
    this.hidden = this.registerModule('hidden', new nn.Linear(inputs, width, rng, { init: 'kaiming' }));
    this.out = this.registerModule('out', new nn.Linear(width, classes, rng));
  }

  forward(x: Tensor): Tensor {
    return this.out.forward(ops.relu(this.hidden.forward(ops.mul(x, this.inputScale))));
  }
}

/** n points per class on `classes` interleaved spiral arms, with a little noise. */
function spirals(n: number, classes: number, rng: Rng): InMemoryDataset {
  const x: number[][] = [];
  const y: number[] = [];
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < n; i++) {
      const r = i / n;
      const angle = (c * 2 * Math.PI) / classes + r * 4 + rng.normal() * 0.1;
      x.push([r * Math.sin(angle), r * Math.cos(angle)]);
      y.push(c);
    }
  }
  return new InMemoryDataset({ x, y, numClasses: classes, name: 'spirals' });
}

const rng = new Rng(7);
const model = new SpiralNet(2, 32, 3, rng);
const result = await train(model, {
  train: spirals(100, 3, rng),
  test: spirals(30, 3, rng),
  epochs: 20,
  batchSize: 30,
  optimizer: 'adam',
  lr: 0.02,
  seed: 1,
  onEpoch: (e) => {
    if ((e.epoch + 1) % 5 === 0) console.log(`epoch=${e.epoch + 1} train_loss=${e.trainLoss.toFixed(4)} test_accuracy=${e.test.accuracy.toFixed(3)}`);
  },
});
console.log(`steps=${result.steps} test_loss=${result.testLoss.toFixed(4)} test_accuracy=${result.testAccuracy.toFixed(3)}`);
console.log(`parameters=${model.parameterCount()}`);

/**
 * Example: a model written in code for the CLI and distributed training. This file's default
 * export, `defineModel({ name, input, create })`, is what `--module` loads: `meshgrad train
 * --module FILE` trains it in one process, and `meshgrad local --workers 2 --module FILE` (or a
 * coordinator and workers each given the same file) trains it across processes. Compiled to
 * dist/examples/iris-module.js; in your own project the import is `from 'meshgrad'`.
 *
 *   node bin/meshgrad.js local --workers 2 --module dist/examples/iris-module.js \
 *     --dataset csv:examples/data/iris.csv --label species --epochs 5
 *
 * The model: a learned per-feature input scale, then a residual block
 * h = relu(x·W1ᵀ + b1); y = h + relu(h·W2ᵀ + b2), then class scores y·W3ᵀ + b3.
 */

import { defineModel, Module, nn, ops, type Rng, type Tensor } from '../lib/index.js';

class ResidualIrisNet extends Module {
  private readonly inputScale: Tensor;
  private readonly embed: nn.Linear;
  private readonly block: nn.Linear;
  private readonly head: nn.Linear;

  constructor(features: number, width: number, classes: number, rng: Rng) {
    super();
    this.inputScale = this.registerParameter('input_scale', ops.ones([features]));
    this.embed = this.registerModule('embed', new nn.Linear(features, width, rng, { init: 'kaiming' }));
    this.block = this.registerModule('block', new nn.Linear(width, width, rng, { init: 'kaiming' }));
    this.head = this.registerModule('head', new nn.Linear(width, classes, rng));
  }

  forward(x: Tensor): Tensor {
    const h = ops.relu(this.embed.forward(ops.mul(x, this.inputScale)));
    return this.head.forward(ops.add(h, ops.relu(this.block.forward(h))));
  }
}

export default defineModel({
  name: 'residual-iris',
  input: [4],
  defaults: { optimizer: 'adam', lr: 0.01, batchSize: 16 },
  create: ({ input, numClasses, rng }) => new ResidualIrisNet(input[0], 16, numClasses, rng),
});

/**
 * Basic layers: Linear, Conv2d, MaxPool2d, Sequential, Flatten, Dropout and the activation modules.
 * Layers with parameters take `dtype` and `backend` in their options (LayerPlacement), as every
 * layer in shared/nn does: initial values are drawn in float32 from the seeded generator and
 * stored in that dtype on that backend.
 */

import { dropout } from '../ops/dropout.js';
import { gelu, geluTanh, leakyRelu, relu, sigmoid, softmax, tanh } from '../ops/activations.js';
import { flatten } from '../ops/layout.js';
import { linear } from '../ops/matmul.js';
import { avgPool2d, conv2d, maxPool2d, type Pair } from '../ops/conv.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';
import { kaimingUniform, uniformTensor, xavierUniform } from './init.js';
import { Module, placed, type LayerPlacement } from './module.js';

export type LinearInit = 'default' | 'kaiming' | 'xavier';

export interface LinearOptions extends LayerPlacement {
  readonly bias?: boolean;
  /**
   * 'default' is PyTorch's nn.Linear reset: kaiming_uniform(a=√5) for the weight, i.e.
   * U(±1/√in), and U(±1/√in) for the bias. 'kaiming' is He for ReLU; 'xavier' is Glorot; both zero the bias.
   */
  readonly init?: LinearInit;
}

/** y = x·Wᵀ + b, W stored [out, in] as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, options: LinearOptions = {}) {
    super();
    for (const [n, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`Linear: ${n} must be a positive integer, got ${v}`);
    }
    const shape = [outFeatures, inFeatures];
    const init = options.init ?? 'default';
    const w = init === 'xavier' ? xavierUniform(shape, rng) : init === 'kaiming' ? kaimingUniform(shape, rng, 'relu') : kaimingUniform(shape, rng);
    this.weight = this.registerParameter('weight', placed(w, options, 'Linear'));
    if (options.bias ?? true) {
      const b = init === 'default' ? uniformTensor([outFeatures], 1 / Math.sqrt(inFeatures), rng) : uniformTensor([outFeatures], 0, rng);
      this.bias = this.registerParameter('bias', placed(b, options, 'Linear'));
    } else this.bias = null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Runs its children in order; they are named "0", "1", … as in torch.nn.Sequential. */
export class Sequential extends Module {
  readonly layers: readonly Module[];
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => this.registerModule(String(i), m));
    this.layers = layers;
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.layers) h = m.forward(h);
    return h;
  }
}

export class Flatten extends Module {
  constructor(readonly startAxis = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startAxis);
  }
}

/** Inverted dropout: zeroes with probability p in training and scales the rest by 1/(1−p). */
export class Dropout extends Module {
  private readonly rng: Rng;
  constructor(readonly p: number, rng: Rng) {
    super();
    this.rng = this.registerRandomStream(rng);
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return this.training ? dropout(x, this.p, this.rng) : x;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.approximate === 'tanh' ? geluTanh(x) : gelu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Softmax extends Module {
  constructor(readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}

export interface Conv2dLayerOptions extends LayerPlacement {
  readonly stride?: Pair;
  readonly padding?: Pair;
  readonly dilation?: Pair;
  readonly bias?: boolean;
}

/**
 * 2-D convolution with weight [out, in, kh, kw] and bias [out], initialised as torch.nn.Conv2d:
 * U(±1/√fanIn) for both, fanIn = in·kh·kw (kaiming_uniform with a = √5).
 */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernel: [number, number];

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: Pair, rng: Rng, readonly options: Conv2dLayerOptions = {}) {
    super();
    this.kernel = typeof kernel === 'number' ? [kernel, kernel] : [kernel[0], kernel[1]];
    for (const [n, v] of [['inChannels', inChannels], ['outChannels', outChannels], ['kernel height', this.kernel[0]], ['kernel width', this.kernel[1]]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`Conv2d: ${n} must be a positive integer, got ${v}`);
    }
    const shape = [outChannels, inChannels, ...this.kernel];
    this.weight = this.registerParameter('weight', placed(kaimingUniform(shape, rng), options, 'Conv2d'));
    const bound = 1 / Math.sqrt(inChannels * this.kernel[0] * this.kernel[1]);
    this.bias = options.bias ?? true ? this.registerParameter('bias', placed(uniformTensor([outChannels], bound, rng), options, 'Conv2d')) : null;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernel: Pair, readonly options: { stride?: Pair; padding?: Pair } = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernel, this.options);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernel: Pair, readonly options: { stride?: Pair; padding?: Pair } = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernel, this.options);
  }
}

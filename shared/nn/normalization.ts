/**
 * Batch normalisation (Ioffe & Szegedy) with PyTorch's conventions: `weight` (γ, ones) and `bias`
 * (β, zeros) per channel; buffers `running_mean` (zeros), `running_var` (ones) and
 * `num_batches_tracked` (an integral float here, int64 in PyTorch and in checkpoints, which save
 * every buffer beside the parameters). In training, each channel is normalised with its batch
 * mean and biased variance, and the running statistics move by `momentum` towards the batch mean
 * and the *unbiased* variance (n/(n−1) times the biased one), as torch does; in evaluation the
 * running statistics are used. In a distributed run each worker normalises with its own shard's statistics
 * (like DDP without SyncBatchNorm), and the coordinator averages the workers' running statistics
 * every step, weighted by their samples, and sends them back with the parameters
 * (docs/protocol.md, "Buffers"). Parameters and buffers are created in the options' `dtype` on
 * their `backend` (LayerPlacement).
 */

import { add, div, mean, mul, noGrad, ones, reshape, sqrt, sub, zeros } from '../ops/index.js';
import { formatShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { resolveBackend } from '../backend/default.js';
import { Module, type LayerPlacement } from './module.js';

export interface BatchNormOptions extends LayerPlacement {
  readonly eps?: number;
  readonly momentum?: number;
  readonly affine?: boolean;
}

abstract class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  protected constructor(readonly numFeatures: number, options: BatchNormOptions, private readonly ranks: readonly number[]) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures <= 0) throw new RangeError(`BatchNorm: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    const dtype = options.dtype ?? 'float32';
    const at = { dtype, backend: resolveBackend(dtype, options.backend, this.constructor.name) };
    this.weight = affine ? this.registerParameter('weight', ones([numFeatures], at)) : null;
    this.bias = affine ? this.registerParameter('bias', zeros([numFeatures], at)) : null;
    this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures], at));
    this.runningVar = this.registerBuffer('running_var', ones([numFeatures], at));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', zeros([], at), { integer: true });
  }

  forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.rank) || x.shape[1] !== this.numFeatures) {
      throw new RangeError(`${this.constructor.name}(${this.numFeatures}) expects [N, ${this.numFeatures}${x.rank > 2 ? ', …' : ''}] of rank ${this.ranks.join(' or ')}, got ${formatShape(x.shape)}`);
    }
    // Statistics over every axis but the channel axis 1; γ, β and the statistics broadcast as [C, 1, …].
    const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const perChannel = [this.numFeatures, ...x.shape.slice(2).map(() => 1)];
    let mu: Tensor;
    let variance: Tensor;
    if (this.training) {
      const count = x.size / this.numFeatures;
      if (count < 2) throw new RangeError(`${this.constructor.name}: training needs more than one value per channel, got input ${formatShape(x.shape)}`);
      mu = mean(x, axes, { keepDims: true });
      const centred = sub(x, mu);
      variance = mean(mul(centred, centred), axes, { keepDims: true });
      this.track(mu, variance, count);
    } else {
      mu = reshape(this.runningMean, perChannel);
      variance = reshape(this.runningVar, perChannel);
    }
    let y = div(sub(x, mu), sqrt(add(variance, this.eps)));
    if (this.weight && this.bias) y = add(mul(y, reshape(this.weight, perChannel)), reshape(this.bias, perChannel));
    return y;
  }

  /** running ← (1 − m)·running + m·batch, with the unbiased batch variance; in place, outside the graph. */
  private track(mu: Tensor, variance: Tensor, count: number): void {
    noGrad(() => {
      const m = this.momentum;
      const unbiasOnDevice = count / (count - 1);
      if (this.runningMean.backend.readSync(this.runningMean.buffer) === null) {
        // On a device backend the update runs there, as ops written into the buffers in place
        // (float32 roundings after each product, where the host loop below rounds once).
        const assign = (dst: Tensor, src: Tensor) => dst.backend.assign(dst.buffer, src.buffer);
        assign(this.runningMean, add(mul(this.runningMean, 1 - m), mul(reshape(mu, [this.numFeatures]), m)));
        assign(this.runningVar, add(mul(this.runningVar, 1 - m), mul(reshape(variance, [this.numFeatures]), m * unbiasOnDevice)));
        assign(this.numBatchesTracked, add(this.numBatchesTracked, 1));
        return;
      }
      const bm = mu.dataSync();
      const bv = variance.dataSync();
      const rm = this.runningMean.dataSync();
      const rv = this.runningVar.dataSync();
      const unbias = count / (count - 1);
      for (let c = 0; c < this.numFeatures; c++) {
        rm[c] = (1 - m) * rm[c] + m * bm[c];
        rv[c] = (1 - m) * rv[c] + m * bv[c] * unbias;
      }
      this.numBatchesTracked.dataSync()[0] += 1;
    });
  }
}

/** Over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options, [2, 3]);
  }
}

/** Over [N, C, H, W]. */
export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options, [4]);
  }
}

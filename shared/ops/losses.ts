/**
 * Loss functions, composed from primitives (crossEntropy from the fused logSoftmax). Each returns
 * the mean over the batch (PyTorch's reduction='mean').
 */

import { formatShape, sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from './create.js';
import { abs, add, exp, gt, le, log, mul, neg, sub, where } from './elementwise.js';
import { logSoftmax } from './activations.js';
import { mean, sum } from './reduce.js';

export interface CrossEntropyOptions {
  /** ε in [0, 1): the target becomes (1 − ε)·onehot + ε/C, as torch's label_smoothing. */
  readonly labelSmoothing?: number;
  /**
   * Divide the summed loss by this instead of the batch size. Data-parallel workers pass the global
   * batch size, so that their shard's gradient is exactly its share of the global mean gradient,
   * computed with the same per-sample values as one process would use.
   */
  readonly normalizer?: number;
}

/**
 * Cross-entropy of logits [N, C] against integer classes [N]: −mean_n Σ_c q_nc·log softmax(x)_nc,
 * with q the (optionally smoothed) one-hot target. The target distribution is built as a constant
 * tensor, so the only gradient path is through logSoftmax: d/dx = softmax(x) − q, per row / N.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array | readonly number[], options: CrossEntropyOptions = {}): Tensor {
  if (logits.rank !== 2) throw new RangeError(`crossEntropy: logits must be [batch, classes], got ${formatShape(logits.shape)}`);
  const [n, c] = logits.shape;
  if (targets.length !== n) throw new RangeError(`crossEntropy: ${targets.length} targets for a batch of ${n}`);
  const eps = options.labelSmoothing ?? 0;
  const normalizer = options.normalizer ?? n;
  if (!(normalizer > 0)) throw new RangeError(`crossEntropy: normalizer must be positive, got ${normalizer}`);
  if (!(eps >= 0 && eps < 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1), got ${eps}`);
  const q = new (logits.dtype === 'float32' ? Float32Array : Float64Array)(n * c);
  if (eps > 0) q.fill(eps / c);
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    if (!Number.isInteger(t) || t < 0 || t >= c) throw new RangeError(`crossEntropy: target ${t} at position ${i} is not a class in [0, ${c})`);
    q[i * c + t] += 1 - eps;
  }
  const target = tensor(q, [n, c], { backend: logits.backend, dtype: logits.dtype });
  // One fused logSoftmax node (its backward is gy − softmax·Σgy), then a weighted sum; −(s·(1/N))
  // is written s·(−1/N), which is the same number (negation is exact) one op sooner.
  return mul(sum(mul(target, logSoftmax(logits, -1))), -1 / normalizer);
}

/** Mean squared error. */
export function mse(prediction: Tensor, target: Tensor): Tensor {
  const d = sub(prediction, target);
  return mean(mul(d, d));
}

export interface RegressionLossOptions {
  /**
   * Divide the summed loss by this instead of the number of elements (torch's reduction='mean').
   * Data-parallel workers pass the global batch's element count, as for crossEntropy.
   */
  readonly normalizer?: number;
}

/**
 * The two sides of a regression loss must have one shape: broadcasting a [N, 1] prediction
 * against a [N] target would silently compare every prediction with every target ([N, N]).
 */
function checkRegressionShapes(name: string, prediction: Tensor, target: Tensor, options: RegressionLossOptions): number {
  if (!sameShape(prediction.shape, target.shape)) throw new RangeError(`${name}: the prediction ${formatShape(prediction.shape)} and the target ${formatShape(target.shape)} differ in shape`);
  const normalizer = options.normalizer ?? prediction.size;
  if (!(normalizer > 0)) throw new RangeError(`${name}: normalizer must be positive, got ${normalizer}`);
  return normalizer;
}

/**
 * Mean squared error Σ(p − t)² / normalizer (default the element count, torch's mse_loss).
 * d/dp = 2(p − t) / normalizer, through sub and mul.
 */
export function mseLoss(prediction: Tensor, target: Tensor, options: RegressionLossOptions = {}): Tensor {
  const normalizer = checkRegressionShapes('mseLoss', prediction, target, options);
  const d = sub(prediction, target);
  return mul(sum(mul(d, d)), 1 / normalizer);
}

/**
 * Huber loss (torch.nn.HuberLoss with `delta` δ > 0): per element, with d = p − t,
 *   ½d²           where |d| ≤ δ
 *   δ(|d| − ½δ)   beyond,
 * summed and divided by the normalizer. It is written ½q² + δ(|d| − q) with q = min(|d|, δ),
 * which is both branches at once: q = |d| gives ½d², q = δ gives δ|d| − ½δ². The gradient is
 * d inside (q·q' + δ(a' − q') with q' = a' = sign d) and δ·sign(d) beyond (q constant): squared
 * error's pull near the target, absolute error's bounded pull from outliers; at d = 0, sign is 0.
 */
export function huberLoss(prediction: Tensor, target: Tensor, options: RegressionLossOptions & { readonly delta?: number } = {}): Tensor {
  const normalizer = checkRegressionShapes('huberLoss', prediction, target, options);
  const delta = options.delta ?? 1;
  if (!(delta > 0) || !Number.isFinite(delta)) throw new RangeError(`huberLoss: delta must be a positive number, got ${delta}`);
  const a = abs(sub(prediction, target));
  const q = where(le(a, delta), a, delta);
  return mul(sum(add(mul(mul(q, q), 0.5), mul(sub(a, q), delta))), 1 / normalizer);
}

/**
 * Binary cross-entropy on logits x with targets y in [0, 1]:
 *   −[y log σ(x) + (1−y) log(1−σ(x))] = max(x, 0) − x·y + log(1 + e^(−|x|)).
 * The right-hand form never exponentiates a positive number, so it cannot overflow.
 */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  const relu = mul(logits, gt(logits, 0));
  return mean(add(sub(relu, mul(logits, target)), log(add(exp(neg(abs(logits))), 1))));
}

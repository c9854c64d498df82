/**
 * Loss functions, composed from primitives (crossEntropy from the fused logSoftmax). Each returns
 * the mean over the batch (PyTorch's reduction='mean').
 */

import { formatShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from './create.js';
import { abs, add, exp, gt, log, mul, neg, sub } from './elementwise.js';
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

/**
 * Binary cross-entropy on logits x with targets y in [0, 1]:
 *   −[y log σ(x) + (1−y) log(1−σ(x))] = max(x, 0) − x·y + log(1 + e^(−|x|)).
 * The right-hand form never exponentiates a positive number, so it cannot overflow.
 */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  const relu = mul(logits, gt(logits, 0));
  return mean(add(sub(relu, mul(logits, target)), log(add(exp(neg(abs(logits))), 1))));
}

/**
 * Inverted dropout: y = x·m/(1−p) with m ~ Bernoulli(1−p) drawn from a seeded RNG. The mask is a
 * constant, so the backward rule is the same multiplication; scaling at training time keeps the
 * expected activation unchanged, and evaluation needs no rescaling.
 */

import { shapeSize } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';
import { tensor } from './create.js';
import { mul } from './elementwise.js';

export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const scale = 1 / (1 - p);
  const mask = x.dtype === 'float32' ? new Float32Array(shapeSize(x.shape)) : new Float64Array(shapeSize(x.shape));
  for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() >= p ? scale : 0;
  return mul(x, tensor(mask, x.shape, { backend: x.backend, dtype: x.dtype }));
}

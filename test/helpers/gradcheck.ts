/**
 * Finite-difference gradient checking in float64. The function's output is contracted with fixed
 * random weights (so every output element matters, and a wrong gradient cannot cancel out), the
 * analytic gradient comes from backward(), and the numeric one from central differences
 * (f(x+h) − f(x−h)) / 2h, whose error is O(h²) ≈ 1e-12 relative for smooth functions at h = 1e-6.
 */

import { expect } from 'vitest';
import { mul, noGrad, randn, sum, tensor } from '../../shared/ops/index.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';

export interface GradcheckOptions {
  readonly eps?: number;
  readonly atol?: number;
  readonly rtol?: number;
  /** Indices of inputs to check (default: all). */
  readonly check?: readonly number[];
}

export function randInput(shape: readonly number[], seed: number, scale = 1, offset = 0): Tensor {
  const t = randn(shape, new Rng(seed), { dtype: 'float64', std: scale, mean: offset });
  t.requiresGrad = true;
  return t;
}

export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): void {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-7;
  const rtol = options.rtol ?? 1e-5;
  const check = options.check ?? inputs.map((_, i) => i);
  for (const x of inputs) {
    if (x.dtype !== 'float64') throw new Error('gradcheck needs float64 inputs');
    x.grad = null;
  }
  const probe = noGrad(() => fn(...inputs));
  const weights = randn(probe.shape, new Rng(12345), { dtype: 'float64' });
  const objective = (): number => noGrad(() => sum(mul(fn(...inputs), weights)).item());

  const loss = sum(mul(fn(...inputs), weights));
  loss.backward();

  for (const i of check) {
    const x = inputs[i];
    const data = x.dataSync();
    const analytic = x.grad ? x.grad.dataSync() : new Float64Array(x.size);
    for (let j = 0; j < data.length; j++) {
      const orig = data[j];
      data[j] = orig + eps;
      const fp = objective();
      data[j] = orig - eps;
      const fm = objective();
      data[j] = orig;
      const numeric = (fp - fm) / (2 * eps);
      const tol = atol + rtol * Math.abs(numeric);
      if (!(Math.abs(analytic[j] - numeric) <= tol)) {
        expect.fail(`input ${i} element ${j}: analytic ${analytic[j]} vs numeric ${numeric} (tolerance ${tol})`);
      }
    }
  }
}

export { tensor };

/**
 * Gradient clipping by global L2 norm, like torch.nn.utils.clip_grad_norm_: the norm is taken over
 * all gradients together (‖g‖ = √Σ g_i²), and when it exceeds maxNorm every gradient is scaled by
 * maxNorm / (‖g‖ + 1e-6) — the 1e-6 keeps the scale finite for a zero norm and leaves the clipped
 * norm just below maxNorm.
 */

import type { ParamSlot } from './types.js';

/** Anything with a gradient; a ParamSlot qualifies. */
export type HasGrad = Pick<ParamSlot, 'grad'>;

/**
 * Scales the grads in place so their global L2 norm is at most maxNorm, and returns the norm
 * before clipping. Null grads are ignored. The sum of squares is accumulated in float64 (float32
 * would overflow for norms above ~1.8e19 and lose precision over millions of elements). A
 * non-finite norm (NaN or Infinity in a grad) is returned with the grads left untouched, so the
 * caller can skip the step; PyTorch would instead multiply them by NaN.
 */
export function clipGradNorm(params: readonly HasGrad[], maxNorm: number): number {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new RangeError(`clipGradNorm: maxNorm must be a positive finite number, got ${String(maxNorm)}`);
  }
  const norm = gradNorm(params);
  if (!Number.isFinite(norm)) return norm;
  const scale = maxNorm / (norm + 1e-6);
  if (scale < 1) {
    for (const { grad } of params) {
      if (grad === null) continue;
      for (let i = 0; i < grad.length; i++) grad[i] *= scale;
    }
  }
  return norm;
}

/** The global L2 norm of all grads together (null grads ignored), accumulated in float64. */
export function gradNorm(params: readonly HasGrad[]): number {
  let sumSq = 0;
  for (const { grad } of params) {
    if (grad === null) continue;
    for (let i = 0; i < grad.length; i++) sumSq += grad[i] * grad[i];
  }
  return Math.sqrt(sumSq);
}

/**
 * The per-element optimizer updates as reference kernels: the loops the host optimizers run
 * (shared/optim/adam.ts, sgd.ts) and the CPU backend's `adamUpdate` / `sgdUpdate` primitives, so
 * a device backend (WebGPU) implements the same table and is tested against these.
 *
 * The step's scalars (bias corrections, shrink factor) are formed once per parameter in float64 by
 * `adamArgs` (shared by every caller); each stored value (moment, buffer) is rounded to float32
 * explicitly before it is used, as PyTorch stores and then reads float32 state.
 */

import type { AdamArgs } from './vector-ops.js';

/** One SGD update's scalars (PyTorch's torch.optim.SGD). */
export interface SgdArgs {
  readonly lr: number;
  readonly momentum: number;
  /** 1 − dampening. */
  readonly keep: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  /** The parameter's first step with momentum: the buffer starts as the gradient itself. */
  readonly first: boolean;
}

/** The scalars of Adam's update at the parameter's step t (1 on its first update). */
export function adamArgs(lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, t: number): AdamArgs {
  return {
    beta1,
    beta2,
    oneMinusBeta1: 1 - beta1,
    oneMinusBeta2: 1 - beta2,
    eps,
    l2: decoupled ? 0 : weightDecay,
    shrink: decoupled ? 1 - lr * weightDecay : 1,
    stepSize: lr / (1 - Math.pow(beta1, t)),
    bias2Sqrt: Math.sqrt(1 - Math.pow(beta2, t)),
  };
}

/**
 * Adam/AdamW in place: p ← p·shrink, g' = g + l2·p, m ← β1·m + (1 − β1)·g', v ← β2·v + (1 − β2)·g'²,
 * p ← p − stepSize·m / (√v / √(1 − β2^t) + eps).
 */
export function adamUpdateReference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, args: AdamArgs): void {
  const n = p.length;
  if (args.shrink !== 1) for (let i = 0; i < n; i++) p[i] *= args.shrink;
  const { beta1, beta2, oneMinusBeta1: a1, oneMinusBeta2: a2, eps, l2, stepSize, bias2Sqrt } = args;
  for (let i = 0; i < n; i++) {
    const gi = g[i] + l2 * p[i];
    // Round to float32 explicitly: the update must use exactly the stored moments (an
    // assignment expression would yield the unrounded float64 value instead).
    const mi = Math.fround(beta1 * m[i] + a1 * gi);
    const vi = Math.fround(beta2 * v[i] + a2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    // vi ≥ 0 always (a sum of non-negative terms), so the sqrt is real; with eps = 0 and a zero
    // gradient history the quotient is 0/0 = NaN, exactly as in PyTorch.
    p[i] -= (stepSize * mi) / (Math.sqrt(vi) / bias2Sqrt + eps);
  }
}

/**
 * SGD in place: g' = g + wd·p; without momentum p ← p − lr·g'; with it b ← g' (first step) or
 * b ← μ·b + (1 − dampening)·g', then p ← p − lr·(nesterov ? g' + μ·b : b). `buf` is null without momentum.
 */
export function sgdUpdateReference(p: Float32Array, g: Float32Array, buf: Float32Array | null, args: SgdArgs): void {
  const n = p.length;
  const { lr, momentum, keep, nesterov, weightDecay, first } = args;
  if (buf === null) {
    for (let i = 0; i < n; i++) p[i] -= lr * (g[i] + weightDecay * p[i]);
    return;
  }
  for (let i = 0; i < n; i++) {
    const gi = g[i] + weightDecay * p[i];
    // Trap: `x = buf[i] = expr` would give x the unrounded float64 value; round explicitly so
    // the update uses exactly the float32 buffer that is stored, as PyTorch does.
    const bi = Math.fround(first ? gi : momentum * buf[i] + keep * gi);
    buf[i] = bi;
    p[i] -= lr * (nesterov ? gi + momentum * bi : bi);
  }
}

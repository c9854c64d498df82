/**
 * Gradient aggregation. Each worker returns the gradient of its shard's summed loss divided by the
 * step's global batch size N (the `batchSize` of its assignment), so the step's gradient — the mean
 * over the global batch — is the plain sum of the contributions:
 *
 *   ∇ (1/N) Σ_n ℓ_n  =  Σ_k ∇ (1/N) Σ_{n ∈ shard k} ℓ_n
 *
 * Scaling by 1/N inside each worker (rather than averaging per-shard means weighted by n_k / N)
 * gives every per-sample intermediate the exact value one process would compute on the whole batch;
 * only the final sum over samples is split. Adam divides by √v̂, which turns last-bit differences in
 * near-zero gradients into lr-sized steps, so this matters for reproducing single-process runs.
 * Shards are summed in shard order (not arrival order), in float64, rounded once.
 */

import type { ParamSlot } from '../shared/optim/types.js';
import type { VectorOps } from '../shared/optim/vector-ops.js';

export interface Contribution {
  readonly samples: number;
  /** The worker's reported compute time for this shard. */
  readonly computeMs: number;
  /** One gradient per parameter, in parameter order. */
  readonly grads: readonly Float32Array[];
  /** The worker's buffers (BatchNorm running statistics) after the step, in buffer order. */
  readonly buffers?: readonly Float32Array[];
}

/**
 * Buffers are averaged over the workers, weighted by their samples (as running statistics of the
 * whole batch would be, to first order), and written into the coordinator's own buffers.
 * Integer buffers (`integer[j]`: BatchNorm's num_batches_tracked, int64 in checkpoints) are
 * counters, not statistics: they take the smallest value reported. Every worker starts a step
 * from the same buffers, so that is the step's start plus its one batch, even when a worker that
 * computed two shards of the step (one reassigned to it) counted both; an average would then be
 * fractional.
 */
export function averageBuffers(targets: readonly Float32Array[], contributions: readonly Contribution[], integer: readonly boolean[] = []): void {
  const total = contributions.reduce((s, c) => s + c.samples, 0);
  targets.forEach((out, j) => {
    if (integer[j]) {
      for (let i = 0; i < out.length; i++) {
        let least = Infinity;
        for (const c of contributions) least = Math.min(least, c.buffers?.[j]?.[i] ?? out[i]);
        if (least !== Infinity) out[i] = least;
      }
      return;
    }
    for (let i = 0; i < out.length; i++) {
      let acc = 0;
      for (const c of contributions) acc += (c.samples / total) * (c.buffers?.[j]?.[i] ?? out[i]);
      out[i] = acc;
    }
  });
}

/** Writes Σ_k g_k into each slot's grad buffer (allocated once, reused every step). */
export function sumInto(slots: ParamSlot[], contributions: readonly Contribution[], scratch: Float64Array[] = [], ops?: VectorOps): number {
  if (contributions.length === 0) throw new RangeError('no contributions to sum');
  slots.forEach((slot, p) => {
    let out = slot.grad;
    if (out === null || out.length !== slot.value.length) out = slot.grad = ops ? ops.alloc(slot.value.length) : new Float32Array(slot.value.length);
    const n = out.length;
    if (contributions.length === 1) {
      out.set(contributions[0].grads[p]);
      return;
    }
    if (ops?.sum(out, contributions.map((c) => c.grads[p]))) return;
    let acc = scratch[p];
    if (!acc || acc.length !== n) acc = scratch[p] = new Float64Array(n);
    const first = contributions[0].grads[p];
    for (let i = 0; i < n; i++) acc[i] = first[i];
    for (let k = 1; k < contributions.length; k++) {
      const g = contributions[k].grads[p];
      for (let i = 0; i < n; i++) acc[i] += g[i];
    }
    for (let i = 0; i < n; i++) out[i] = acc[i];
  });
  return contributions.reduce((s, c) => s + c.samples, 0);
}

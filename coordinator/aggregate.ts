/**
 * Gradient averaging: the step's gradient is Σ_s (n_s / N)·g_s over the shards s of the global
 * batch, where g_s is a worker's mean gradient over its n_s samples and N = Σ n_s — exactly the mean
 * gradient over the whole batch, as one process would compute it. Shards are summed in shard order
 * (not arrival order) so that a run is reproducible whatever the network timing.
 */

import type { ParamSlot } from '../shared/optim/types.js';

export interface Contribution {
  readonly samples: number;
  /** The worker's reported compute time for this shard. */
  readonly computeMs: number;
  /** One gradient per parameter, in parameter order. */
  readonly grads: readonly Float32Array[];
}

/** Writes the weighted mean of `contributions` into each slot's grad buffer (allocated once). */
export function averageInto(slots: ParamSlot[], contributions: readonly Contribution[]): number {
  const total = contributions.reduce((s, c) => s + c.samples, 0);
  if (total <= 0) throw new RangeError('no samples to average');
  slots.forEach((slot, p) => {
    let out = slot.grad;
    if (out === null || out.length !== slot.value.length) out = slot.grad = new Float32Array(slot.value.length);
    const n = out.length;
    contributions.forEach((c, k) => {
      const g = c.grads[p];
      const w = c.samples / total;
      if (k === 0) for (let i = 0; i < n; i++) out[i] = w * g[i];
      else for (let i = 0; i < n; i++) out[i] += w * g[i];
    });
  });
  return total;
}

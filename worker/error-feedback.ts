/**
 * Error feedback for compressed gradients: per parameter a residual r of what compression has not
 * yet delivered. Each shard sends Q(g + r) and keeps r ← (g + r) − deQ(Q(g + r)), so what rounding
 * (or int8's coarse steps) drops from one gradient goes out with a later one instead of being
 * lost: summed over steps, the coordinator receives the gradients to within one rounding.
 */

import { fromWireFloat, TensorCompressor, type CompressedMode, type WireTensor } from '../shared/protocol/index.js';

export class ErrorFeedback {
  private readonly residual: Float32Array[];
  /** What the receiver will decode, per parameter (reused every shard). */
  private readonly decoded: Float32Array[];
  private readonly compressors: TensorCompressor[];

  constructor(readonly mode: CompressedMode, lengths: readonly number[]) {
    this.residual = lengths.map((n) => new Float32Array(n));
    this.decoded = lengths.map((n) => new Float32Array(n));
    this.compressors = lengths.map((n) => new TensorCompressor(mode, n));
  }

  /**
   * Parameter i's gradient as a compressed wire tensor (valid until the next call for i: the
   * message must be encoded at once), with the residual carried in and the new one kept.
   */
  encode(i: number, grad: Float32Array, shape: readonly number[]): WireTensor {
    const r = this.residual[i];
    for (let j = 0; j < r.length; j++) r[j] += grad[j];
    const t = this.compressors[i].encode(r, shape);
    const sent = fromWireFloat(t, `gradient ${i}`, this.mode, this.decoded[i]);
    for (let j = 0; j < r.length; j++) {
      // Trap: a value fp16 cannot hold (|x| > 65504) goes out as ±Inf, and the coordinator refuses
      // the contribution; Inf − Inf would leave NaN here for good, so that residual starts afresh.
      const left = r[j] - sent[j];
      r[j] = Number.isFinite(left) ? left : 0;
    }
    return t;
  }

  /** Forgets the residuals (a new session: what was owed to the last one is not this run's). */
  reset(): void {
    for (const r of this.residual) r.fill(0);
  }
}

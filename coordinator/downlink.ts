/**
 * The compressed downlink. The coordinator keeps `view`, float32 per parameter, equal bit for bit
 * to what every worker holds. After each optimizer step it sends delta = Q(params − view) and
 * applies view += deQ(delta) exactly as the workers do (addDelta), so what compression has not
 * yet delivered stays in params − view and goes out with a later step. The coordinator's own
 * parameters and optimizer state stay exact float32; a worker that joins mid-run is welcomed with
 * `view`, not with them.
 */

import { addDelta, fromWireFloat, TensorCompressor, type CompressedMode, type WireTensor } from '../shared/protocol/index.js';

export class ParamView {
  private readonly values: Float32Array[];
  private readonly diff: Float32Array[];
  private readonly decoded: Float32Array[];
  private readonly compressors: TensorCompressor[];

  constructor(readonly mode: CompressedMode, params: readonly Float32Array[]) {
    this.values = params.map((p) => Float32Array.from(p));
    this.diff = params.map((p) => new Float32Array(p.length));
    this.decoded = params.map((p) => new Float32Array(p.length));
    this.compressors = params.map((p) => new TensorCompressor(mode, p.length));
  }

  /** The parameters the workers hold, in parameter order (live arrays: do not write). */
  get current(): readonly Float32Array[] {
    return this.values;
  }

  /**
   * The update messages for `params`: one compressed tensor per parameter, valid until the next
   * call (encode the message at once). The view advances by what the workers will decode.
   * `params` may be a bucket: the parameters `offset`, `offset + 1`, ... of the model.
   */
  delta(params: readonly Float32Array[], shapes: readonly (readonly number[])[], offset = 0): WireTensor[] {
    return params.map((p, j) => {
      const i = offset + j;
      const v = this.values[i];
      const d = this.diff[i];
      for (let j = 0; j < d.length; j++) d[j] = p[j] - v[j];
      const t = this.compressors[i].encode(d, shapes[j]);
      addDelta(v, fromWireFloat(t, `parameter ${i}`, this.mode, this.decoded[i]));
      return t;
    });
  }
}

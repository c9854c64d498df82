/**
 * Turning a worker's `gradients` message into a contribution, or refusing it with the protocol
 * error that names what is wrong. Nothing here touches the run's state: a refused message leaves
 * the parameters exactly as they were.
 */

import { ProtocolError } from '../shared/protocol/errors.js';
import type { GradientsMessage } from '../shared/protocol/messages.js';
import { fromWireFloat, type CompressionMode } from '../shared/protocol/wire-compressed.js';
import { fromWireFloat32, type WireTensor } from '../shared/protocol/wire-tensor.js';
import type { Shape } from '../shared/tensor/shape.js';
import type { Contribution } from './aggregate.js';

export interface ParamInfo {
  readonly name: string;
  readonly shape: Shape;
  /** A buffer PyTorch holds as int64 (num_batches_tracked): its values must be whole counts. */
  readonly integer?: boolean;
}

function allFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/**
 * Validates and decodes gradient tensors for `params` (the parameters `offset`, `offset + 1`, ...
 * of the model: a bucket, or all of them); `allocate(i, n)` supplies the array for parameter
 * `offset + i`. Errors name the model's parameter index. Gradients may come in float32 or the
 * run's `compression` dtype (decoded to float32, then held to the same finiteness check).
 */
export function decodeGradients(tensors: readonly WireTensor[], params: readonly ParamInfo[], offset = 0, allocate?: (index: number, length: number) => Float32Array, compression: CompressionMode = 'none'): Float32Array[] {
  if (tensors.length !== params.length) {
    const what = offset === 0 && params.length > 0 ? 'one per parameter' : `parameters ${offset}..${offset + params.length - 1}`;
    throw new ProtocolError('BAD_SHAPE', `expected ${params.length} gradient tensors (${what}), got ${tensors.length}`);
  }
  return tensors.map((t, j) => {
    const i = offset + j;
    const p = params[j];
    if (t.shape.length !== p.shape.length || t.shape.some((d, k) => d !== p.shape[k])) {
      throw new ProtocolError('BAD_SHAPE', `gradient ${i} (${p.name}) has shape [${t.shape.join(', ')}], the parameter is [${p.shape.join(', ')}]`);
    }
    const g = fromWireFloat(t, `gradient ${i} (${p.name})`, compression, allocate?.(i, p.shape.reduce((a, b) => a * b, 1)));
    const bad = allFinite(g);
    if (bad >= 0) throw new ProtocolError('NON_FINITE', `gradient ${i} (${p.name}) has ${g[bad]} at element ${bad}`);
    return g;
  });
}

/**
 * `allocate(i, n)` supplies the array gradient i is decoded into (a recycled one, on the hot path).
 * Buffers always come in float32.
 */
export function decodeContribution(
  msg: GradientsMessage,
  params: readonly ParamInfo[],
  expectedSamples: number,
  allocate?: (index: number, length: number) => Float32Array,
  labelsPerSample = 1,
  buffers: readonly ParamInfo[] = [],
  /** With buckets: `params` are the final bucket's, starting at this parameter index. */
  gradOffset = 0,
  compression: CompressionMode = 'none',
): Contribution & { loss: number; correct: number } {
  if (msg.samples !== expectedSamples) {
    throw new ProtocolError('BAD_MESSAGE', `gradients for shard ${msg.shard} claim ${msg.samples} samples, ${expectedSamples} were assigned`);
  }
  if (msg.correct > msg.samples * labelsPerSample) throw new ProtocolError('BAD_MESSAGE', `gradients claim ${msg.correct} correct of ${msg.samples * labelsPerSample} labels`);
  if (!Number.isFinite(msg.loss)) throw new ProtocolError('NON_FINITE', `loss is ${msg.loss}`);
  const grads = decodeGradients(msg.grads, params, gradOffset, allocate, compression);
  const sent = msg.buffers ?? [];
  if (sent.length !== buffers.length) throw new ProtocolError('BAD_SHAPE', `expected ${buffers.length} buffer tensors (BatchNorm statistics), got ${sent.length}`);
  const bufferValues = sent.map((t, i) => {
    const b = buffers[i];
    if (t.shape.length !== b.shape.length || t.shape.some((d, k) => d !== b.shape[k])) {
      throw new ProtocolError('BAD_SHAPE', `buffer ${i} (${b.name}) has shape [${t.shape.join(', ')}], the model's is [${b.shape.join(', ')}]`);
    }
    const v = fromWireFloat32(t, `buffer ${i} (${b.name})`);
    const bad = allFinite(v);
    if (bad >= 0) throw new ProtocolError('NON_FINITE', `buffer ${i} (${b.name}) has ${v[bad]} at element ${bad}`);
    if (b.integer) {
      const odd = v.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= 2 ** 63);
      if (odd >= 0) throw new ProtocolError('BAD_MESSAGE', `buffer ${i} (${b.name}) is a count but has ${v[odd]} at element ${odd}`);
    }
    return v;
  });
  return { samples: msg.samples, computeMs: msg.computeMs, grads, buffers: bufferValues, loss: msg.loss, correct: msg.correct };
}

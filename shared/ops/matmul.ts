/**
 * Matrix products. `matmul` follows NumPy: the last two axes multiply, leading axes are batch
 * axes (equal on both sides, or absent on one side, which is then shared by every batch entry).
 * The primitive takes transpose flags so that backward never materialises a transpose.
 */

import type { MatmulSpec } from '../backend/backend.js';
import { formatShape, sameShape, shapeSize } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { add } from './elementwise.js';
import { reshape } from './layout.js';
import { checkCompatible, record } from './record.js';
import { sumTo } from './reduce.js';

/**
 * C = op(A)·op(B), op(X) = Xᵀ when the flag is set (on the last two axes). With G = dL/dC:
 *   C = A·B     → dA = G·Bᵀ,     dB = Aᵀ·G
 *   C = A·Bᵀ    → dA = G·B,      dB = Gᵀ·A
 *   C = Aᵀ·B    → dA = B·Gᵀ,     dB = A·G
 *   C = Aᵀ·Bᵀ   → dA = Bᵀ·Gᵀ,    dB = Gᵀ·Aᵀ
 * A side shared across the batch gets the sum of its per-batch gradients (sumTo).
 */
export function matmulT(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  checkCompatible('matmul', [a, b]);
  if (a.rank < 2 || b.rank < 2) throw new RangeError(`matmul needs operands of rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    throw new RangeError(`matmul: inner dimensions differ: ${formatShape(a.shape)}${transA ? 'ᵀ' : ''} · ${formatShape(b.shape)}${transB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batchShape: readonly number[];
  if (sameShape(aBatch, bBatch)) batchShape = aBatch;
  else if (aBatch.length === 0) batchShape = bBatch;
  else if (bBatch.length === 0) batchShape = aBatch;
  else throw new RangeError(`matmul: batch dimensions ${formatShape(aBatch)} and ${formatShape(bBatch)} differ`);
  const spec: MatmulSpec = {
    batch: shapeSize(batchShape),
    m,
    n,
    k,
    transA,
    transB,
    aBroadcast: aBatch.length === 0 && batchShape.length > 0,
    bBroadcast: bBatch.length === 0 && batchShape.length > 0,
  };
  const outShape = [...batchShape, m, n];
  return record('matmul', [a, b], a.backend.matmul(a.buffer, b.buffer, spec), outShape, (g, need) => {
    const A = a.detach();
    const B = b.detach();
    let dA: Tensor | null = null;
    let dB: Tensor | null = null;
    if (need[0]) {
      if (!transA) dA = transB ? matmulT(g, B, false, false) : matmulT(g, B, false, true);
      else dA = transB ? matmulT(B, g, true, true) : matmulT(B, g, false, true);
      dA = sumTo(dA, a.shape);
    }
    if (need[1]) {
      if (!transB) dB = transA ? matmulT(A, g, false, false) : matmulT(A, g, true, false);
      else dB = transA ? matmulT(g, A, true, true) : matmulT(g, A, true, false);
      dB = sumTo(dB, b.shape);
    }
    return [dA, dB];
  });
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return matmulT(a, b, false, false);
}

/**
 * y = x·Wᵀ + b with W stored [out, in] as in PyTorch; x may have any leading dimensions, which are
 * flattened into one matrix product (rather than a batched one that would sum W's gradient).
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new RangeError(`linear: weight must be [out, in], got ${formatShape(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) throw new RangeError(`linear: input ${formatShape(x.shape)} has ${x.shape[x.rank - 1]} features, weight ${formatShape(weight.shape)} expects ${inF}`);
  const lead = x.shape.slice(0, -1);
  const flat = x.rank === 2 ? x : reshape(x, [shapeSize(lead), inF]);
  let y = matmulT(flat, weight, false, true);
  if (bias) y = add(y, bias);
  return x.rank === 2 ? y : reshape(y, [...lead, outF]);
}

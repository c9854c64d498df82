/**
 * Matrix products. `matmul` follows NumPy / torch.matmul: the last two axes multiply and the
 * leading axes are batch axes that broadcast (right-aligned, each pair equal or one of them 1:
 * [2, 1, 3, 4]·[5, 4, 6] → [2, 5, 3, 6]); a 1-D operand is a row (left) or column (right) vector
 * whose added axis is dropped from the result. The primitive takes transpose flags so that
 * backward never materialises a transpose. Equal batch shapes, and a side with no batch axes
 * (shared by every batch entry, stride 0), go straight to the backend; any other broadcast expands
 * the operands to the common batch shape first (`expand`, whose backward sums the gradient back).
 */

import type { MatmulSpec } from '../backend/backend.js';
import { formatShape, sameShape, shapeSize, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { add } from './elementwise.js';
import { expand, reshape, squeeze, unsqueeze } from './layout.js';
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
  else return matmulBroadcast(a, b, transA, transB);
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

/**
 * The batch shape [2, 1, 3]·[5, 1] → [2, 5, 3] of two batch shapes that broadcast (right-aligned,
 * each pair equal or one of them 1); the error names both operands' shapes.
 */
function broadcastBatch(a: Tensor, b: Tensor, aBatch: Shape, bBatch: Shape): number[] {
  const rank = Math.max(aBatch.length, bBatch.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[i - rank + aBatch.length] ?? 1;
    const db = bBatch[i - rank + bBatch.length] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`matmul: batch dimensions ${formatShape(aBatch)} of ${formatShape(a.shape)} and ${formatShape(bBatch)} of ${formatShape(b.shape)} do not broadcast (${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/**
 * The general broadcast case, reduced to the two cases the backend runs. A side whose batch axes
 * are all 1 holds one matrix: it is reshaped to rank 2 (shared by every batch entry, its gradient
 * summed over the batch by matmulT's sumTo). Otherwise both sides are expanded to the common batch
 * shape; expand's backward sums dL/d(expanded) over the broadcast axes, which is dL/d(operand)
 * since every copy of a matrix contributes to the loss through its own batch entry.
 */
function matmulBroadcast(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batch = broadcastBatch(a, b, aBatch, bBatch);
  const single = (s: Shape): boolean => s.every((d) => d === 1);
  const matrix = (x: Tensor): Tensor => reshape(x, x.shape.slice(-2));
  const toBatch = (x: Tensor): Tensor => expand(x, [...batch, ...x.shape.slice(-2)]);
  let c: Tensor;
  // One side's batch axes all 1: the common shape is the other side's, with leading 1s.
  if (single(aBatch)) c = matmulT(matrix(a), b, transA, transB);
  else if (single(bBatch)) c = matmulT(a, matrix(b), transA, transB);
  else c = matmulT(toBatch(a), toBatch(b), transA, transB);
  return sameShape(c.shape.slice(0, -2), batch) ? c : reshape(c, [...batch, ...c.shape.slice(-2)]);
}

/**
 * torch.matmul: a·b with batch broadcasting (matmulT without transposes), and 1-D operands as
 * vectors: [k]·[…, k, n] → […, n] (a row vector, its axis dropped again), […, m, k]·[k] → […, m]
 * (a column vector), [k]·[k] → [] (the dot product). The added axes are reshapes, so gradients
 * flow through them unchanged.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank === 0 || b.rank === 0) throw new RangeError(`matmul: operands must have at least one axis, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  if (a.rank >= 2 && b.rank >= 2) return matmulT(a, b, false, false);
  const a2 = a.rank === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.rank === 1 ? unsqueeze(b, 1) : b;
  let c = matmulT(a2, b2, false, false);
  if (b.rank === 1) c = squeeze(c, -1);
  if (a.rank === 1) c = squeeze(c, -2 + (b.rank === 1 ? 1 : 0));
  return c;
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

/**
 * Activation functions and softmax. leakyRelu is composed from primitives; ReLU, GELU (both
 * forms), softmax (plain and causal) and log-softmax are fused Backend primitives
 * (shared/backend/fused-norm.ts), each recorded as one node whose backward is the matching
 * `…Backward` primitive. sigmoid and tanh are primitives (see elementwise.ts) and are re-exported here.
 */

import type { DeviceBuffer } from '../backend/backend.js';
import type { GeluApproximation } from '../backend/fused-norm.js';
import { formatShape, normalizeAxis, shapeSize } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { gt, mul, where } from './elementwise.js';
import { permute } from './layout.js';
import { record } from './record.js';

export { sigmoid, tanh } from './elementwise.js';

/**
 * max(x, 0) as one node (the Backend's fused relu): the gradient is g where x > 0 and 0 elsewhere,
 * 0 at x = 0 as in PyTorch.
 */
export function relu(x: Tensor): Tensor {
  const backend = x.backend;
  return record('relu', [x], backend.relu(x.buffer), x.shape, (g) => [new Tensor(backend, backend.reluBackward(x.buffer, g.buffer), x.shape)]);
}

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return where(gt(x, 0), x, mul(x, negativeSlope));
}

/**
 * GELU as one node: forward and backward both read x only (the backward recomputes erf / tanh
 * rather than saving intermediates). Derivatives: see NormKernels.geluBackward.
 */
function geluOp(x: Tensor, approximate: GeluApproximation): Tensor {
  const backend = x.backend;
  return record(approximate === 'tanh' ? 'geluTanh' : 'gelu', [x], backend.gelu(x.buffer, approximate), x.shape, (g) => [
    new Tensor(backend, backend.geluBackward(x.buffer, g.buffer, approximate), x.shape),
  ]);
}

/** GELU, exact form: x·Φ(x) = x/2·(1 + erf(x/√2)); d/dx = Φ(x) + x·φ(x). */
export function gelu(x: Tensor): Tensor {
  return geluOp(x, 'none');
}

/**
 * GELU, tanh approximation (GPT-2's): x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715x³);
 * d/dx = (1 + t)/2 + x/2·(1 − t²)·du/dx, t = tanh(u).
 */
export function geluTanh(x: Tensor): Tensor {
  return geluOp(x, 'tanh');
}

type RowKernel = (x: DeviceBuffer, rows: number, cols: number) => DeviceBuffer;

/**
 * One node for a row-wise op over the last axis whose backward needs only its output y and the
 * output's gradient (softmax, log-softmax).
 */
function rowwise(op: string, x: Tensor, forward: RowKernel, backward: (y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number) => DeviceBuffer): Tensor {
  const cols = x.rank === 0 ? 1 : x.shape[x.rank - 1];
  const rows = shapeSize(x.shape.slice(0, -1));
  const shape = x.shape;
  const y = forward(x.buffer, rows, cols);
  return record(op, [x], y, shape, (g) => [new Tensor(x.backend, backward(y, g.buffer, rows, cols), shape)]);
}

/** Runs a last-axis op over `axis` by moving that axis last and back (permute carries the gradient). */
function alongAxis(x: Tensor, axis: number, fn: (t: Tensor) => Tensor): Tensor {
  const a = normalizeAxis(axis, x.rank);
  if (x.rank === 0 || a === x.rank - 1) return fn(x);
  const perm = Array.from({ length: x.rank }, (_, i) => i).filter((i) => i !== a);
  perm.push(a);
  const inverse = new Array<number>(x.rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return permute(fn(permute(x, perm)), inverse);
}

/**
 * softmax(x)ᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m) along `axis`.
 * Numerical trap: exp(x) overflows for large logits. Subtracting the row maximum m first leaves
 * softmax unchanged (it cancels in the ratio) and keeps every exponent <= 0. The maximum gets no
 * gradient: its contributions cancel exactly, so the backward gx = y ⊙ (gy − Σ gy⊙y) has no term
 * for it.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => {
    const b = t.backend;
    return rowwise('softmax', t, (buf, rows, cols) => b.softmax(buf, rows, cols, false), (y, gy, rows, cols) => b.softmaxBackward(y, gy, rows, cols));
  });
}

/**
 * Causal softmax over the last axis of attention scores [..., T, T]: query i (the second-to-last
 * index) sees keys j ≤ i only; the others get probability exactly 0 and no gradient (their scores
 * are never read). Equal, up to rounding, to softmax after replacing masked scores with −1e9.
 */
export function causalSoftmax(x: Tensor): Tensor {
  if (x.rank < 2 || x.shape[x.rank - 1] !== x.shape[x.rank - 2]) throw new RangeError(`causalSoftmax: scores must be [..., T, T], got ${formatShape(x.shape)}`);
  const b = x.backend;
  return rowwise('causalSoftmax', x, (buf, rows, cols) => b.softmax(buf, rows, cols, true), (y, gy, rows, cols) => b.softmaxBackward(y, gy, rows, cols));
}

/**
 * log softmax(x) = (x − m) − log Σ exp(x − m), stable for any logits; backward
 * gx = gy − exp(y)·Σ gy (exp(y) is softmax, at most 1).
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => {
    const b = t.backend;
    return rowwise('logSoftmax', t, (buf, rows, cols) => b.logSoftmax(buf, rows, cols), (y, gy, rows, cols) => b.logSoftmaxBackward(y, gy, rows, cols));
  });
}

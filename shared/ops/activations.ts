/**
 * Activation functions and softmax, composed from primitives (no backward code of their own).
 * sigmoid and tanh are primitives (see elementwise.ts) and are re-exported here.
 */

import type { Tensor } from '../tensor/tensor.js';
import { add, div, erf, exp, gt, log, mul, sub, tanh, where } from './elementwise.js';
import { max, sum } from './reduce.js';

export { sigmoid, tanh } from './elementwise.js';

/** max(x, 0) as x·[x > 0]: the mask is a constant, so the gradient is g·[x > 0] (0 at x = 0). */
export function relu(x: Tensor): Tensor {
  return mul(x, gt(x, 0));
}

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return where(gt(x, 0), x, mul(x, negativeSlope));
}

/** GELU, exact form: x·Φ(x) = x/2·(1 + erf(x/√2)). */
export function gelu(x: Tensor): Tensor {
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/** GELU, tanh approximation (GPT-2's): x/2·(1 + tanh(√(2/π)·(x + 0.044715x³))). */
export function geluTanh(x: Tensor): Tensor {
  const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/**
 * Numerical trap: exp(x) overflows for large logits. Subtracting the row maximum first leaves
 * softmax unchanged (it cancels in the ratio) and keeps every exponent <= 0. The maximum is
 * detached: its gradient contributions cancel exactly, so computing them would only add noise.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  const shifted = sub(x, max(x.detach(), axis, { keepDims: true }));
  const e = exp(shifted);
  return div(e, sum(e, axis, { keepDims: true }));
}

/** log softmax(x) = (x − m) − log Σ exp(x − m), stable for any logits. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const shifted = sub(x, max(x.detach(), axis, { keepDims: true }));
  return sub(shifted, log(sum(exp(shifted), axis, { keepDims: true })));
}

/**
 * Reductions: sum, mean (composite), max, and `sumTo`, which undoes broadcasting for backward rules.
 */

import { normalizeAxes, reducedShape, sameShape, shapeSize, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { div, eq, mul } from './elementwise.js';
import { expand, reshape } from './layout.js';
import { record } from './record.js';

export interface ReduceOptions {
  readonly keepDims?: boolean;
}

/**
 * d(sum x)/dx = 1 for every summed element: the gradient is g broadcast back over the reduced
 * axes (re-inserted as size-1 dimensions first).
 */
export function sum(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes(axes, x.rank);
  const keepShape = reducedShape(x.shape, ax, true);
  const outShape = reducedShape(x.shape, ax, options.keepDims ?? false);
  const inShape = x.shape;
  return record('sum', [x], x.backend.reduce('sum', x.buffer, x.shape, ax), outShape, (g) => [expand(reshape(g, keepShape), inShape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes(axes, x.rank);
  const count = shapeSize(ax.map((a) => x.shape[a]));
  return div(sum(x, ax, options), count);
}

/**
 * The gradient of a max flows to the elements equal to it. With ties it is split evenly among
 * them (as torch.amax does), so the rule stays a valid subgradient and finite differences agree
 * away from ties.
 */
export function max(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes(axes, x.rank);
  const keepShape = reducedShape(x.shape, ax, true);
  const outShape = reducedShape(x.shape, ax, options.keepDims ?? false);
  const inShape = x.shape;
  const out = record('max', [x], x.backend.reduce('max', x.buffer, x.shape, ax), outShape, (g) => {
    const m = expand(reshape(out.detach(), keepShape), inShape);
    const mask = eq(x.detach(), m);
    const ties = sum(mask, ax, { keepDims: true });
    return [mul(mask, expand(div(reshape(g, keepShape), ties), inShape))];
  });
  return out;
}

/** Sums `g` down to `shape`, reversing NumPy broadcasting (leading axes, then size-1 axes). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes), shape);
}

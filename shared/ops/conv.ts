/**
 * 2-D convolution and max pooling over NCHW tensors.
 *
 * Convolution is im2col followed by matrix products: with cols = im2col(x) of shape
 * [N, oh·ow, C·kh·kw] and W flattened to [O, C·kh·kw], y[n] = W · cols[n]ᵀ (+ b), already in NCHW
 * order. Only im2col needs its own backward rule — col2im, its adjoint, which adds each column
 * entry back to the input pixel it was read from — and matmul's rules give dW = Σₙ dY[n]·cols[n]
 * and dcols[n] = dY[n]ᵀ·W.
 */

import { windowSpec, type WindowSpec } from '../backend/conv-spec.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { add } from './elementwise.js';
import { reshape } from './layout.js';
import { matmulT } from './matmul.js';
import { mean } from './reduce.js';
import { record } from './record.js';

export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  readonly stride?: Pair;
  readonly padding?: Pair;
  readonly dilation?: Pair;
}

const pair = (p: Pair | undefined, fallback: number): [number, number] => (p === undefined ? [fallback, fallback] : typeof p === 'number' ? [p, p] : [p[0], p[1]]);

function checkNchw(op: string, x: Tensor): void {
  if (x.rank !== 4) throw new RangeError(`${op} needs an NCHW input of rank 4, got ${formatShape(x.shape)}`);
}

/** Window rows of x: [N·oh·ow, C·kh·kw]. Backward: col2im. */
export function im2col(x: Tensor, spec: WindowSpec): Tensor {
  checkNchw('im2col', x);
  const [n, c] = x.shape;
  const shape = x.shape;
  const outShape = [n * spec.oh * spec.ow, c * spec.kh * spec.kw];
  return record('im2col', [x], x.backend.im2col(x.buffer, x.shape, spec), outShape, (g) => [
    new Tensor(g.backend, g.backend.col2im(g.buffer, shape, spec), shape),
  ]);
}

export function conv2dSpec(x: Tensor, kernel: readonly [number, number], options: Conv2dOptions = {}): WindowSpec {
  checkNchw('conv2d', x);
  return windowSpec(x.shape[2], x.shape[3], kernel, pair(options.stride, 1), pair(options.padding, 0), pair(options.dilation, 1));
}

/** y[n, o] = Σ_c W[o, c] ⋆ x[n, c] + b[o], PyTorch's conv2d (cross-correlation) with weight [O, C, kh, kw]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions = {}): Tensor {
  if (weight.rank !== 4) throw new RangeError(`conv2d: weight must be [out, in, kh, kw], got ${formatShape(weight.shape)}`);
  const [o, c, kh, kw] = weight.shape;
  checkNchw('conv2d', x);
  if (x.shape[1] !== c) throw new RangeError(`conv2d: input ${formatShape(x.shape)} has ${x.shape[1]} channels, weight ${formatShape(weight.shape)} expects ${c}`);
  const spec = conv2dSpec(x, [kh, kw], options);
  const n = x.shape[0];
  const ckk = c * kh * kw;
  const cols = reshape(im2col(x, spec), [n, spec.oh * spec.ow, ckk]);
  // Per sample, W [O, CKK] · colsᵀ [CKK, oh·ow] lands directly in NCHW order (no transpose pass).
  let y = matmulT(reshape(weight, [o, ckk]), cols, false, true); // [N, O, oh·ow]
  if (bias) y = add(y, reshape(bias, [o, 1]));
  return reshape(y, [n, o, spec.oh, spec.ow]);
}

export interface Pool2dOptions {
  readonly stride?: Pair;
  readonly padding?: Pair;
  readonly dilation?: Pair;
}

/**
 * Max over each kh x kw window (stride defaults to the kernel size, as in PyTorch). The gradient
 * goes to the first position holding each window's maximum.
 */
export function maxPool2d(x: Tensor, kernel: Pair, options: Pool2dOptions = {}): Tensor {
  checkNchw('maxPool2d', x);
  const k = pair(kernel, 1);
  const spec = windowSpec(x.shape[2], x.shape[3], k, pair(options.stride ?? kernel, 1), pair(options.padding, 0), pair(options.dilation, 1));
  if (spec.ph * 2 > spec.kh || spec.pw * 2 > spec.kw) throw new RangeError(`maxPool2d: padding ${spec.ph}x${spec.pw} must be at most half the kernel ${spec.kh}x${spec.kw}`);
  const [n, c] = x.shape;
  const shape = x.shape;
  return record('maxPool2d', [x], x.backend.maxPool2d(x.buffer, x.shape, spec), [n, c, spec.oh, spec.ow], (g) => [
    new Tensor(g.backend, g.backend.maxPool2dBackward(x.buffer, shape, g.buffer, spec), shape),
  ]);
}

/**
 * Mean over each kh x kw window, counting padded positions as zeros (PyTorch's default
 * count_include_pad=True). Composite: the windows of every channel as rows (im2col over the
 * channels folded into the batch), averaged along the row.
 */
export function avgPool2d(x: Tensor, kernel: Pair, options: Pool2dOptions = {}): Tensor {
  checkNchw('avgPool2d', x);
  const k = pair(kernel, 1);
  const spec = windowSpec(x.shape[2], x.shape[3], k, pair(options.stride ?? kernel, 1), pair(options.padding, 0), pair(options.dilation, 1));
  const [n, c, h, w] = x.shape;
  const rows = im2col(reshape(x, [n * c, 1, h, w]), spec); // [n·c·oh·ow, kh·kw]
  return reshape(mean(rows, 1), [n, c, spec.oh, spec.ow]);
}

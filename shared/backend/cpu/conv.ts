/**
 * CPU window kernels over NCHW tensors: im2col and its adjoint col2im (convolution becomes one
 * matrix product), and max pooling with its backward.
 *
 * im2col layout: one row per output position (n, oy, ox), one column per (c, ky, kx) — the order
 * of a PyTorch conv weight [out, c, ky, kx] flattened — so conv(x, W) = cols · W_flatᵀ.
 * Positions that fall in the padding read as 0.
 */

import type { WindowSpec } from '../conv-spec.js';
import { allocArray, dtypeOf, type FloatArray } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';

export function im2colKernel(x: FloatArray, shape: Shape, s: WindowSpec, into?: FloatArray): FloatArray {
  const [n, c, h, w] = shape;
  const cols = c * s.kh * s.kw;
  const out = into ?? allocArray(dtypeOf(x), n * s.oh * s.ow * cols);
  let row = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < s.oh; oy++) {
      for (let ox = 0; ox < s.ow; ox++, row++) {
        let o = row * cols;
        for (let ch = 0; ch < c; ch++) {
          const plane = (b * c + ch) * h * w;
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = oy * s.sh - s.ph + ky * s.dh;
            const inside = iy >= 0 && iy < h;
            for (let kx = 0; kx < s.kw; kx++, o++) {
              const ix = ox * s.sw - s.pw + kx * s.dw;
              out[o] = inside && ix >= 0 && ix < w ? x[plane + iy * w + ix] : 0;
            }
          }
        }
      }
    }
  }
  return out;
}

/** The adjoint of im2col: every column entry is added back to the input position it came from. */
export function col2imKernel(cols: FloatArray, shape: Shape, s: WindowSpec, into?: FloatArray): FloatArray {
  const [n, c, h, w] = shape;
  const width = c * s.kh * s.kw;
  const out = into ? into.fill(0) : allocArray(dtypeOf(cols), n * c * h * w);
  let row = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < s.oh; oy++) {
      for (let ox = 0; ox < s.ow; ox++, row++) {
        let o = row * width;
        for (let ch = 0; ch < c; ch++) {
          const plane = (b * c + ch) * h * w;
          for (let ky = 0; ky < s.kh; ky++) {
            const iy = oy * s.sh - s.ph + ky * s.dh;
            const inside = iy >= 0 && iy < h;
            for (let kx = 0; kx < s.kw; kx++, o++) {
              const ix = ox * s.sw - s.pw + kx * s.dw;
              if (inside && ix >= 0 && ix < w) out[plane + iy * w + ix] += cols[o];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * Max over each window (padding counts as −∞, as in PyTorch). With `grad`, instead scatters each
 * window's gradient to the first position holding its maximum (PyTorch's tie rule): the backward.
 */
function maxPool(x: FloatArray, shape: Shape, s: WindowSpec, grad: FloatArray | null, into?: FloatArray): FloatArray {
  const [n, c, h, w] = shape;
  const out = grad ? (into ? into.fill(0) : allocArray(dtypeOf(x), n * c * h * w)) : (into ?? allocArray(dtypeOf(x), n * c * s.oh * s.ow));
  let o = 0;
  for (let p = 0; p < n * c; p++) {
    const plane = p * h * w;
    for (let oy = 0; oy < s.oh; oy++) {
      for (let ox = 0; ox < s.ow; ox++, o++) {
        let best = -Infinity;
        let at = -1;
        for (let ky = 0; ky < s.kh; ky++) {
          const iy = oy * s.sh - s.ph + ky * s.dh;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < s.kw; kx++) {
            const ix = ox * s.sw - s.pw + kx * s.dw;
            if (ix < 0 || ix >= w) continue;
            const v = x[plane + iy * w + ix];
            if (v > best || at < 0 || Number.isNaN(v)) {
              best = v;
              at = plane + iy * w + ix;
              if (Number.isNaN(v)) break;
            }
          }
        }
        if (grad) {
          if (at >= 0) out[at] += grad[o];
        } else out[o] = best;
      }
    }
  }
  return out;
}

export function maxPool2dKernel(x: FloatArray, shape: Shape, s: WindowSpec, into?: FloatArray): FloatArray {
  return maxPool(x, shape, s, null, into);
}

export function maxPool2dBackwardKernel(x: FloatArray, shape: Shape, grad: FloatArray, s: WindowSpec, into?: FloatArray): FloatArray {
  return maxPool(x, shape, s, grad, into);
}

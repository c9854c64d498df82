/**
 * WGSL window kernels over NCHW tensors: im2col and its adjoint col2im, max pooling and its
 * backward. The reference is shared/backend/cpu/conv.ts, and every result here is bit-identical to
 * it: im2col and pooling only move or compare values, and the two adjoints add the same float32
 * values in the same order (each addition correctly rounded on both sides).
 *
 * Geometry (WindowSpec): output position (oy, ox) and kernel tap (ky, kx) read input row
 * iy = oy·sh − ph + ky·dh and column ix = ox·sw − pw + kx·dw; rows or columns outside [0, H) ×
 * [0, W) are padding. Signed (i32) arithmetic throughout, as padding makes coordinates negative.
 *
 * im2col: one thread per entry of the [N·oh·ow, C·kh·kw] matrix, reading its input value or 0.
 *
 * col2im and maxPool2dBackward are gathers, not scatters (no atomics, so the same every run): one
 * thread per input element loops over the windows that contain it. For a fixed input position, a
 * window row oy contains it through exactly one tap ky = (iy + ph − oy·sh) / dh, so the thread
 * loops over the taps, keeping those for which (iy + ph − ky·dh) is a non-negative multiple of sh
 * giving oy < oh, and likewise for columns. The reference adds contributions in increasing output
 * row (b, oy, ox); since oy decreases as ky grows, looping ky and kx downwards visits the windows
 * in that same order, so the float32 sums round identically.
 *
 * Max pooling: one thread per output scans its window in the reference's order (ky, then kx,
 * skipping padding) and keeps a value when it is greater than the best so far, when it is the
 * first in-bounds value, or when it is NaN, stopping at the first NaN: so the result is the first
 * NaN, else the first maximum (PyTorch's tie rule), and −∞ for a window wholly in the padding.
 * The backward first runs the same scan writing the flat input index of each window's choice
 * (−1 for none) to a temporary i32 buffer; then each input element adds the gradients of the
 * windows, in order, whose choice is itself: exactly the reference's `out[at] += grad[o]`.
 * NaN is tested by its bits and −∞ built from runtime bits (literals of either are compile errors).
 */

/// <reference types="@webgpu/types" />

import type { Shape } from '../../../tensor/shape.js';
import type { WindowSpec } from '../../conv-spec.js';
import { grid, linearIndex, uniformPrelude, Uniforms, type GpuContext } from '../context.js';
import { MATH_WGSL, WG } from './elementwise.js';
import { releaseTemp } from './reduce.js';

/** Uniform words: n, then N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow (as i32). */
function geometry(n: number, shape: Shape, s: WindowSpec): Uniforms {
  const [nb, c, h, w] = shape;
  return new Uniforms().u32(n).i32(nb, c, h, w, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.oh, s.ow);
}

/** WGSL: the thread's element index `i` (u32, bounds-checked) and the geometry as i32 values. */
const PROLOGUE = `
  let iu = ${linearIndex(WG)};
  if (iu >= pu(0u)) { return; }
  let i = i32(iu);
  let C = pi(2u); let H = pi(3u); let W = pi(4u);
  let kh = pi(5u); let kw = pi(6u); let sh = pi(7u); let sw = pi(8u);
  let ph = pi(9u); let pw = pi(10u); let dh = pi(11u); let dw = pi(12u);
  let oh = pi(13u); let ow = pi(14u);`;

function source(bindings: string, body: string, helpers = ''): string {
  return `${uniformPrelude(15)}${MATH_WGSL}${helpers}
${bindings}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {${PROLOGUE}
${body}
}`;
}

const im2colSource = (): string =>
  source(
    `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`,
    `  let width = C * kh * kw;
  let col = i % width;
  let row = i / width;
  let kx = col % kw;
  let ky = (col / kw) % kh;
  let ch = col / (kw * kh);
  let ox = row % ow;
  let oy = (row / ow) % oh;
  let b = row / (ow * oh);
  let iy = oy * sh - ph + ky * dh;
  let ix = ox * sw - pw + kx * dw;
  var v = 0.0;
  if (iy >= 0 && iy < H && ix >= 0 && ix < W) { v = x[((b * C + ch) * H + iy) * W + ix]; }
  out[iu] = v;`,
  );

/**
 * WGSL loop over the windows containing input (iy, ix) of plane p, in increasing (oy, ox); `visit`
 * sees the window's flat output index `o` and its column entry's tap (ky, kx). Windows are numbered
 * over planes `rowPlane` (the batch index b = p / C for im2col rows, the plane p for pooling).
 */
function windowsContaining(rowPlane: string, visit: string): string {
  return `  let ix = i % W;
  let iy = (i / W) % H;
  let p = i / (W * H);
  var acc = 0.0;
  for (var ky = kh - 1; ky >= 0; ky--) {
    let ty = iy + ph - ky * dh;
    if (ty < 0 || ty % sh != 0) { continue; }
    let oy = ty / sh;
    if (oy >= oh) { continue; }
    for (var kx = kw - 1; kx >= 0; kx--) {
      let tx = ix + pw - kx * dw;
      if (tx < 0 || tx % sw != 0) { continue; }
      let ox = tx / sw;
      if (ox >= ow) { continue; }
      let o = (${rowPlane} * oh + oy) * ow + ox;
${visit}
    }
  }
  out[iu] = acc;`;
}

const col2imSource = (): string =>
  source(
    `@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`,
    windowsContaining('(p / C)', `      let ch = p % C;
      acc += cols[o * (C * kh * kw) + (ch * kh + ky) * kw + kx];`),
  );

/** The pooling scan of output `i`; `record` runs with `best` and `at` (−1: none) known. */
function poolSource(output: string, record: string): string {
  return source(
    `@group(0) @binding(1) var<storage, read> x: array<f32>;
${output}`,
    `  let ox = i % ow;
  let oy = (i / ow) % oh;
  let p = i / (ow * oh);
  let plane = p * H * W;
  var best = bitcast<f32>(0xff800000u | (pu(0u) & 0u)); // -inf, from runtime bits
  var at = -1;
  var stop = false;
  for (var ky = 0; ky < kh && !stop; ky++) {
    let iy = oy * sh - ph + ky * dh;
    if (iy < 0 || iy >= H) { continue; }
    for (var kx = 0; kx < kw; kx++) {
      let ix = ox * sw - pw + kx * dw;
      if (ix < 0 || ix >= W) { continue; }
      let v = x[plane + iy * W + ix];
      if (v > best || at < 0 || is_nan(v)) {
        best = v;
        at = plane + iy * W + ix;
        if (is_nan(v)) { stop = true; break; }
      }
    }
  }
${record}`,
  );
}

const maxPoolSource = (): string => poolSource('@group(0) @binding(2) var<storage, read_write> out: array<f32>;', '  out[iu] = best;');
const argmaxSource = (): string => poolSource('@group(0) @binding(2) var<storage, read_write> out: array<i32>;', '  out[iu] = at;');

const poolBackwardSource = (): string =>
  source(
    `@group(0) @binding(1) var<storage, read> argmax: array<i32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`,
    windowsContaining('p', `      if (argmax[o] == i) { acc += grad[o]; }`),
  );

export function im2colGpu(ctx: GpuContext, x: GPUBuffer, shape: Shape, spec: WindowSpec): GPUBuffer {
  const [n, c] = shape;
  const total = n * spec.oh * spec.ow * c * spec.kh * spec.kw;
  const out = ctx.alloc(4 * total);
  if (total === 0) return out;
  ctx.dispatch(ctx.kernel('window:im2col', im2colSource), [x, out], geometry(total, shape, spec), grid(total, WG));
  return out;
}

export function col2imGpu(ctx: GpuContext, cols: GPUBuffer, shape: Shape, spec: WindowSpec): GPUBuffer {
  const total = shape[0] * shape[1] * shape[2] * shape[3];
  const out = ctx.alloc(4 * total);
  if (total === 0) return out;
  ctx.dispatch(ctx.kernel('window:col2im', col2imSource), [cols, out], geometry(total, shape, spec), grid(total, WG));
  return out;
}

export function maxPool2dGpu(ctx: GpuContext, x: GPUBuffer, shape: Shape, spec: WindowSpec): GPUBuffer {
  const total = shape[0] * shape[1] * spec.oh * spec.ow;
  const out = ctx.alloc(4 * total);
  if (total === 0) return out;
  ctx.dispatch(ctx.kernel('window:max-pool', maxPoolSource), [x, out], geometry(total, shape, spec), grid(total, WG));
  return out;
}

export function maxPool2dBackwardGpu(ctx: GpuContext, x: GPUBuffer, shape: Shape, grad: GPUBuffer, spec: WindowSpec): GPUBuffer {
  const total = shape[0] * shape[1] * shape[2] * shape[3];
  const out = ctx.alloc(4 * total);
  if (total === 0) return out;
  const windows = shape[0] * shape[1] * spec.oh * spec.ow;
  const argmax = ctx.alloc(4 * windows);
  ctx.dispatch(ctx.kernel('window:max-pool-argmax', argmaxSource), [x, argmax], geometry(windows, shape, spec), grid(windows, WG));
  ctx.dispatch(ctx.kernel('window:max-pool-backward', poolBackwardSource), [argmax, grad, out], geometry(total, shape, spec), grid(total, WG));
  releaseTemp(ctx, argmax);
  return out;
}

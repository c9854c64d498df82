/**
 * WGSL optimizer updates, in place: Adam/AdamW and SGD (with momentum, dampening, Nesterov), one
 * thread per element, the formulas and grouping of shared/optim/update-kernels.ts. The scalars
 * (bias corrections, step size, shrink) arrive already formed in float64 and rounded once to
 * float32; the per-element arithmetic is float32, as PyTorch's own kernels (the reference rounds
 * once per stored value from float64 intermediates, so results agree to a few float32 ulps).
 */

/// <reference types="@webgpu/types" />

import type { AdamArgs } from '../../../optim/vector-ops.js';
import type { SgdArgs } from '../../../optim/update-kernels.js';
import { grid, linearIndex, uniformPrelude, Uniforms, type GpuContext } from '../context.js';

const WG = 256;

export function adamUpdateGpu(ctx: GpuContext, p: GPUBuffer, g: GPUBuffer, m: GPUBuffer, v: GPUBuffer, n: number, args: AdamArgs): void {
  if (n === 0) return;
  const kernel = ctx.kernel('adam-update', () => `${uniformPrelude(10)}
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let beta1 = pf(1u); let beta2 = pf(2u); let a1 = pf(3u); let a2 = pf(4u);
  let eps = pf(5u); let l2 = pf(6u); let shrink = pf(7u); let stepSize = pf(8u); let bias2Sqrt = pf(9u);
  let pi0 = p[i] * shrink;
  let gi = g[i] + l2 * pi0;
  let mi = beta1 * m[i] + a1 * gi;
  let vi = beta2 * v[i] + a2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi0 - (stepSize * mi) / (sqrt(vi) / bias2Sqrt + eps);
}`);
  const u = new Uniforms().u32(n).f32(args.beta1, args.beta2, args.oneMinusBeta1, args.oneMinusBeta2, args.eps, args.l2, args.shrink, args.stepSize, args.bias2Sqrt);
  ctx.dispatch(kernel, [p, g, m, v], u, grid(n, WG));
}

export function sgdUpdateGpu(ctx: GpuContext, p: GPUBuffer, g: GPUBuffer, buf: GPUBuffer | null, n: number, args: SgdArgs): void {
  if (n === 0) return;
  const withBuffer = buf !== null;
  const kernel = ctx.kernel(`sgd-update:${withBuffer ? 'momentum' : 'plain'}`, () => `${uniformPrelude(7)}
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
${withBuffer ? '@group(0) @binding(3) var<storage, read_write> b: array<f32>;' : ''}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let lr = pf(1u); let momentum = pf(2u); let keep = pf(3u); let wd = pf(4u);
  let gi = g[i] + wd * p[i];
${
  withBuffer
    ? `  let bi = select(momentum * b[i] + keep * gi, gi, pu(5u) != 0u);
  b[i] = bi;
  p[i] = p[i] - lr * select(bi, gi + momentum * bi, pu(6u) != 0u);`
    : '  p[i] = p[i] - lr * gi;'
}
}`);
  const u = new Uniforms().u32(n).f32(args.lr, args.momentum, args.keep, args.weightDecay).u32(args.first ? 1 : 0, args.nesterov ? 1 : 0);
  ctx.dispatch(kernel, buf === null ? [p, g] : [p, g, buf], u, grid(n, WG));
}

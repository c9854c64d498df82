/**
 * WGSL elementwise kernels: fill, copy, unary maps, broadcasting binary ops, `where`, and the fused
 * activations ReLU and GELU with their backward rules. The reference is shared/backend/cpu
 * (elementwise.ts, fused-norm.ts); each formula below is written in the same grouping so float32
 * results agree to a few ulps.
 *
 * Broadcasting: the output shape and each input's strides are first merged with the CPU kernels'
 * `mergeDims` (same shape → one dimension, bias over rows → two), then the kernel turns the output
 * index into each input's offset by walking the merged dimensions (at most MAX_RANK of them).
 *
 * Numerical traps, as WGSL implementations may assume no NaN or infinity when optimizing:
 *   - NaN is detected from its bits, never as x != x (which a compiler may fold to false);
 *   - tanh is our own: drivers' tanh may go through exp (NaN for large arguments) and lose the
 *     relative accuracy near 0 (lavapipe's is 3% off at |x| ~ 1e-6). A Taylor series below 0.25,
 *     1 − 2/(e^{2|x|} + 1) above (with |x| clamped to 15, where tanh is 1 in float32); NaN passes;
 *   - pow of a negative base with an integral exponent is formed as ±|x|^y (WGSL's pow is
 *     undefined for x < 0; the reference Math.pow is exact there, and x² goes through it).
 */

/// <reference types="@webgpu/types" />

import type { BinaryOp, UnaryOp } from '../../backend.js';
import type { GeluApproximation } from '../../fused-norm.js';
import { mergeDims } from '../../cpu/elementwise.js';
import { broadcastStrides, shapeSize, type Shape } from '../../../tensor/shape.js';
import { grid, linearIndex, uniformPrelude, Uniforms, type GpuContext } from '../context.js';

export const WG = 256;
export const MAX_RANK = 8;

/** Shared WGSL helpers: NaN test by bits, a safe tanh, the float32 erf of cpu/erf.ts. */
export const MATH_WGSL = `
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn safe_tanh(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let ax = abs(x);
  if (ax < 0.25) {
    // Taylor series to x^9 (relative error < 1e-8 here); 1 - 2/(e^2x + 1) would cancel.
    let x2 = x * x;
    return x * (1.0 + x2 * (-0.33333333333 + x2 * (0.13333333333 + x2 * (-0.053968253968 + x2 * 0.021869488536))));
  }
  let t = 1.0 - 2.0 / (exp(2.0 * min(ax, 15.0)) + 1.0);
  return select(t, -t, x < 0.0);
}
fn erf32(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn pow_ref(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  // A runtime NaN (a literal NaN is a WGSL compile error).
  if (y != floor(y)) { return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); }
  let m = pow(-x, y);
  let odd = abs(y - 2.0 * floor(y / 2.0)) == 1.0;
  return select(m, -m, odd);
}
`;

const UNARY_EXPR: Record<UnaryOp, string> = {
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  tanh: 'safe_tanh(x)',
  sigmoid: 'sigmoid(x)',
  erf: 'erf32(x)',
  abs: 'abs(x)',
  sign: 'sign(x)',
};

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: 'x + y',
  sub: 'x - y',
  mul: 'x * y',
  div: 'x / y',
  pow: 'pow_ref(x, y)',
  gt: 'select(0.0, 1.0, x > y)',
  ge: 'select(0.0, 1.0, x >= y)',
  eq: 'select(0.0, 1.0, x == y)',
};

function mapKernelSource(inputs: number, expr: string): string {
  const bindings = Array.from({ length: inputs }, (_, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<f32>;`).join('\n');
  const loads = inputs === 1 ? 'let x = in0[i];' : inputs === 2 ? 'let x = in0[i]; let y = in1[i];' : 'let x = in0[i]; let y = in1[i]; let z = in2[i];';
  return `${uniformPrelude(1)}${MATH_WGSL}
${bindings}
@group(0) @binding(${inputs + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  ${loads}
  out[i] = ${expr};
}`;
}

/** out[i] = expr(in0[i], …): same-length inputs, one thread per element. */
function map(ctx: GpuContext, key: string, inputs: readonly GPUBuffer[], n: number, expr: string): GPUBuffer {
  const out = ctx.alloc(4 * n);
  if (n === 0) return out;
  const kernel = ctx.kernel(`map:${inputs.length}:${key}`, () => mapKernelSource(inputs.length, expr));
  ctx.dispatch(kernel, [...inputs, out], new Uniforms().u32(n), grid(n, WG));
  return out;
}

export function fillKernel(ctx: GpuContext, n: number, value: number): GPUBuffer {
  const out = ctx.alloc(4 * n);
  if (n === 0) return out;
  const kernel = ctx.kernel('fill', () => `${uniformPrelude(2)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i < pu(0u)) { out[i] = pf(1u); }
}`);
  ctx.dispatch(kernel, [out], new Uniforms().u32(n).f32(value), grid(n, WG));
  return out;
}

export function copyKernel(ctx: GpuContext, a: GPUBuffer, n: number): GPUBuffer {
  const out = ctx.alloc(4 * n);
  ctx.copy(a, 0, out, 0, 4 * n);
  return out;
}

export function unaryGpu(ctx: GpuContext, op: UnaryOp, a: GPUBuffer, n: number): GPUBuffer {
  return map(ctx, `unary:${op}`, [a], n, UNARY_EXPR[op]);
}

export function reluGpu(ctx: GpuContext, x: GPUBuffer, n: number): GPUBuffer {
  return map(ctx, 'relu', [x], n, 'select(0.0, x, x > 0.0 || is_nan(x))');
}

/** gx = gy where x > 0, else exactly 0 (a select, so an infinite gy where x ≤ 0 gives 0, not NaN). */
export function reluBackwardGpu(ctx: GpuContext, x: GPUBuffer, gy: GPUBuffer, n: number): GPUBuffer {
  return map(ctx, 'relu-backward', [x, gy], n, 'select(0.0, y, x > 0.0)');
}

const GELU_C = '0.044715';
const SQRT_2_OVER_PI = String(Math.sqrt(2 / Math.PI));
const INV_SQRT_2PI = String(1 / Math.sqrt(2 * Math.PI));

/** GELU in the reference's grouping: x·0.5·(erf(x/√2) + 1), or x·0.5·(tanh(√(2/π)(x + 0.044715x³)) + 1). */
export function geluGpu(ctx: GpuContext, x: GPUBuffer, n: number, approximate: GeluApproximation): GPUBuffer {
  const expr =
    approximate === 'tanh'
      ? `x * 0.5 * (safe_tanh((x + x * x * x * ${GELU_C}) * ${SQRT_2_OVER_PI}) + 1.0)`
      : `x * 0.5 * (erf32(x * ${String(Math.SQRT1_2)}) + 1.0)`;
  return map(ctx, `gelu:${approximate}`, [x], n, expr);
}

/**
 * GELU's slope times gy: Φ(x) + x·φ(x) (exact), or (1 + t)/2 + x/2·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)
 * with t the tanh (the second term dropped where 1 − t² is 0, as the reference, to avoid 0·∞).
 */
export function geluBackwardGpu(ctx: GpuContext, x: GPUBuffer, gy: GPUBuffer, n: number, approximate: GeluApproximation): GPUBuffer {
  const expr =
    approximate === 'tanh'
      ? `gelu_tanh_slope(x) * y`
      : `(0.5 * (erf32(x * ${String(Math.SQRT1_2)}) + 1.0) + x * exp(-0.5 * x * x) * ${INV_SQRT_2PI}) * y`;
  const helper = `
fn gelu_tanh_slope(v: f32) -> f32 {
  let t = safe_tanh((v + v * v * v * ${GELU_C}) * ${SQRT_2_OVER_PI});
  let sech2 = 1.0 - t * t;
  return 0.5 * (1.0 + t) + select(0.5 * v * sech2 * ${SQRT_2_OVER_PI} * (1.0 + 3.0 * ${GELU_C} * v * v), 0.0, sech2 == 0.0);
}`;
  const out = ctx.alloc(4 * n);
  if (n === 0) return out;
  const kernel = ctx.kernel(`gelu-backward:${approximate}`, () => mapKernelSource(2, expr).replace('@group(0) @binding(1)', `${helper}\n@group(0) @binding(1)`));
  ctx.dispatch(kernel, [x, gy, out], new Uniforms().u32(n), grid(n, WG));
  return out;
}

// -- broadcasting ----------------------------------------------------------------------------------

interface Walk {
  readonly shape: number[];
  readonly strides: number[][];
}

function walk(outShape: Shape, inputShapes: readonly Shape[]): Walk {
  const merged = mergeDims(outShape, inputShapes.map((s) => broadcastStrides(s, outShape)));
  if (merged.shape.length > MAX_RANK) throw new RangeError(`webgpu: broadcasting over ${merged.shape.length} dimensions that cannot be merged (at most ${MAX_RANK})`);
  return merged;
}

/** Uniform words: n, rank, shape[MAX_RANK], then each input's strides[MAX_RANK]. */
function walkUniforms(n: number, w: Walk): Uniforms {
  const u = new Uniforms().u32(n, w.shape.length);
  const pad = (xs: readonly number[]) => [...xs, ...new Array<number>(MAX_RANK - xs.length).fill(0)];
  u.u32(...pad(w.shape));
  for (const s of w.strides) u.u32(...pad(s));
  return u;
}

function broadcastSource(inputs: number, expr: string): string {
  const words = 2 + MAX_RANK * (1 + inputs);
  const bindings = Array.from({ length: inputs }, (_, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<f32>;`).join('\n');
  const offs = Array.from({ length: inputs }, (_, i) => `var o${i} = 0u;`).join(' ');
  const steps = Array.from({ length: inputs }, (_, i) => `o${i} += r * pu(${2 + MAX_RANK * (i + 1)}u + d);`).join(' ');
  const loads = ['let x = in0[o0];', 'let y = in1[o1];', 'let z = in2[o2];'].slice(0, inputs).join(' ');
  return `${uniformPrelude(words)}${MATH_WGSL}
${bindings}
@group(0) @binding(${inputs + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let rank = pu(1u);
  var rest = i;
  ${offs}
  for (var k = 0u; k < rank; k++) {
    let d = rank - 1u - k;
    let size = pu(2u + d);
    let r = rest % size;
    rest = rest / size;
    ${steps}
  }
  ${loads}
  out[i] = ${expr};
}`;
}

function broadcast(ctx: GpuContext, key: string, inputs: readonly GPUBuffer[], shapes: readonly Shape[], outShape: Shape, expr: string): GPUBuffer {
  const n = shapeSize(outShape);
  const w = walk(outShape, shapes);
  // Every input walks the output contiguously: one flat map (the common same-shape case).
  if (w.shape.length === 1 && w.strides.every((s) => s[0] === 1)) return map(ctx, key, inputs, n, expr);
  const out = ctx.alloc(4 * n);
  if (n === 0) return out;
  const kernel = ctx.kernel(`broadcast:${inputs.length}:${key}`, () => broadcastSource(inputs.length, expr));
  ctx.dispatch(kernel, [...inputs, out], walkUniforms(n, w), grid(n, WG));
  return out;
}

export function binaryGpu(ctx: GpuContext, op: BinaryOp, a: GPUBuffer, aShape: Shape, b: GPUBuffer, bShape: Shape, outShape: Shape): GPUBuffer {
  return broadcast(ctx, `binary:${op}`, [a, b], [aShape, bShape], outShape, BINARY_EXPR[op]);
}

export function whereGpu(ctx: GpuContext, cond: GPUBuffer, condShape: Shape, a: GPUBuffer, aShape: Shape, b: GPUBuffer, bShape: Shape, outShape: Shape): GPUBuffer {
  return broadcast(ctx, 'where', [cond, a, b], [condShape, aShape, bShape], outShape, 'select(z, y, x != 0.0)');
}

/**
 * WGSL fused row kernels: softmax (plain and causal), log-softmax, LayerNorm, and their backward
 * rules. The contracts, with every formula, are in shared/backend/fused-norm.ts; the reference is
 * shared/backend/cpu/fused-norm.ts, and each expression below keeps its grouping.
 *
 * Approach. One workgroup per row (a 2-D grid past 65535 rows: row = wid.x + wid.y·nwg.x). The
 * workgroup's threads walk the row with a stride of the workgroup size (rows run from 1 to several
 * thousand columns: a vocabulary, an attention length), each keeping one partial max or sum, and
 * the partials are combined by a tree reduction in workgroup memory. Every pass re-reads the row
 * from the storage buffer (it is not held in registers), so any row length works. The workgroup
 * size follows the row length (32 … 256 threads) so short rows do not leave most threads idle.
 * LayerNorm's parameter gradients are column sums over the rows: a separate dispatch in which a
 * workgroup covers 64 columns with 4 row lanes; each lane sums its rows in order, and the 4 lane
 * sums are added in a fixed order, so the result is deterministic (no atomics).
 *
 * Precision. WGSL has no f64: sums are float32, but a tree of per-thread partials grows the error
 * like log(n) rather than n, well inside the 1e-5 relative tolerance against the float64 reference.
 *
 * Numerical traps (beyond those of fused-norm.ts: max subtraction, two-pass variance, eps inside
 * the root):
 *   - WGSL compilers may assume no NaN or infinity when optimizing, and a NaN or infinite constant
 *     is a compile error. The max reduction therefore starts from the lowest FINITE float
 *     (bits 0xff7fffff) rather than −∞: the same result for any row holding a value above it.
 *   - Causal softmax never loads a masked score (loops stop at n = i + 1), so NaN or ±∞ there
 *     cannot reach the max, the sum or the output; masked outputs are stored as exactly 0.
 *   - LayerNorm's mean is taken about the row's first element x₀ (a shift): δ = Σ(x − x₀)/n and the
 *     deviations are (x − x₀) − δ. A constant row then gives δ = 0 and deviations of exactly 0, so
 *     x̂ = 0 (as the float64 reference, where a float32 mean of the row could be an ulp off and give
 *     x̂ ≈ ±1e-7·rstd); and for rows with a large mean the deviations do not inherit the rounding of
 *     a float32 μ (x − x₀ is exact for nearby values), which would otherwise dominate x̂'s error.
 *     The stored mean is x₀ + δ, rounded once.
 *   - rstd is 1/sqrt(·), not inverseSqrt, whose accuracy WGSL specifies more loosely.
 */

/// <reference types="@webgpu/types" />

import type { LayerNormGradRequest } from '../../fused-norm.js';
import { grid, uniformPrelude, Uniforms, type GpuContext } from '../context.js';
import { fillKernel } from './elementwise.js';

/** Threads per row: the smallest power of two from 32 to 256 that covers the row in one sweep. */
function rowWorkgroup(cols: number): number {
  let wg = 32;
  while (wg < 256 && wg < cols) wg *= 2;
  return wg;
}

/** The lowest finite float32 (see the header: no −∞ constant). */
const LOWEST = 'bitcast<f32>(0xff7fffffu)';

/**
 * WGSL shared by the row kernels: workgroup-memory tree reductions over `wg` threads. Each begins
 * with a barrier, so a call may follow another's read of red[0] without a race; each must be called
 * in uniform control flow (they are, as every branch before them depends on uniforms only).
 */
function reductions(wg: number): string {
  return `
const WG: u32 = ${wg}u;
var<workgroup> red: array<f32, ${wg}>;
var<workgroup> red2: array<vec2<f32>, ${wg}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}
fn wg_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  return red[0];
}
fn wg_sum2(v: vec2<f32>, lid: u32) -> vec2<f32> {
  workgroupBarrier();
  red2[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red2[lid] = red2[lid] + red2[lid + s]; }
    workgroupBarrier();
  }
  return red2[0];
}
`;
}

/** Storage bindings 1, 2, … in order; a binding whose flag is false is left out (and so is its buffer). */
function bindings(list: ReadonlyArray<readonly [name: string, writable: boolean, present?: boolean]>): string {
  let n = 1;
  return list
    .filter(([, , present]) => present !== false)
    .map(([name, writable]) => `@group(0) @binding(${n++}) var<storage, ${writable ? 'read_write' : 'read'}> ${name}: array<f32>;`)
    .join('\n');
}

/** The entry point of a row kernel: `row`, `lid`, `rows`, `cols`, `o` (the row's offset), after an early uniform return. */
function rowMain(wg: number, body: string): string {
  return `
@compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let rows = pu(0u);
  let cols = pu(1u);
  let row = wid.x + wid.y * nwg.x;
  if (row >= rows) { return; }
  let o = row * cols;
${body}
}`;
}

function checkMatrix(op: string, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new RangeError(`${op}: [${rows}, ${cols}] is not a matrix shape`);
}

// ---- softmax and log-softmax ----------------------------------------------------------------------

/** Uniform words: rows, cols, causal (0/1). */
function softmaxSource(wg: number, log: boolean): string {
  const finish = log
    ? `  let log_sum = log(s);
  for (var j = lid; j < n; j += WG) { out[o + j] = (x[o + j] - m) - log_sum; }`
    : `  for (var j = lid; j < n; j += WG) { out[o + j] = out[o + j] / s; }
  for (var j = n + lid; j < cols; j += WG) { out[o + j] = 0.0; }`;
  // Softmax stores exp(x − m) in the sum pass and divides it in place (each thread re-reads only
  // what it wrote itself): one exp per element. Log-softmax needs no stored exponentials.
  const sumBody = log ? 's += exp(x[o + j] - m);' : 'let e = exp(x[o + j] - m); out[o + j] = e; s += e;';
  return `${uniformPrelude(3)}${reductions(wg)}
${bindings([
  ['x', false],
  ['out', true],
])}
${rowMain(
  wg,
  `  // Causal: row r is query i = r mod T and reads keys j <= i only; the others are never loaded.
  let n = select(cols, row % cols + 1u, pu(2u) != 0u);
  var m = ${LOWEST};
  for (var j = lid; j < n; j += WG) { m = max(m, x[o + j]); }
  m = wg_max(m, lid);
  var s = 0.0;
  for (var j = lid; j < n; j += WG) { ${sumBody} }
  s = wg_sum(s, lid);
${finish}`,
)}`;
}

function rowSoftmax(ctx: GpuContext, log: boolean, x: GPUBuffer, rows: number, cols: number, causal: boolean): GPUBuffer {
  const out = ctx.alloc(4 * rows * cols);
  if (rows * cols === 0) return out;
  const wg = rowWorkgroup(cols);
  const kernel = ctx.kernel(`${log ? 'log-softmax' : 'softmax'}:${wg}`, () => softmaxSource(wg, log));
  ctx.dispatch(kernel, [x, out], new Uniforms().u32(rows, cols, causal ? 1 : 0), grid(rows, 1));
  return out;
}

export function softmaxGpu(ctx: GpuContext, x: GPUBuffer, rows: number, cols: number, causal: boolean): GPUBuffer {
  checkMatrix('softmax', rows, cols);
  if (causal && cols > 0 && rows % cols !== 0) throw new RangeError(`softmax: causal rows ${rows} are not whole [${cols}, ${cols}] blocks`);
  return rowSoftmax(ctx, false, x, rows, cols, causal);
}

export function logSoftmaxGpu(ctx: GpuContext, x: GPUBuffer, rows: number, cols: number): GPUBuffer {
  checkMatrix('logSoftmax', rows, cols);
  return rowSoftmax(ctx, true, x, rows, cols, false);
}

/**
 * A backward row kernel: one row sum `s` of `sumTerm`, then out = `outExpr` (both over y, gy at
 * index k = o + j). Softmax: s = Σ gy·y, gx = y·(gy − s) (so y = 0, a masked entry, gives exactly
 * 0 for finite gy). Log-softmax: s = Σ gy, gx = gy − exp(y)·s (exp(y) ≤ 1: no overflow).
 */
function rowBackward(ctx: GpuContext, key: string, y: GPUBuffer, gy: GPUBuffer, rows: number, cols: number, sumTerm: string, outExpr: string): GPUBuffer {
  checkMatrix(key, rows, cols);
  const out = ctx.alloc(4 * rows * cols);
  if (rows * cols === 0) return out;
  const wg = rowWorkgroup(cols);
  const kernel = ctx.kernel(`${key}:${wg}`, () => `${uniformPrelude(2)}${reductions(wg)}
${bindings([
  ['y', false],
  ['gy', false],
  ['out', true],
])}
${rowMain(
  wg,
  `  var s = 0.0;
  for (var j = lid; j < cols; j += WG) { let k = o + j; s += ${sumTerm}; }
  s = wg_sum(s, lid);
  for (var j = lid; j < cols; j += WG) { let k = o + j; out[k] = ${outExpr}; }`,
)}`);
  ctx.dispatch(kernel, [y, gy, out], new Uniforms().u32(rows, cols), grid(rows, 1));
  return out;
}

export function softmaxBackwardGpu(ctx: GpuContext, y: GPUBuffer, gy: GPUBuffer, rows: number, cols: number): GPUBuffer {
  return rowBackward(ctx, 'softmaxBackward', y, gy, rows, cols, 'gy[k] * y[k]', 'y[k] * (gy[k] - s)');
}

export function logSoftmaxBackwardGpu(ctx: GpuContext, y: GPUBuffer, gy: GPUBuffer, rows: number, cols: number): GPUBuffer {
  return rowBackward(ctx, 'logSoftmaxBackward', y, gy, rows, cols, 'gy[k]', 'gy[k] - exp(y[k]) * s');
}

// ---- LayerNorm ----------------------------------------------------------------------------------

/** Uniform words: rows, cols, eps (f32). One variant per weight / bias presence. */
function layerNormSource(wg: number, hasW: boolean, hasB: boolean): string {
  const affine = `d * rs${hasW ? ' * w[j]' : ''}${hasB ? ' + b[j]' : ''}`;
  return `${uniformPrelude(3)}${reductions(wg)}
${bindings([
  ['x', false],
  ['w', false, hasW],
  ['b', false, hasB],
  ['y', true],
  ['mean', true],
  ['rstd', true],
])}
${rowMain(
  wg,
  `  let n = f32(cols);
  // Pass 1: the mean about x0 (see the header): delta = mean(x - x0), deviations (x - x0) - delta.
  let x0 = x[o];
  var s = 0.0;
  for (var j = lid; j < cols; j += WG) { s += x[o + j] - x0; }
  let delta = wg_sum(s, lid) / n;
  // Pass 2: the biased variance as the mean of squared deviations (never E[x^2] - mean^2).
  var v = 0.0;
  for (var j = lid; j < cols; j += WG) { let d = (x[o + j] - x0) - delta; v += d * d; }
  v = wg_sum(v, lid);
  // eps inside the root: a constant row gives d = 0 and a finite rstd, so x-hat = 0.
  let rs = 1.0 / sqrt(v / n + pf(2u));
  for (var j = lid; j < cols; j += WG) { let d = (x[o + j] - x0) - delta; y[o + j] = ${affine}; }
  if (lid == 0u) { mean[row] = x0 + delta; rstd[row] = rs; }`,
)}`;
}

export function layerNormGpu(ctx: GpuContext, x: GPUBuffer, weight: GPUBuffer | null, bias: GPUBuffer | null, rows: number, cols: number, eps: number): { y: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer } {
  checkMatrix('layerNorm', rows, cols);
  if (cols === 0) {
    // Empty rows: μ = 0/0 and rstd = 1/√(NaN + eps), NaN as in the reference; y is empty.
    return { y: ctx.alloc(0), mean: fillKernel(ctx, rows, NaN), rstd: fillKernel(ctx, rows, NaN) };
  }
  const y = ctx.alloc(4 * rows * cols);
  const mean = ctx.alloc(4 * rows);
  const rstd = ctx.alloc(4 * rows);
  if (rows === 0) return { y, mean, rstd };
  const wg = rowWorkgroup(cols);
  const hasW = weight !== null;
  const hasB = bias !== null;
  const kernel = ctx.kernel(`layerNorm:${wg}:${hasW ? 'w' : ''}${hasB ? 'b' : ''}`, () => layerNormSource(wg, hasW, hasB));
  const buffers = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : []), y, mean, rstd];
  ctx.dispatch(kernel, buffers, new Uniforms().u32(rows, cols).f32(eps), grid(rows, 1));
  return { y, mean, rstd };
}

/** Uniform words: rows, cols. gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = gy·γ, both means from one vec2 reduction. */
function layerNormGxSource(wg: number, hasW: boolean): string {
  const gHat = hasW ? 'gy[o + j] * w[j]' : 'gy[o + j]';
  return `${uniformPrelude(2)}${reductions(wg)}
${bindings([
  ['gy', false],
  ['x', false],
  ['mean', false],
  ['rstd', false],
  ['w', false, hasW],
  ['gx', true],
])}
${rowMain(
  wg,
  `  let n = f32(cols);
  let mu = mean[row];
  let rs = rstd[row];
  // x-hat is recomputed from the saved mean and rstd, as the reference does.
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < cols; j += WG) {
    let xh = (x[o + j] - mu) * rs;
    let g = ${gHat};
    acc += vec2<f32>(g, g * xh);
  }
  let t = wg_sum2(acc, lid);
  let mg = t.x / n;
  let mgx = t.y / n;
  for (var j = lid; j < cols; j += WG) { gx[o + j] = rs * (${gHat} - mg - (x[o + j] - mu) * rs * mgx); }`,
)}`;
}

const COL_TILE = 64;
const ROW_LANES = 4;

/**
 * Column sums gWeight = Σᵢ gy·x̂, gBias = Σᵢ gy. Uniform words: rows, cols. Workgroup (64, 4):
 * column j = group·64 + lid.x, lane lid.y sums rows lid.y, lid.y + 4, … in order; the four lane
 * sums are then added in lane order. Neighbouring threads read neighbouring columns of a row.
 */
function layerNormParamSource(wantW: boolean, wantB: boolean): string {
  const terms: string[] = [];
  if (wantW) terms.push('g * ((x[k] - mean[r]) * rstd[r])');
  if (wantB) terms.push('g');
  const acc = wantW && wantB ? `vec2<f32>(${terms.join(', ')})` : terms[0];
  const type = wantW && wantB ? 'vec2<f32>' : 'f32';
  const zero = wantW && wantB ? 'vec2<f32>(0.0, 0.0)' : '0.0';
  const store = wantW && wantB ? 'gw[j] = t.x; gb[j] = t.y;' : wantW ? 'gw[j] = t;' : 'gb[j] = t;';
  return `${uniformPrelude(2)}
${bindings([
  ['gy', false],
  ['x', false, wantW],
  ['mean', false, wantW],
  ['rstd', false, wantW],
  ['gw', true, wantW],
  ['gb', true, wantB],
])}
var<workgroup> part: array<${type}, ${COL_TILE * ROW_LANES}>;
@compute @workgroup_size(${COL_TILE}, ${ROW_LANES}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let rows = pu(0u);
  let cols = pu(1u);
  let j = (wid.x + wid.y * nwg.x) * ${COL_TILE}u + lid.x;
  var a = ${zero};
  if (j < cols) {
    for (var r = lid.y; r < rows; r += ${ROW_LANES}u) {
      let k = r * cols + j;
      let g = gy[k];
      a += ${acc};
    }
  }
  part[lid.y * ${COL_TILE}u + lid.x] = a;
  workgroupBarrier();
  if (lid.y == 0u && j < cols) {
    var t = part[lid.x];
    for (var l = 1u; l < ${ROW_LANES}u; l++) { t += part[l * ${COL_TILE}u + lid.x]; }
    ${store}
  }
}`;
}

export function layerNormBackwardGpu(
  ctx: GpuContext,
  gy: GPUBuffer,
  x: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  weight: GPUBuffer | null,
  rows: number,
  cols: number,
  grads: LayerNormGradRequest,
): { gx: GPUBuffer; gWeight: GPUBuffer | null; gBias: GPUBuffer | null } {
  checkMatrix('layerNormBackward', rows, cols);
  const gx = ctx.alloc(4 * rows * cols);
  const gWeight = grads.weight ? ctx.alloc(4 * cols) : null;
  const gBias = grads.bias ? ctx.alloc(4 * cols) : null;
  if (rows * cols > 0) {
    const wg = rowWorkgroup(cols);
    const hasW = weight !== null;
    const kernel = ctx.kernel(`layerNormBackward:${wg}:${hasW ? 'w' : ''}`, () => layerNormGxSource(wg, hasW));
    ctx.dispatch(kernel, [gy, x, mean, rstd, ...(weight ? [weight] : []), gx], new Uniforms().u32(rows, cols), grid(rows, 1));
  }
  // The column sums run even for rows = 0 (they are then zeros).
  if ((gWeight || gBias) && cols > 0) {
    const wantW = gWeight !== null;
    const wantB = gBias !== null;
    const kernel = ctx.kernel(`layerNormParamGrads:${wantW ? 'w' : ''}${wantB ? 'b' : ''}`, () => layerNormParamSource(wantW, wantB));
    const buffers = [gy, ...(gWeight ? [x, mean, rstd, gWeight] : []), ...(gBias ? [gBias] : [])];
    ctx.dispatch(kernel, buffers, new Uniforms().u32(rows, cols), grid(cols, COL_TILE));
  }
  return { gx, gWeight, gBias };
}

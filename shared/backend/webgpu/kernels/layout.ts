/**
 * WGSL data-movement kernels: permute, slice and its adjoint pad, concat, gather and its adjoint
 * scatterAdd. The reference is shared/backend/cpu/layout.ts; every kernel here only moves float32
 * values (or, for scatterAdd, adds them in the reference's order), so results are bit-identical.
 *
 * Strided copy. permute, slice and pad are one kernel: over an iteration shape, element
 * (i_0, …, i_{k−1}) goes from src[sbase + Σ i_d·sstride_d] to dst[dbase + Σ i_d·dstride_d]. The
 * iteration shape and both stride lists are first merged with the CPU kernels' `mergeDims`
 * (size-1 dimensions vanish, dimensions contiguous on both sides fuse), so e.g. a slice of whole
 * rows is one dimension, and a fully contiguous move becomes a plain buffer copy.
 *   - permute: the output shape, contiguous dst strides, the input strides permuted;
 *   - slice: the block's shape, contiguous dst strides, the input strides from sbase = begin·strides;
 *   - pad: zeros of outShape (one fill), then the input written through the output's strides.
 *
 * Concat. The output is [outer, rowLen] with input t owning columns [off_t, off_t + c_t) of every
 * row (c_t = its size from `axis` on). With outer = 1 it is one buffer copy per input. Otherwise a
 * dispatch (one pipeline for every group size) writes the columns of a group of at most GROUP inputs (one storage binding each, plus
 * the output: GROUP + 1 bindings fit the guaranteed minimum of 8 storage buffers per stage), each
 * thread finding its input by comparing its column with the group's offsets.
 *
 * Gather. out[o, t, j] = a[o, idx[t], j] over [outer, T, inner], with idx uploaded as u32.
 *
 * scatterAdd, deterministically. out[o, d, j] = Σ a[o, t, j] over the t with idx[t] = d. No float
 * atomics (their order varies run to run): the host builds the inverse map in CSR form — for each
 * d, the sources t in increasing order — and each output element adds its sources in that order,
 * starting from 0, which is exactly the reference's order of accumulation. Each float32 addition
 * is correctly rounded on both sides (the reference adds in float64 and rounds to float32 after
 * every step, which for a sum of two float32 values gives the same result), so the results agree
 * bit for bit (up to a device that flushes subnormals to zero).
 */

/// <reference types="@webgpu/types" />

import { mergeDims } from '../../cpu/elementwise.js';
import { shapeSize, stridesOf, type Shape } from '../../../tensor/shape.js';
import { grid, linearIndex, uniformPrelude, Uniforms, type GpuContext } from '../context.js';
import { fillKernel, MAX_RANK, WG } from './elementwise.js';
import { releaseTemp } from './reduce.js';

/** Inputs per concat dispatch (with the output, 7 storage bindings: within the minimum of 8). */
const GROUP = 6;

// -- strided copy ---------------------------------------------------------------------------------

const STRIDED_WORDS = 4 + 3 * MAX_RANK;

const stridedSource = (): string => `${uniformPrelude(STRIDED_WORDS)}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let rank = pu(1u);
  var d_off = pu(2u);
  var s_off = pu(3u);
  var rest = i;
  for (var k = 0u; k < rank; k++) {
    let d = rank - 1u - k;
    let size = pu(4u + d);
    let r = rest % size;
    rest = rest / size;
    d_off += r * pu(${4 + MAX_RANK}u + d);
    s_off += r * pu(${4 + 2 * MAX_RANK}u + d);
  }
  dst[d_off] = src[s_off];
}`;

/** dst[dbase + idx·dstStrides] = src[sbase + idx·srcStrides] for every idx of `shape`. */
function stridedCopy(ctx: GpuContext, src: GPUBuffer, sbase: number, srcStrides: readonly number[], dst: GPUBuffer, dbase: number, dstStrides: readonly number[], shape: Shape): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const m = mergeDims(shape, [[...dstStrides], [...srcStrides]]);
  const [ds, ss] = m.strides;
  if (n === 1 || (m.shape.length === 1 && ds[0] === 1 && ss[0] === 1)) {
    ctx.copy(src, 4 * sbase, dst, 4 * dbase, 4 * n);
    return;
  }
  if (m.shape.length > MAX_RANK) throw new RangeError(`webgpu: a layout over ${m.shape.length} dimensions that cannot be merged (at most ${MAX_RANK})`);
  const pad = (xs: readonly number[]) => [...xs, ...new Array<number>(MAX_RANK - xs.length).fill(0)];
  const u = new Uniforms().u32(n, m.shape.length, dbase, sbase).u32(...pad(m.shape)).u32(...pad(ds)).u32(...pad(ss));
  ctx.dispatch(ctx.kernel('layout:strided', stridedSource), [src, dst], u, grid(n, WG));
}

export function permuteGpu(ctx: GpuContext, a: GPUBuffer, shape: Shape, perm: readonly number[]): GPUBuffer {
  const outShape = perm.map((p) => shape[p]);
  const inStrides = stridesOf(shape);
  const out = ctx.alloc(4 * shapeSize(shape));
  stridedCopy(ctx, a, 0, perm.map((p) => inStrides[p]), out, 0, stridesOf(outShape), outShape);
  return out;
}

export function sliceGpu(ctx: GpuContext, a: GPUBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): GPUBuffer {
  const strides = stridesOf(shape);
  const out = ctx.alloc(4 * shapeSize(size));
  const base = begin.reduce((s, b, d) => s + b * strides[d], 0);
  stridedCopy(ctx, a, base, strides, out, 0, stridesOf(size), size);
  return out;
}

export function padGpu(ctx: GpuContext, a: GPUBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): GPUBuffer {
  const out = fillKernel(ctx, shapeSize(outShape), 0);
  const strides = stridesOf(outShape);
  const base = begin.reduce((s, b, d) => s + b * strides[d], 0);
  stridedCopy(ctx, a, 0, stridesOf(shape), out, base, strides, shape);
  return out;
}

// -- concat ---------------------------------------------------------------------------------------

/**
 * Uniform words: n, group width, rowLen, group's first column, offsets[GROUP], sizes[GROUP], and
 * the number of inputs in the group. One pipeline serves every group size: the bindings past the
 * group's inputs repeat its first input (never read), as layout 'auto' needs every binding bound.
 */
function concatSource(): string {
  const k = GROUP;
  const bindings = Array.from({ length: k }, (_, t) => `@group(0) @binding(${t + 1}) var<storage, read> in${t}: array<f32>;`).join('\n');
  const cases = Array.from({ length: k }, (_, t) => `    case ${t}u: { v = in${t}[at]; }`).join('\n');
  return `${uniformPrelude(5 + 2 * GROUP)}
${bindings}
@group(0) @binding(${k + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let width = pu(1u);
  let o = i / width;
  let p = i % width;
  var t = 0u;
  for (var s = 1u; s < pu(4u + ${2 * GROUP}u); s++) { if (p >= pu(4u + s)) { t = s; } }
  let c = pu(${4 + GROUP}u + t);
  let at = o * c + (p - pu(4u + t));
  var v = 0.0;
  switch t {
${cases}
    default: {}
  }
  out[o * pu(2u) + pu(3u) + p] = v;
}`;
}

export function concatGpu(ctx: GpuContext, inputs: readonly GPUBuffer[], shapes: readonly Shape[], axis: number): GPUBuffer {
  const outer = shapeSize(shapes[0].slice(0, axis));
  const chunks = shapes.map((s) => shapeSize(s.slice(axis)));
  const rowLen = chunks.reduce((x, y) => x + y, 0);
  const out = ctx.alloc(4 * outer * rowLen);
  if (outer * rowLen === 0) return out;
  const starts: number[] = [];
  chunks.reduce((s, c, t) => ((starts[t] = s), s + c), 0);
  const live = chunks.map((_, t) => t).filter((t) => chunks[t] > 0);
  if (outer === 1) {
    for (const t of live) ctx.copy(inputs[t], 0, out, 4 * starts[t], 4 * chunks[t]);
    return out;
  }
  for (let g = 0; g < live.length; g += GROUP) {
    // Inputs are adjacent in the output row (the empty ones between them own no columns).
    const group = live.slice(g, g + GROUP);
    const first = starts[group[0]];
    const width = group.reduce((s, t) => s + chunks[t], 0);
    const offsets = group.map((t) => starts[t] - first);
    const fill = (xs: number[]) => [...xs, ...new Array<number>(GROUP - xs.length).fill(0)];
    const n = outer * width;
    const u = new Uniforms().u32(n, width, rowLen, first).u32(...fill(offsets)).u32(...fill(group.map((t) => chunks[t]))).u32(group.length);
    const bound = Array.from({ length: GROUP }, (_, k) => inputs[group[k] ?? group[0]]);
    ctx.dispatch(ctx.kernel('layout:concat', concatSource), [...bound, out], u, grid(n, WG));
  }
  return out;
}

// -- gather and scatterAdd --------------------------------------------------------------------------

function checkIndices(what: string, indices: Int32Array, dim: number): void {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i];
    if (v < 0 || v >= dim) throw new RangeError(`webgpu ${what}: index ${v} (position ${i}) is out of range for an axis of size ${dim}`);
  }
}

/** A fresh buffer holding `data` (u32 words), released once what is recorded so far has run. */
function uploadTemp(ctx: GpuContext, data: Uint32Array): GPUBuffer {
  const buffer = ctx.alloc(4 * Math.max(1, data.length));
  ctx.writeFresh(buffer, data);
  return buffer;
}

const gatherSource = (): string => `${uniformPrelude(4)}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let count = pu(1u);
  let inner = pu(2u);
  let dim = pu(3u);
  let j = i % inner;
  let q = i / inner;
  let t = q % count;
  let o = q / count;
  out[i] = a[(o * dim + idx[t]) * inner + j];
}`;

export function gatherGpu(ctx: GpuContext, a: GPUBuffer, shape: Shape, axis: number, indices: Int32Array): GPUBuffer {
  const outer = shapeSize(shape.slice(0, axis));
  const dim = shape[axis];
  const inner = shapeSize(shape.slice(axis + 1));
  const n = outer * indices.length * inner;
  const out = ctx.alloc(4 * n);
  if (n === 0) return out;
  checkIndices('gather', indices, dim);
  const idx = uploadTemp(ctx, Uint32Array.from(indices));
  ctx.dispatch(ctx.kernel('layout:gather', gatherSource), [a, idx, out], new Uniforms().u32(n, indices.length, inner, dim), grid(n, WG));
  releaseTemp(ctx, idx);
  return out;
}

/** csr[0 .. dim] are row starts into csr[dim + 1 ..], which lists each row's sources in order. */
const scatterSource = (): string => `${uniformPrelude(4)}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> csr: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  if (i >= pu(0u)) { return; }
  let count = pu(1u);
  let inner = pu(2u);
  let dim = pu(3u);
  let j = i % inner;
  let q = i / inner;
  let d = q % dim;
  let o = q / dim;
  let base = o * count * inner + j;
  let end = csr[d + 1u];
  var acc = 0.0;
  for (var k = csr[d]; k < end; k++) {
    acc += a[base + csr[dim + 1u + k] * inner];
  }
  out[i] = acc;
}`;

export function scatterAddGpu(ctx: GpuContext, a: GPUBuffer, shape: Shape, axis: number, indices: Int32Array, outShape: Shape): GPUBuffer {
  const outer = shapeSize(shape.slice(0, axis));
  const dim = outShape[axis];
  const inner = shapeSize(shape.slice(axis + 1));
  const n = outer * dim * inner;
  if (n === 0) return ctx.alloc(0);
  checkIndices('scatterAdd', indices, dim);
  if (indices.length === 0) return fillKernel(ctx, n, 0);
  // Counting sort of the sources by destination: stable, so each row lists its sources in order.
  const csr = new Uint32Array(dim + 1 + indices.length);
  for (let t = 0; t < indices.length; t++) csr[indices[t] + 1]++;
  for (let d = 0; d < dim; d++) csr[d + 1] += csr[d];
  const next = csr.slice(0, dim);
  for (let t = 0; t < indices.length; t++) csr[dim + 1 + next[indices[t]]++] = t;
  const map = uploadTemp(ctx, csr);
  const out = ctx.alloc(4 * n);
  ctx.dispatch(ctx.kernel('layout:scatter-add', scatterSource), [a, map, out], new Uniforms().u32(n, indices.length, inner, dim), grid(n, WG));
  releaseTemp(ctx, map);
  return out;
}

/**
 * WGSL reductions: sum and max over any set of axes. The reference is shared/backend/cpu/reduce.ts.
 *
 * Shape. Size-1 dimensions are dropped first (they carry no iteration), so reduced axes separated
 * only by size-1 axes become one run. Each maximal run of adjacent reduced axes views the tensor
 * as [outer, r, inner]; runs are reduced one after another, the last first, as in the reference.
 * No axes at all is a copy.
 *
 * One pass. The outputs of a run are numbered c = o·inner + j (o < outer, j < inner), c < ncols;
 * output c reduces src[o·r·inner + i·inner + j] over i < r. A workgroup is TX × TY threads: TX
 * consecutive outputs, and TY lanes that split a chunk of TY·ITEMS consecutive i between them,
 * ITEMS consecutive values per lane, combined in order by each lane and then by an
 * order-preserving tree in workgroup memory (step s combines lane t with lane t + s for t a
 * multiple of 2s, so the left operand always covers the smaller i). A chunk's result is one
 * partial; when r spans several chunks the partials form a new, shorter reduction and the pass
 * repeats until one chunk is left. The shapes of workgroup:
 *   - r ≤ SEQ_MAX: TX = 256, TY = 1, ITEMS = r: one thread per output, a plain loop (also r = 0,
 *     which leaves the identity: 0 for sum, −∞ for max);
 *   - rows (inner = 1) of at most 256: TX = 16 rows per workgroup, TY = 16, ITEMS = r / 16
 *     rounded up (one chunk);
 *   - longer rows: TX = 1, TY = 256, ITEMS = 4: a workgroup per 1024 values of a row; partials
 *     are laid out [c, chunk] so the next pass is again a row reduction;
 *   - columns (inner > 1): TX = 64, TY = 4 when inner ≥ 64, else TX = TY = 16 (a workgroup's TX
 *     outputs then span several o), ITEMS = 8: the TX threads of a lane read consecutive
 *     addresses; partials are laid out [chunk, c] so the next pass is again a column reduction
 *     with inner = ncols.
 * Only these four workgroup shapes exist, so only eight pipelines are ever compiled (compiling is
 * slow on a software adapter).
 *
 * Accuracy (sum). WGSL has no f64, so instead of the reference's float64 accumulator the sum is
 * blocked: each level adds at most ITEMS values in sequence and then log2(TY) tree levels, so its
 * rounding error is at most (ITEMS − 1 + log2 TY)·ε·Σ|x| with ε = 2⁻²⁴, and there are
 * ⌈log(r) / log(TY·ITEMS)⌉ levels (3 for ten million values). A single float32 running sum over
 * r values would instead err by up to r·ε·Σ|x|.
 *
 * Max. The combination "keep the left value unless the right one is greater, or is NaN while the
 * left is not" is associative and, combined in index order as above, yields exactly the
 * reference's sequential scan: the first NaN if there is one, else the first maximum (so −0 and +0
 * ties resolve as in the reference). NaN is tested by its bits (a compiler may fold x != x), and
 * −∞ is built from runtime bits (a literal infinity is a WGSL compile error).
 */

/// <reference types="@webgpu/types" />

import type { ReduceOp } from '../../backend.js';
import { shapeSize, type Shape } from '../../../tensor/shape.js';
import { grid, uniformPrelude, Uniforms, type GpuContext } from '../context.js';
import { MATH_WGSL } from './elementwise.js';

/** Longest reduction done by one thread in a plain loop (rounding error ≤ SEQ_MAX·ε·Σ|x|). */
const SEQ_MAX = 32;

interface Plan {
  readonly tx: number;
  readonly ty: number;
  readonly items: number;
}

function plan(r: number, inner: number): Plan {
  if (r <= SEQ_MAX) return { tx: 256, ty: 1, items: r };
  if (inner === 1) return r <= 256 ? { tx: 16, ty: 16, items: Math.ceil(r / 16) } : { tx: 1, ty: 256, items: 4 };
  return inner >= 64 ? { tx: 64, ty: 4, items: 8 } : { tx: 16, ty: 16, items: 8 };
}

/** A temporary buffer that is no longer needed once the commands recorded so far have run. */
export function releaseTemp(ctx: GpuContext, buffer: GPUBuffer): void {
  // Inside a scope the scope recycles it; outside, it is reusable after the next flush (which
  // submits every command recorded so far, including the ones that read it).
  if (!ctx.inScope) ctx.releaseLater(buffer);
}

function passSource(op: ReduceOp, p: Plan): string {
  const identity = op === 'sum' ? '0.0' : 'bitcast<f32>(0xff800000u | (pu(0u) & 0u))';
  const combine =
    op === 'sum'
      ? 'fn combine(a: f32, b: f32) -> f32 { return a + b; }'
      : 'fn combine(a: f32, b: f32) -> f32 { return select(a, b, b > a || (is_nan(b) && !is_nan(a))); }';
  const size = p.tx * p.ty;
  const tree =
    p.ty === 1
      ? ''
      : `
  let slot = lid.y * ${p.tx}u + lid.x;
  part[slot] = acc;
  workgroupBarrier();
  for (var s = 1u; s < ${p.ty}u; s = s * 2u) {
    if (lid.y % (2u * s) == 0u) { part[slot] = combine(part[slot], part[slot + s * ${p.tx}u]); }
    workgroupBarrier();
  }
  acc = part[slot];`;
  // Partials: [c, chunk] for row plans (TX = 1), [chunk, c] otherwise; the same when nchunks = 1.
  const at = p.tx === 1 ? 'c * nchunks + chunk' : 'chunk * ncols + c';
  return `${uniformPrelude(6)}${MATH_WGSL}
${combine}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${p.ty === 1 ? '' : `var<workgroup> part: array<f32, ${size}>;`}
@compute @workgroup_size(${p.tx}, ${p.ty})
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ncols = pu(0u);
  let r = pu(1u);
  let inner = pu(2u);
  let nchunks = pu(3u);
  let groups = pu(4u);
  let items = pu(5u);
  let g = wid.x + wid.y * nwg.x;
  if (g >= groups) { return; } // the same for the whole workgroup
  let block = g / nchunks;
  let chunk = g % nchunks;
  let c = block * ${p.tx}u + lid.x;
  let live = c < ncols; // dead threads still take part in the barriers
  let base = (c / inner) * r * inner + c % inner;
  let first = chunk * ${p.ty}u * items + lid.y * items;
  var acc = ${identity};
  if (live) {
    for (var k = 0u; k < items; k++) {
      let i = first + k;
      if (i >= r) { break; }
      acc = combine(acc, src[base + i * inner]);
    }
  }${tree}
  if (live && lid.y == 0u) { dst[${at}] = acc; }
}`;
}

/** Reduces [ncols / inner, r, inner] over r: one buffer of ncols values. */
function reduceRun(ctx: GpuContext, op: ReduceOp, a: GPUBuffer, outer: number, r: number, inner: number): GPUBuffer {
  const ncols = outer * inner;
  let cur = a;
  let curR = r;
  let curInner = inner;
  for (;;) {
    const p = plan(curR, curInner);
    const chunk = p.ty * p.items;
    const nchunks = chunk === 0 ? 1 : Math.ceil(curR / chunk);
    const out = ctx.alloc(4 * ncols * nchunks);
    const kernel = ctx.kernel(`reduce:${op}:${p.tx}x${p.ty}`, () => passSource(op, p));
    const groups = Math.ceil(ncols / p.tx) * nchunks;
    ctx.dispatch(kernel, [cur, out], new Uniforms().u32(ncols, curR, curInner, nchunks, groups, p.items), grid(groups, 1));
    if (cur !== a) releaseTemp(ctx, cur);
    cur = out;
    if (nchunks === 1) return cur;
    curR = nchunks;
    curInner = p.tx === 1 ? 1 : ncols;
  }
}

export function reduceGpu(ctx: GpuContext, op: ReduceOp, a: GPUBuffer, shape: Shape, axes: readonly number[]): GPUBuffer {
  const outSize = shapeSize(shape.filter((_, d) => !axes.includes(d)));
  if (outSize === 0) return ctx.alloc(0);
  // Drop size-1 dimensions, renumbering the reduced axes.
  const dims: number[] = [];
  const reduced: number[] = [];
  shape.forEach((size, d) => {
    if (size === 1) return;
    if (axes.includes(d)) reduced.push(dims.length);
    dims.push(size);
  });
  if (reduced.length === 0) {
    const out = ctx.alloc(4 * outSize);
    ctx.copy(a, 0, out, 0, 4 * outSize);
    return out;
  }
  const runs: Array<[number, number]> = [];
  for (const ax of reduced) {
    const last = runs[runs.length - 1];
    if (last && last[1] === ax) last[1] = ax + 1;
    else runs.push([ax, ax + 1]);
  }
  let cur = a;
  let curShape = dims;
  for (let k = runs.length - 1; k >= 0; k--) {
    const [from, to] = runs[k];
    const next = reduceRun(ctx, op, cur, shapeSize(curShape.slice(0, from)), shapeSize(curShape.slice(from, to)), shapeSize(curShape.slice(to)));
    if (cur !== a) releaseTemp(ctx, cur);
    cur = next;
    curShape = [...curShape.slice(0, from), ...curShape.slice(to)];
  }
  return cur;
}

/**
 * WGSL matrix product: out[t] = op(A[t]) · op(B[t]) for t < batch, float32, where op transposes an
 * operand stored transposed (transA: a is [k, m]; transB: b is [n, k]) and a broadcast operand is
 * one matrix shared by every batch member (batch stride 0). The reference is
 * shared/backend/cpu/matmul.ts; like it, this kernel never materialises a transpose: A(i, p) is
 * read at i·sAi + p·sAp and B(p, j) at p·sBp + j·sBj, with the strides in the uniforms.
 *
 * Tiling. A workgroup of TX × TY threads computes one TM × TN tile of the output, TM = TY·R and
 * TN = TX·C, each thread an R × C block held in R·C scalar accumulators. The k axis is walked in
 * steps of TK: the workgroup stages the TM × TK slice of A and the TK × TN slice of B in
 * workgroup memory, k-major and packed four to a vec4 (As[kk][i/4] holds rows i..i+3 at k = kk,
 * Bs[kk][j/4] columns j..j+3), one barrier, then every thread runs TK steps of
 *
 *     a_q = As[kk][q·TY + ty]   (q < R/4),   b_q = Bs[kk][q·TX + tx]   (q < C/4),
 *     acc[r][c] += a[r] · b[c]                                          (R·C multiply-adds)
 *
 * (R/4 + C/4 vec4 loads per R·C multiply-adds), and a second barrier before the next slice
 * overwrites the tiles. A thread's rows are 4·ty + q·4·TY + {0..3} and its columns
 * 4·tx + q·4·TX + {0..3}: neighbouring threads read neighbouring vec4s (no bank conflicts on a GPU)
 * and store neighbouring 16-byte runs. The transposes only change how a slice is staged (which
 * strides, and on a GPU which thread loads which element, so that neighbouring threads read
 * neighbouring addresses); the inner loop is the same for all four cases. Batch is the z dimension
 * of the dispatch; a grid beyond 65535 workgroups in a dimension is split into several dispatches
 * with the first tile of each in the uniforms.
 *
 * Edges, branch-free. Bounds are handled by clamping rather than by edge-tile branches (on a GPU
 * a clamp is two integer operations next to a memory access; on a software adapter every branch
 * is machine code to compile, see below). A row or column beyond the matrix is loaded from a
 * clamped address (its value only feeds outputs that are never stored). Past the end of k both
 * operands are replaced by exact zeros (a select, not a multiplication by 0: a duplicated Inf
 * would make NaN), so the last slice's extra steps add exactly +0 and change nothing. An output
 * element outside the matrix is stored to a spare slot allocated past the product's end. k = 0
 * runs no step and stores zeros.
 *
 * Two targets (MatmulTiling.target), chosen by the adapter:
 *   - 'gpu', a hardware adapter: 16 × 16 threads, 4 × 4 blocks, TK = 16 (64 × 64 tiles, 16
 *     accumulators a thread, ~8 KiB of workgroup memory, each tile row padded by one vec4 so that
 *     the staging stores do not conflict on banks), the inner loop unrolled by 4;
 *   - 'cpu', a software adapter (Mesa's llvmpipe/lavapipe runs a workgroup on one CPU thread, 8
 *     invocations to a SIMD vector). There every load from a storage or workgroup buffer is
 *     emitted lane by lane (a mask test, an address extraction and a scalar load per lane, ~7
 *     instructions per lane per float: uniform addresses are not detected), while a multiply-add
 *     is one vector instruction for 8 lanes. Loads, not arithmetic, set the speed, so the blocks
 *     are as large as the work allows: 16 × 16 per thread on 8 × 8 threads, TK = 8 (16 + 16 floats
 *     loaded per 256 multiply-adds; the accumulators spill to the stack, which on a CPU is cheap
 *     next to those loads). Small dimensions get smaller blocks and fewer threads so that a tile
 *     does not dwarf the matrix, and a grid with fewer than 4 tiles halves its 16-wide blocks so
 *     that every CPU thread gets work. Compile time is the other cost there (each load or store
 *     site is ~8 branchy lanes of machine code; lavapipe compiles this kernel in 0.5-2 s): the
 *     staging and store loops are loops, the inner loop is not unrolled, and the loop bounds come
 *     from the uniforms so that the compiler cannot unroll them either. Measured on lavapipe (2
 *     cores, bench/webgpu-matmul.ts): ~10-13 GFLOPS at N = 512..4096, ~3x tfjs-webgpu's kernel on
 *     the same adapter; 8 × 8 blocks reach ~half that, the 'gpu' tiling a quarter.
 *
 * Accuracy. Every product is accumulated in float32 over k in order, one accumulator per output
 * element (fma, which a device may or may not fuse): the error grows like √k·ulp of the data
 * scale, ~1e-6 relative for k of a few thousand, as for the CPU reference's float32 sums.
 */

/// <reference types="@webgpu/types" />

import type { MatmulSpec } from '../../backend.js';
import { uniformPrelude, Uniforms, type GpuContext } from '../context.js';

/** One tiling of the kernel: threads TX × TY, register block R × C (multiples of 4), k-tile TK. */
export interface MatmulTiling {
  readonly tx: number;
  readonly ty: number;
  readonly r: number;
  readonly c: number;
  readonly tk: number;
  /** k-steps per iteration of the inner loop (a divisor of tk). */
  readonly unroll: number;
  /**
   * 'gpu': tile elements are assigned to threads so that neighbouring threads load neighbouring
   * addresses (coalescing; the pipeline then depends on the transposes), and the loop bounds are
   * constants the compiler may unroll. 'cpu' (a software adapter): one pipeline for all four
   * transpose cases, and the bounds of the k-step and store loops come from the uniforms, so that
   * the compiler cannot unroll them: there code size, not loop overhead, is the cost (every load
   * and store is ~8 branchy lanes of machine code, and compile time grows with their number).
   */
  readonly target: 'gpu' | 'cpu';
}

/** The hardware tiling: 64 × 64 tiles of 16 × 16 threads with 4 × 4 blocks. */
export const GPU_TILING: MatmulTiling = { tx: 16, ty: 16, r: 4, c: 4, tk: 16, unroll: 4, target: 'gpu' };

/** Software adapters: (threads, block) along one output dimension of `size`. Few classes: each is a pipeline to compile (~0.5-2 s on lavapipe). */
function softwareAxis(size: number): [number, number] {
  if (size <= 4) return [1, 4];
  if (size <= 16) return [4, 4];
  if (size <= 64) return [8, 8];
  return [8, 16];
}

/** Workgroups a software adapter needs in flight: lavapipe runs one per CPU thread. */
const SOFTWARE_MIN_GROUPS = 4;

/** The tiling `matmulGpu` uses for `spec` on this context's adapter. */
export function matmulTiling(ctx: GpuContext, spec: MatmulSpec): MatmulTiling {
  if (!ctx.adapter.software) return GPU_TILING;
  const [ty, r0] = softwareAxis(spec.m);
  const [tx, c0] = softwareAxis(spec.n);
  let r = r0;
  let c = c0;
  // A small grid leaves CPU threads idle: halve the larger 16-wide block until there are enough tiles.
  const groups = (): number => spec.batch * Math.ceil(spec.m / (ty * r)) * Math.ceil(spec.n / (tx * c));
  while (groups() < SOFTWARE_MIN_GROUPS && (r > 8 || c > 8)) {
    if (r >= c) r /= 2;
    else c /= 2;
  }
  return { tx, ty, r, c, tk: 8, unroll: 1, target: 'cpu' };
}

const WORDS = 15;
const MAX_GROUPS = 65535;

/** vec4s per k row of the A and B tiles: 'gpu' pads each row by one vec4 (bank conflicts of the staging stores). */
function pitches(t: MatmulTiling): [number, number] {
  const pad = t.target === 'gpu' ? 1 : 0;
  return [(t.ty * t.r) / 4 + pad, (t.tx * t.c) / 4 + pad];
}

/** Workgroup memory of a tiling, in bytes. */
export function matmulWorkgroupBytes(t: MatmulTiling): number {
  const [pa, pb] = pitches(t);
  return 16 * t.tk * (pa + pb);
}

function checkTiling(t: MatmulTiling): void {
  const ok = [t.tx, t.ty, t.tk, t.unroll].every((v) => Number.isInteger(v) && v >= 1) && t.tk % t.unroll === 0 && [t.r, t.c].every((v) => Number.isInteger(v) && v >= 4 && v % 4 === 0);
  // 256 invocations and 16 KiB of workgroup memory: WebGPU's guaranteed minimums.
  if (!ok || t.tx * t.ty > 256 || matmulWorkgroupBytes(t) > 16384) throw new RangeError(`webgpu matmul: bad tiling ${JSON.stringify(t)}`);
}

/**
 * WGSL for one tiling (and, for the 'gpu' target, one transpose case). Uniform words: m, n, k, sAi,
 * sAp, sBp, sBj, A's and B's batch strides, the first batch, row tile and column tile of this
 * dispatch, the index of the spare slot (batch·m·n), and TK and R·C (the 'cpu' target's loop bounds).
 */
export function matmulSource(t: MatmulTiling, transA: boolean, transB: boolean): string {
  checkTiling(t);
  const { tx: TX, ty: TY, r: R, c: C, tk: TK } = t;
  const U = t.unroll;
  const NT = TX * TY;
  const TM4 = (TY * R) / 4;
  const TN4 = (TX * C) / 4;
  const [PA, PB] = pitches(t);
  const TM = TY * R;
  const TN = TX * C;
  const lines: string[] = [];
  const emit = (s: string): void => void lines.push(s);

  emit(uniformPrelude(WORDS));
  emit(`@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
var<workgroup> As: array<vec4<f32>, ${TK * PA}>;
var<workgroup> Bs: array<vec4<f32>, ${TK * PB}>;
@compute @workgroup_size(${TX}, ${TY})
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {
  let m = pu(0u); let n = pu(1u); let k = pu(2u);
  let sAi = pu(3u); let sAp = pu(4u); let sBp = pu(5u); let sBj = pu(6u);
  let batch = wid.z + pu(9u);
  let aBase = batch * pu(7u);
  let bBase = batch * pu(8u);
  let row0 = (wid.y + pu(10u)) * ${TM}u;
  let col0 = (wid.x + pu(11u)) * ${TN}u;
  let kLast = max(k, 1u) - 1u;`);

  // Staging: unit u of a tile is one vec4 (4 rows at one k for A, 4 columns at one k for B);
  // thread li loads units li, li + NT, ... (a loop: on a software adapter every load site is ~8
  // branchy lanes of machine code, and compile time grows with their number). kFast: consecutive
  // units walk k (on the 'gpu' target, for an operand contiguous along k), else rows (columns).
  const staging = (name: 'A' | 'B', units4: number, pitch: number, kFast: boolean): string => {
    const total = TK * units4;
    const [base, first, last, stride, tile, edge] = name === 'A' ? ['aBase', 'row0', 'm1', 'sAi', 'As', 'sAp'] : ['bBase', 'col0', 'n1', 'sBj', 'Bs', 'sBp'];
    const body = `      let kk = ${kFast ? `u % ${TK}u` : `u / ${units4}u`};
      let q = ${kFast ? `u / ${TK}u` : `u % ${units4}u`};
      let p = p0 + kk;
      let po = ${base} + min(p, kLast) * ${edge};
      let x0 = ${first} + q * 4u;
      let v = vec4<f32>(${[0, 1, 2, 3].map((j) => `${name}[po + min(x0${j ? ` + ${j}u` : ''}, ${last}) * ${stride}]`).join(', ')});
      ${tile}[kk * ${pitch}u + q] = select(vec4<f32>(0.0), v, p < k);`;
    if (total === NT) return `    {
      let u = li;
${body}
    }`;
    if (total < NT) return `    if (li < ${total}u) {
      let u = li;
${body}
    }`;
    return `    for (var u = li; u < ${total}u; u += ${NT}u) {
${body}
    }`;
  };

  for (let r = 0; r < R; r++) emit(`  ${Array.from({ length: C }, (_, c) => `var c${r}_${c} = 0.0;`).join(' ')}`);
  emit(`  let m1 = m - 1u;
  let n1 = n - 1u;
  let ay = lid.y;
  let bx = lid.x;
  for (var p0 = 0u; p0 < k; p0 += ${TK}u) {`);
  // A contiguous along k: not transposed ([m, k]); B contiguous along k: transposed ([n, k]).
  const gpu = t.target === 'gpu';
  emit(staging('A', TM4, PA, gpu && !transA));
  emit(staging('B', TN4, PB, gpu && transB));
  emit(`    workgroupBarrier();
    for (var kk = 0u; kk < ${gpu ? `${TK}u` : 'pu(13u)'}; kk += ${U}u) {`);
  const sw = ['x', 'y', 'z', 'w'];
  for (let s = 0; s < U; s++) {
    emit(`      {`);
    emit(`        let ka = (kk + ${s}u) * ${PA}u + ay;`);
    emit(`        let kb = (kk + ${s}u) * ${PB}u + bx;`);
    for (let q = 0; q < R / 4; q++) emit(`        let a${q} = As[ka${q ? ` + ${q * TY}u` : ''}];`);
    for (let q = 0; q < C / 4; q++) emit(`        let b${q} = Bs[kb${q ? ` + ${q * TX}u` : ''}];`);
    for (let r = 0; r < R; r++) {
      const a = `a${r >> 2}.${sw[r & 3]}`;
      emit(`        ${Array.from({ length: C }, (_, c) => `c${r}_${c} = fma(${a}, b${c >> 2}.${sw[c & 3]}, c${r}_${c});`).join(' ')}`);
    }
    emit(`      }`);
  }
  emit(`    }
    workgroupBarrier();
  }`);

  // Stores: element e = r·C + c of the block is row row0 + (r/4)·4·TY + 4·ty + r%4, column
  // col0 + (c/4)·4·TX + 4·tx + c%4. The accumulators are copied into an array and stored by a loop,
  // branch-free (an element outside the matrix goes to the spare slot allocated past the output's
  // end): on a software adapter each store is ~8 branchy lanes of machine code, and R·C stores
  // written out, each under an if, multiplied the compile time tenfold.
  emit(`  var res: array<f32, ${R * C}>;`);
  for (let r = 0; r < R; r++) emit(`  ${Array.from({ length: C }, (_, c) => `res[${r * C + c}] = c${r}_${c};`).join(' ')}`);
  emit(`  let spare = pu(12u);
  let oBase = batch * m * n;
  for (var e = 0u; e < ${gpu ? `${R * C}u` : 'pu(14u)'}; e++) {
    let r = e / ${C}u;
    let c = e % ${C}u;
    let i = row0 + (r / 4u) * ${4 * TY}u + (r % 4u) + 4u * ay;
    let j = col0 + (c / 4u) * ${4 * TX}u + (c % 4u) + 4u * bx;
    O[select(spare, oBase + i * n + j, i < m && j < n)] = res[e];
  }`);
  emit(`}`);
  return lines.join('\n');
}

function kernelKey(t: MatmulTiling, transA: boolean, transB: boolean): string {
  const trans = t.target === 'gpu' ? `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}` : 'cpu';
  return `matmul:${t.tx}x${t.ty}:${t.r}x${t.c}:${t.tk}/${t.unroll}:${trans}`;
}

/** The product with an explicit tiling (the tests run both targets' tilings on whatever adapter they have). */
export function matmulGpuTiled(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, spec: MatmulSpec, tiling: MatmulTiling): GPUBuffer {
  const { batch, m, n, k, transA, transB } = spec;
  checkTiling(tiling);
  const total = batch * m * n;
  if (total === 0) return ctx.alloc(0);
  // One float more than the product: the kernel's stores outside the matrix land there.
  const out = ctx.alloc(4 * (total + 1));
  const transKey = tiling.target === 'gpu' ? [transA, transB] : [false, false];
  const kernel = ctx.kernel(kernelKey(tiling, transA, transB), () => matmulSource(tiling, transKey[0], transKey[1]));
  const sAi = transA ? 1 : k;
  const sAp = transA ? m : 1;
  const sBp = transB ? 1 : n;
  const sBj = transB ? k : 1;
  const aStride = spec.aBroadcast ? 0 : m * k;
  const bStride = spec.bBroadcast ? 0 : k * n;
  const colTiles = Math.ceil(n / (tiling.tx * tiling.c));
  const rowTiles = Math.ceil(m / (tiling.ty * tiling.r));
  for (let z = 0; z < batch; z += MAX_GROUPS) {
    for (let y = 0; y < rowTiles; y += MAX_GROUPS) {
      for (let x = 0; x < colTiles; x += MAX_GROUPS) {
        const u = new Uniforms().u32(m, n, k, sAi, sAp, sBp, sBj, aStride, bStride, z, y, x, total, tiling.tk, tiling.r * tiling.c);
        ctx.dispatch(kernel, [a, b, out], u, [Math.min(MAX_GROUPS, colTiles - x), Math.min(MAX_GROUPS, rowTiles - y), Math.min(MAX_GROUPS, batch - z)]);
      }
    }
  }
  return out;
}

export function matmulGpu(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, spec: MatmulSpec): GPUBuffer {
  return matmulGpuTiled(ctx, a, b, spec, matmulTiling(ctx, spec));
}

/**
 * The wasm backend: tensors live in one shared WebAssembly memory; matrix products run in
 * AssemblyScript SIMD kernels split across a fork-join thread pool; every other op runs the
 * reference TypeScript kernel directly on views of that memory (no copies), writing into a block
 * from the same allocator. Only float32 is supported; float64 tensors (gradient checks) stay on the
 * CPU backend.
 *
 * Memory lifetime. JavaScript cannot tell when a tensor dies, so blocks come back two ways:
 *   - inside `scope(fn)` every block allocated is released when fn returns (a training step:
 *     forward, backward and the optimizer update all happen in one scope); a buffer used after its
 *     scope ended is an error, caught on its next use by a kernel or a read;
 *   - blocks allocated outside any scope (parameters) are released by a FinalizationRegistry once
 *     their buffer object is unreachable. A view handed out by readSync keeps its buffer reachable.
 */

import type { Backend, BinaryOp, DeviceBuffer, MatmulSpec, ReduceOp, UnaryOp } from '../backend.js';
import type { DType, FloatArray } from '../../tensor/dtype.js';
import { broadcastStrides, shapeSize, stridesOf, type Shape } from '../../tensor/shape.js';
import { binaryKernel, mergeDims, unaryKernel, whereKernel } from '../cpu/elementwise.js';
import { concatKernel, gatherKernel, padKernel, permuteKernel, scatterAddKernel, sliceKernel } from '../cpu/layout.js';
import { reduceKernel } from '../cpu/reduce.js';
import type { GeluApproximation, LayerNormGradRequest, LayerNormGrads, LayerNormResult } from '../fused-norm.js';
import type { WindowSpec } from '../conv-spec.js';
import { WasmHeap } from './heap.js';
import { float32Bits, GEMM_FLAGS, GEMM_SPLIT, instantiateKernels, kernelModule, ROW_KIND, runChunk, type KernelExports, type KernelFlavour } from './kernels.js';
import { OP } from './control.js';
import { ThreadPool } from './pool.js';
import type { AdamArgs, VectorOps } from '../../optim/vector-ops.js';
import { adamUpdateReference, sgdUpdateReference, type SgdArgs } from '../../optim/update-kernels.js';
import type { GruCellGrads, GruCellResult, LstmCellGrads, LstmCellResult, RnnActivation } from '../fused-recurrent.js';
import { gruCellBackwardKernel, rnnCellBackwardKernel, rnnCellKernel } from '../cpu/fused-recurrent.js';

class WasmBuffer implements DeviceBuffer {
  readonly dtype: DType = 'float32';
  released = false;
  constructor(readonly ptr: number, readonly size: number, readonly length: number, readonly view: Float32Array) {}
}

/**
 * Matrix products smaller than this many multiply-adds run on one thread while the pool threads
 * spin (a fork-join then costs ~5 µs); pieces of a split product are at least a quarter of it, and
 * window ops (im2col, col2im, pooling) split only above a quarter of it in output elements.
 */
const PARALLEL_MIN_MACS = 1 << 18;
/** A pool thread asleep in Atomics.wait takes 60–80 µs to wake: fork only this many times more work. */
const ASLEEP_FACTOR = 8;
/** Pieces per thread of a split op, at most: a late or preempted thread then leaves little imbalance. */
const PIECES_PER_THREAD = 4;
/** Elements per piece of a split elementwise kernel: a multiple of every SIMD group width. */
const ELEMENT_PIECE = 64;
/** A V operand broadcast over the batch is packed once per piece when it takes at most this many bytes. */
const PACK_ONCE_MAX_BYTES = 2 << 20;
/**
 * The gemm kernel's register tile (4 S rows by 8 V lanes), k blocks and lane groups, copied from
 * assembly/gemm.ts for the cost model and the pieces (a stale copy changes speed, never results).
 */
const MR = 4;
const NR = 8;
const KC_MAX = 256;
const GROUP_BYTES = 192 << 10;

/** Operation codes of the SIMD kernels (assembly/elementwise.ts). */
const BINARY_CODES: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3, gt: 4, ge: 5, eq: 6 };
const UNARY_CODES: Partial<Record<UnaryOp, number>> = { neg: 0, abs: 1, sqrt: 2 };
/** The float32 polynomial kernels of assembly/fused.ts (within a few ulps of Math.exp etc.). */
const TRANSCENDENTAL_CODES: Partial<Record<UnaryOp, number>> = { exp: 0, tanh: 1, sigmoid: 2, erf: 3 };

export interface WasmBackendOptions {
  /** Threads for intra-op parallelism, this one included (default 1). */
  readonly threads?: number;
  /** Force a kernel build (tests and benchmarks); default: relaxed SIMD if the runtime has it. */
  readonly flavour?: KernelFlavour;
  readonly initialBytes?: number;
  /** Products with fewer multiply-adds run on one thread (default 2^18; tests force forks with 0). */
  readonly parallelMinMacs?: number;
  /** The least time a fork-join waits for its pool threads before failing (default 10 s). */
  readonly stallAfterMs?: number;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  private readonly heap: WasmHeap;
  private readonly kernels: KernelExports;
  private readonly scopes: WasmBuffer[][] = [];
  private readonly owners = new WeakMap<Float32Array, WasmBuffer>();
  private readonly finalizer = new FinalizationRegistry<{ ptr: number; size: number }>((b) => this.heap.release(b.ptr, b.size));

  private constructor(
    heap: WasmHeap,
    kernels: KernelExports,
    private readonly pool: ThreadPool | null,
    readonly flavour: KernelFlavour,
    private readonly parallelMinMacs: number,
  ) {
    this.heap = heap;
    this.kernels = kernels;
  }

  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const heap = new WasmHeap(options.initialBytes);
    const { module, flavour } = kernelModule(options.flavour);
    const kernels = instantiateKernels(module, heap.memory);
    const threads = options.threads ?? 1;
    const pool = threads > 1 ? await ThreadPool.start(threads, module, heap.memory, { stallAfterMs: options.stallAfterMs }) : null;
    return new WasmBackend(heap, kernels, pool, flavour, options.parallelMinMacs ?? PARALLEL_MIN_MACS);
  }

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  memoryStats(): ReturnType<WasmHeap['stats']> {
    return this.heap.stats();
  }

  // ---- memory ---------------------------------------------------------------------------------

  private alloc(length: number): WasmBuffer {
    const { ptr, size } = this.heap.alloc(Math.max(length, 1) * 4);
    const buffer = new WasmBuffer(ptr, size, length, this.heap.f32(ptr, length));
    this.buffersSeen.add(buffer.view.buffer);
    const scope = this.scopes[this.scopes.length - 1];
    if (scope) scope.push(buffer);
    else this.finalizer.register(buffer, { ptr, size }, buffer);
    return buffer;
  }

  private use(buffer: DeviceBuffer): WasmBuffer {
    if (!(buffer instanceof WasmBuffer)) throw new TypeError('the wasm backend was given a buffer that belongs to another backend');
    if (buffer.released) throw new Error('a tensor was used after the scope that created it ended (keep it by creating it outside the scope)');
    return buffer;
  }

  private f32(buffer: DeviceBuffer): Float32Array {
    return this.use(buffer).view;
  }

  /** Runs fn; every buffer allocated inside (and not before) is released when it returns. */
  scope<T>(fn: () => T): T {
    const mine: WasmBuffer[] = [];
    this.scopes.push(mine);
    try {
      return fn();
    } finally {
      this.scopes.pop();
      for (const b of mine) {
        b.released = true;
        this.heap.release(b.ptr, b.size);
      }
    }
  }

  private fresh(length: number): { buffer: WasmBuffer; out: Float32Array } {
    const buffer = this.alloc(length);
    return { buffer, out: buffer.view };
  }

  // ---- Backend --------------------------------------------------------------------------------

  upload(data: FloatArray): DeviceBuffer {
    if (!(data instanceof Float32Array)) throw new TypeError('the wasm backend holds float32 only; create float64 tensors on the cpu backend');
    const { buffer, out } = this.fresh(data.length);
    out.set(data);
    return buffer;
  }

  fill(dtype: DType, length: number, value: number): DeviceBuffer {
    if (dtype !== 'float32') throw new TypeError('the wasm backend holds float32 only; create float64 tensors on the cpu backend');
    const { buffer, out } = this.fresh(length);
    out.fill(value);
    return buffer;
  }

  read(buffer: DeviceBuffer): Promise<FloatArray> {
    return Promise.resolve(this.readSync(buffer));
  }

  readSync(buffer: DeviceBuffer): FloatArray {
    const b = this.use(buffer);
    this.owners.set(b.view, b);
    return b.view;
  }

  write(buffer: DeviceBuffer, data: FloatArray): void {
    const view = this.f32(buffer);
    if (data.length !== view.length) throw new RangeError(`write: ${data.length} values into a buffer of ${view.length}`);
    view.set(data);
  }

  assign(dst: DeviceBuffer, src: DeviceBuffer): void {
    this.write(dst, this.f32(src));
  }

  adamUpdate(p: DeviceBuffer, g: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, args: AdamArgs): void {
    const [pp, gg, mm, vv] = [this.f32(p), this.f32(g), this.f32(m), this.f32(v)];
    if (!this.vectorOps().adam(pp, gg, mm, vv, args)) adamUpdateReference(pp, gg, mm, vv, args);
  }

  sgdUpdate(p: DeviceBuffer, g: DeviceBuffer, momentumBuffer: DeviceBuffer | null, args: SgdArgs): void {
    sgdUpdateReference(this.f32(p), this.f32(g), momentumBuffer === null ? null : this.f32(momentumBuffer), args);
  }

  cast(buffer: DeviceBuffer, dtype: DType): DeviceBuffer {
    if (dtype !== 'float32') throw new TypeError('the wasm backend holds float32 only');
    return this.upload(this.f32(buffer));
  }

  unary(op: UnaryOp, a: DeviceBuffer): DeviceBuffer {
    const A = this.use(a);
    const { buffer, out } = this.fresh(a.length);
    const code = UNARY_CODES[op];
    const transcendental = TRANSCENDENTAL_CODES[op];
    if (code !== undefined) this.rowsOp(ROW_KIND.unary, code, A.ptr, 0, buffer.ptr, a.length, 1);
    else if (transcendental !== undefined) this.rowsOp(ROW_KIND.transcendental, transcendental, A.ptr, 0, buffer.ptr, a.length, 1);
    else unaryKernel(op, A.view, out);
    return buffer;
  }

  binary(op: BinaryOp, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    const A = this.use(a);
    const B = this.use(b);
    const { buffer, out } = this.fresh(shapeSize(outShape));
    if (!this.binarySimd(op, A, aShape, B, bShape, outShape, buffer)) binaryKernel(op, A.view, aShape, B.view, bShape, outShape, out);
    return buffer;
  }

  /**
   * The SIMD kernels cover the broadcasting patterns training uses: both operands whole, one a
   * scalar, b a row vector over rows (bias), or b one value per row (a per-channel bias, softmax
   * sums). Returns false for anything else, which the reference kernel then handles.
   */
  private binarySimd(op: BinaryOp, a: WasmBuffer, aShape: Shape, b: WasmBuffer, bShape: Shape, outShape: Shape, out: WasmBuffer): boolean {
    const code = BINARY_CODES[op];
    const n = out.length;
    if (code === undefined || n === 0) return false;
    if (a.length === n && b.length === n) {
      this.rowsOp(ROW_KIND.binary, code | 0x300, a.ptr, b.ptr, out.ptr, n, 1);
      return true;
    }
    if (a.length === n && b.length === 1) {
      this.rowsOp(ROW_KIND.binary, code | 0x100, a.ptr, b.ptr, out.ptr, n, 1);
      return true;
    }
    if (a.length === 1 && b.length === n) {
      // a scalar: the pieces step through b and out (bit 9 only)
      this.rowsOp(ROW_KIND.binary, code | 0x200, a.ptr, b.ptr, out.ptr, n, 1);
      return true;
    }
    if (a.length !== n) return false;
    const { shape, strides } = mergeDims(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
    const sb = strides[1];
    if (shape.length === 2 && sb[0] === 0 && sb[1] === 1) {
      this.rowsOp(ROW_KIND.binaryRows, code, a.ptr, b.ptr, out.ptr, shape[0], shape[1]);
      return true;
    }
    if (shape.length === 2 && sb[0] === 1 && sb[1] === 0) {
      this.rowsOp(ROW_KIND.binaryCols, code, a.ptr, b.ptr, out.ptr, shape[0], shape[1], 1, shape[0]);
      return true;
    }
    if (shape.length === 3 && sb[0] === 0 && sb[1] === 1 && sb[2] === 0) {
      // b repeats every shape[1] rows: pieces start at multiples of that period.
      this.rowsOp(ROW_KIND.binaryCols, code, a.ptr, b.ptr, out.ptr, shape[0] * shape[1], shape[2], shape[1], shape[1]);
      return true;
    }
    return false;
  }

  where(cond: DeviceBuffer, condShape: Shape, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    const { buffer, out } = this.fresh(shapeSize(outShape));
    whereKernel(this.f32(cond), condShape, this.f32(a), aShape, this.f32(b), bShape, outShape, out);
    return buffer;
  }

  reduce(op: ReduceOp, a: DeviceBuffer, shape: Shape, axes: readonly number[]): DeviceBuffer {
    const A = this.use(a);
    const outLength = shapeSize(shape.filter((_, i) => !axes.includes(i)));
    const { buffer, out } = this.fresh(outLength);
    // Sums in SIMD with float64 accumulators, one run of adjacent summed axes at a time, the last
    // run first, each as [outer, r, inner], with float32 results between runs: the reference
    // kernel's order of runs and roundings (a conv bias gradient, axes [0, 2, 3], is two runs).
    if (op === 'sum' && axes.length > 0 && a.length > 0) {
      const runs: Array<[number, number]> = [];
      for (const ax of axes) {
        const last = runs[runs.length - 1];
        if (last && last[1] === ax) last[1] = ax + 1;
        else runs.push([ax, ax + 1]);
      }
      let src = A.ptr;
      let current = [...shape];
      let temp: { ptr: number; size: number } | null = null;
      try {
        for (let i = runs.length - 1; i >= 0; i--) {
          const [from, to] = runs[i];
          const outer = shapeSize(current.slice(0, from));
          const r = shapeSize(current.slice(from, to));
          const inner = shapeSize(current.slice(to));
          const next = i === 0 ? null : this.heap.alloc(Math.max(1, outer * inner) * 4);
          const dst = next ? next.ptr : buffer.ptr;
          this.sumRun(src, dst, outer, r, inner);
          if (temp) this.heap.release(temp.ptr, temp.size);
          temp = next;
          src = dst;
          current = [...current.slice(0, from), ...current.slice(to)];
        }
      } finally {
        if (temp) this.heap.release(temp.ptr, temp.size);
      }
      return buffer;
    }
    reduceKernel(op, A.view, shape, axes, out);
    return buffer;
  }

  /** Sums [outer, r, inner] over r into [outer, inner] (float64 accumulators, float32 result). */
  private sumRun(src: number, dst: number, outer: number, r: number, inner: number): void {
    if (outer * inner === 0) return;
    if (inner === 1) {
      this.rowsOp(ROW_KIND.sumRows, 0, src, 0, dst, outer, r);
      return;
    }
    const acc = this.heap.alloc(inner * 8);
    try {
      this.kernels.sumMiddle(src, dst, outer, r, inner, acc.ptr);
    } finally {
      this.heap.release(acc.ptr, acc.size);
    }
  }

  /**
   * One kernel call for the whole batch (assembly/gemm.ts): the orientation comes from gemmPlan;
   * a product large enough is cut into pieces (members, S rows or V lanes: gemmPieces) that the
   * pool's threads claim one by one. Every element is the same chain of multiply-adds whichever
   * piece, orientation or thread computes it, so the bits do not depend on the thread count.
   */
  matmul(a: DeviceBuffer, b: DeviceBuffer, spec: MatmulSpec): DeviceBuffer {
    const A = this.use(a);
    const B = this.use(b);
    const { batch, m, n, k } = spec;
    const { buffer } = this.fresh(batch * m * n);
    if (batch === 0 || m === 0 || n === 0) return buffer;
    const plan = this.gemmPlan(spec);
    const flags = (spec.transA ? GEMM_FLAGS.transA : 0) | (spec.transB ? GEMM_FLAGS.transB : 0) | (plan.swap ? GEMM_FLAGS.swap : 0);
    const aStride = spec.aBroadcast ? 0 : m * k * 4;
    const bStride = spec.bBroadcast ? 0 : k * n * 4;
    const pieces = this.gemmPieces(spec, plan);
    // Pack a broadcast V once per call (or piece) when that call covers several members.
    const lanesPerCall = pieces?.split === GEMM_SPLIT.lanes ? pieces.per : plan.lanes;
    const membersPerCall = pieces?.split === GEMM_SPLIT.members ? pieces.per : batch;
    const packOnce = plan.vBroadcast && membersPerCall > 1 && Math.ceil(lanesPerCall / NR) * NR * k * 4 <= PACK_ONCE_MAX_BYTES;
    const allFlags = flags | (packOnce ? GEMM_FLAGS.packOnce : 0);
    const scratchBytes = this.kernels.gemmScratchFor(k, lanesPerCall, packOnce ? 1 : 0);
    if (!pieces || !this.pool) {
      const scratch = this.heap.alloc(scratchBytes);
      try {
        this.kernels.gemmBatch(A.ptr, B.ptr, buffer.ptr, m, n, k, allFlags, aStride, bStride, 0, batch, 0, plan.rows, 0, plan.lanes, scratch.ptr);
      } finally {
        this.heap.release(scratch.ptr, scratch.size);
      }
      return buffer;
    }
    const args = [A.ptr, B.ptr, buffer.ptr, m, n, k, allFlags, aStride, bStride, batch, pieces.split, pieces.per, plan.rows, plan.lanes];
    const scratch = Array.from({ length: this.pool.threads }, () => this.heap.alloc(scratchBytes));
    try {
      const ptrs = scratch.map((s) => s.ptr);
      this.pool.forkChunks(OP.gemmChunks, args, pieces.count, ptrs, (c) => runChunk(this.kernels, OP.gemmChunks, args, c, ptrs[0]));
    } finally {
      for (const s of scratch) this.heap.release(s.ptr, s.size);
    }
    return buffer;
  }

  /** The fork-join pool, for tests and diagnostics (null with one thread). */
  get threadPool(): ThreadPool | null {
    return this.pool;
  }

  /**
   * The orientation of a product (assembly/gemm.ts header): normal (S = op(A), V = op(B)) or
   * swapped (S = op(B)ᵀ, V = op(A)ᵀ), whichever a rough cost model in cycles per member prefers —
   * the multiply-adds of whole tiles (so lanes and rows wasted at the edges count), the tile
   * stores (transposed ones cost three times as much), packing V (4x4 transposes cost twice a copy;
   * once for the batch when V is broadcast) and copying p-major S strips (once per lane group). The
   * choice changes speed only, never a bit of the result.
   */
  private gemmPlan(spec: MatmulSpec): { swap: boolean; rows: number; lanes: number; vBroadcast: boolean } {
    const { batch, m, n, k, transA, transB } = spec;
    const blocks = Math.max(1, Math.ceil(k / KC_MAX));
    const kc = Math.max(1, Math.ceil(k / blocks));
    const groupLanes = Math.max(1, Math.floor(GROUP_BYTES / (kc * NR * 4))) * NR;
    const cost = (swap: boolean): number => {
      const rows = swap ? n : m;
      const lanes = swap ? m : n;
      const vByTransposes = swap ? !transA : transB;
      const sPacked = swap ? !transB : transA;
      const vBroadcast = batch > 1 && (swap ? spec.aBroadcast : spec.bBroadcast);
      const panels = Math.ceil(lanes / NR);
      const tail = rows % MR;
      // A last strip of one or two rows runs wide tiles (1 x 32, 2 x 16 lanes) with scalar stores.
      const tailTiles = tail === 0 ? 0 : tail === 1 ? Math.ceil(panels / 4) : tail === 2 ? Math.ceil(panels / 2) : panels;
      let c = Math.floor(rows / MR) * panels * (4 * k + (swap ? 12 : 4)) + tailTiles * (4 * k + (tail < 3 ? 40 : 20));
      c += (lanes * k * (vByTransposes ? 0.5 : 0.25)) / (vBroadcast ? batch : 1);
      if (sPacked) c += rows * k * 0.25 * Math.ceil(lanes / groupLanes);
      return c;
    };
    const swap = cost(true) < cost(false);
    return { swap, rows: swap ? n : m, lanes: swap ? m : n, vBroadcast: batch > 1 && (swap ? spec.aBroadcast : spec.bBroadcast) };
  }

  /**
   * How a product is cut for the pool, or null to run it on this thread: below parallelMinMacs
   * multiply-adds (ASLEEP_FACTOR times more when a pool thread sleeps) it does not pay. Pieces hold
   * at least a quarter of parallelMinMacs, at most PIECES_PER_THREAD per thread. Batch members are
   * cut first (independent, nothing shared but a broadcast operand); otherwise V lanes (each piece
   * packs only its own panels but reads all of S) or S rows (each piece re-packs all of V),
   * whichever repeats less work; with too few of either, the dimension with the most units.
   */
  private gemmPieces(spec: MatmulSpec, plan: { rows: number; lanes: number }): { split: number; per: number; count: number } | null {
    if (!this.pool) return null;
    const { batch, m, n, k } = spec;
    const work = batch * m * n * k;
    const threads = this.pool.threads;
    if (work < this.parallelMinMacs * (this.pool.asleep ? ASLEEP_FACTOR : 1)) return null;
    const wanted = Math.min(threads * PIECES_PER_THREAD, this.parallelMinMacs > 0 ? Math.floor(work / (this.parallelMinMacs / 4)) : Infinity);
    if (wanted < 2) return null;
    const strips = Math.ceil(plan.rows / MR);
    const panels = Math.ceil(plan.lanes / NR);
    // Work repeated per extra piece: S read again (lanes split), or V packed again (rows split).
    const lanesFirst = plan.rows * k * 0.25 <= plan.lanes * k * 0.5;
    const order: Array<[number, number, number]> = [
      [GEMM_SPLIT.members, batch, 1],
      ...(lanesFirst
        ? ([
            [GEMM_SPLIT.lanes, panels, NR],
            [GEMM_SPLIT.rows, strips, MR],
          ] as Array<[number, number, number]>)
        : ([
            [GEMM_SPLIT.rows, strips, MR],
            [GEMM_SPLIT.lanes, panels, NR],
          ] as Array<[number, number, number]>)),
    ];
    const [split, units, unit] = order.find(([, u]) => u >= wanted) ?? order.reduce((best, o) => (o[1] > best[1] ? o : best));
    const count0 = Math.min(wanted, units);
    if (count0 < 2) return null;
    const perUnits = Math.ceil(units / count0);
    return { split, per: perUnits * unit, count: Math.ceil(units / perUnits) };
  }

  /**
   * Copies runs of `run` contiguous floats over up to four outer dimensions (`dims`, with source
   * and destination strides in floats) in one wasm call; false when there are more dimensions
   * (the reference kernel then does it). Layout ops whose last axis stays contiguous on both sides
   * — a permute that keeps the last axis, a slice, the copy of a pad — are all of this form.
   */
  private copyRuns(src: number, dst: number, run: number, dims: readonly number[], srcStrides: readonly number[], dstStrides: readonly number[]): boolean {
    if (dims.length > 4 || run < 4) return false;
    const pad = 4 - dims.length;
    const n = [...Array<number>(pad).fill(1), ...dims];
    const s = [...Array<number>(pad).fill(0), ...srcStrides];
    const t = [...Array<number>(pad).fill(0), ...dstStrides];
    this.kernels.copyRuns(src, dst, run, n[0], n[1], n[2], n[3], s[0], s[1], s[2], s[3], t[0], t[1], t[2], t[3]);
    return true;
  }

  permute(a: DeviceBuffer, shape: Shape, perm: readonly number[]): DeviceBuffer {
    const A = this.use(a);
    const { buffer, out } = this.fresh(a.length);
    const last = shape.length - 1;
    if (a.length > 0 && last >= 1 && perm[last] === last) {
      const inStrides = stridesOf(shape);
      const outShape = perm.map((p) => shape[p]);
      const outStrides = stridesOf(outShape);
      const outer = perm.slice(0, last);
      if (this.copyRuns(A.ptr, buffer.ptr, shape[last], outer.map((p) => shape[p]), outer.map((p) => inStrides[p]), outStrides.slice(0, last))) return buffer;
    }
    permuteKernel(A.view, shape, perm, out);
    return buffer;
  }

  slice(a: DeviceBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): DeviceBuffer {
    const A = this.use(a);
    const { buffer, out } = this.fresh(shapeSize(size));
    const last = shape.length - 1;
    if (buffer.length > 0 && last >= 1 && begin.length === shape.length && size.length === shape.length) {
      const inStrides = stridesOf(shape);
      const offset = begin.reduce((o, b, i) => o + b * inStrides[i], 0);
      if (this.copyRuns(A.ptr + offset * 4, buffer.ptr, size[last], size.slice(0, last), inStrides.slice(0, last), stridesOf(size).slice(0, last))) return buffer;
    }
    sliceKernel(A.view, shape, begin, size, out);
    return buffer;
  }

  pad(a: DeviceBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): DeviceBuffer {
    const A = this.use(a);
    const { buffer, out } = this.fresh(shapeSize(outShape));
    const last = shape.length - 1;
    if (a.length > 0 && last >= 1 && begin.length === shape.length && outShape.length === shape.length) {
      const outStrides = stridesOf(outShape);
      const offset = begin.reduce((o, b, i) => o + b * outStrides[i], 0);
      out.fill(0);
      if (this.copyRuns(A.ptr, buffer.ptr + offset * 4, shape[last], shape.slice(0, last), stridesOf(shape).slice(0, last), outStrides.slice(0, last))) return buffer;
    }
    padKernel(A.view, shape, outShape, begin, out);
    return buffer;
  }

  concat(inputs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number): DeviceBuffer {
    const total = inputs.reduce((s, b) => s + b.length, 0);
    const { buffer, out } = this.fresh(total);
    concatKernel(inputs.map((b) => this.f32(b)), shapes, axis, out);
    return buffer;
  }

  gather(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array): DeviceBuffer {
    const { buffer, out } = this.fresh(shapeSize(shape.map((d, i) => (i === axis ? indices.length : d))));
    gatherKernel(this.f32(a), shape, axis, indices, out);
    return buffer;
  }

  scatterAdd(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array, outShape: Shape): DeviceBuffer {
    const { buffer, out } = this.fresh(shapeSize(outShape));
    scatterAddKernel(this.f32(a), shape, axis, indices, outShape, out);
    return buffer;
  }

  private window(s: WindowSpec): number[] {
    return [s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.oh, s.ow];
  }

  im2col(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const X = this.use(x);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(n * spec.oh * spec.ow * c * spec.kh * spec.kw);
    this.windowOp(OP.im2col, X.ptr, 0, buffer.ptr, n, c, h, w, spec, buffer.length);
    return buffer;
  }

  col2im(cols: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const C = this.use(cols);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(shapeSize(shape));
    this.windowOp(OP.col2im, C.ptr, 0, buffer.ptr, n, c, h, w, spec, C.length);
    return buffer;
  }

  maxPool2d(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const X = this.use(x);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(n * c * spec.oh * spec.ow);
    this.windowOp(OP.maxPool, X.ptr, 0, buffer.ptr, n * c, 1, h, w, spec, X.length);
    return buffer;
  }

  maxPool2dBackward(x: DeviceBuffer, shape: Shape, grad: DeviceBuffer, spec: WindowSpec): DeviceBuffer {
    const X = this.use(x);
    const G = this.use(grad);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(shapeSize(shape));
    this.windowOp(OP.maxPool, X.ptr, G.ptr, buffer.ptr, n * c, 1, h, w, spec, X.length);
    return buffer;
  }

  /**
   * Runs a window kernel over `count` images (im2col, col2im) or planes (maxPool), cut by whole
   * images / planes across the pool when it touches at least a quarter of parallelMinMacs elements
   * (ASLEEP_FACTOR times more when a pool thread sleeps). Images and planes are independent, and
   * each is computed by the same loop wherever it runs, so the bits do not depend on the threads.
   */
  private windowOp(op: number, src: number, grad: number, out: number, count: number, c: number, h: number, w: number, spec: WindowSpec, elements: number): void {
    const win = this.window(spec);
    const pool = this.pool;
    const min = (this.parallelMinMacs / 4) * (pool?.asleep ? ASLEEP_FACTOR : 1);
    if (!pool || count < 2 || elements < min) {
      if (op === OP.im2col) this.kernels.im2col(src, count, c, h, w, ...win, out);
      else if (op === OP.col2im) this.kernels.col2im(src, count, c, h, w, ...win, out);
      else this.kernels.maxPool(src, count, h, w, ...win, grad, out);
      return;
    }
    const wanted = Math.min(count, pool.threads * PIECES_PER_THREAD);
    const per = Math.ceil(count / wanted);
    const args = [src, grad, out, count, c, h, w, ...win, per];
    pool.forkChunks(op, args, Math.ceil(count / per), [], (piece) => runChunk(this.kernels, op, args, piece, 0));
  }

  /**
   * Runs an elementwise kernel (cols = 1: `units` elements) or a row-wise one (`units` rows of
   * `cols` floats) through runChunk (kernels.ts, ROWS_CHUNK_ARGS), across the pool when it touches
   * at least a quarter of parallelMinMacs floats (ASLEEP_FACTOR times more when a pool thread
   * sleeps). Pieces are a multiple of `align` rows (causal softmax: whole [T, T] blocks; a
   * per-channel bias: whole periods of channels), and elementwise pieces also a multiple of
   * ELEMENT_PIECE elements, so the SIMD groups and the scalar tail fall where a single call puts
   * them; each element or row is then computed by the same instructions on any thread, and the
   * bits do not depend on the thread count.
   */
  private rowsOp(kind: number, code: number, p0: number, p1: number, p2: number, units: number, cols: number, align = 1, period = 0, extra: readonly number[] = []): void {
    const pool = this.pool;
    const floats = units * cols;
    const min = (this.parallelMinMacs / 4) * (pool?.asleep ? ASLEEP_FACTOR : 1);
    // Pieces are whole multiples of `align` units, and of ELEMENT_PIECE too for elementwise kernels.
    const unit = cols === 1 ? ELEMENT_PIECE * align : align;
    const wanted = pool ? Math.min(pool.threads * PIECES_PER_THREAD, Math.floor(units / unit)) : 1;
    if (!pool || floats < min || wanted < 2) {
      runChunk(this.kernels, OP.rows, [kind, code, p0, p1, p2, units, cols, units, period, ...extra], 0, 0);
      return;
    }
    const per = Math.ceil(units / wanted / unit) * unit;
    const args = [kind, code, p0, p1, p2, units, cols, per, period, ...extra];
    pool.forkChunks(OP.rows, args, Math.ceil(units / per), [], (piece) => runChunk(this.kernels, OP.rows, args, piece, 0));
  }

  // ---- vector ops for optimizers and gradient sums ------------------------------------------------

  private readonly buffersSeen = new Set<ArrayBufferLike>();

  /** The address of a float32 array inside this backend's memory, or null. */
  addressOf(a: Float32Array): number | null {
    const current = this.heap.memory.buffer;
    this.buffersSeen.add(current);
    return this.buffersSeen.has(a.buffer) ? a.byteOffset : null;
  }

  /** SIMD kernels for optimizers and the coordinator's gradient sum, on arrays in this memory. */
  vectorOps(): VectorOps {
    const persistent = new FinalizationRegistry<{ ptr: number; size: number }>((b) => this.heap.release(b.ptr, b.size));
    return {
      alloc: (length) => {
        const { ptr, size } = this.heap.alloc(Math.max(length, 1) * 4);
        const view = this.heap.f32(ptr, length);
        view.fill(0);
        this.buffersSeen.add(view.buffer);
        persistent.register(view, { ptr, size });
        return view;
      },
      adam: (p, g, m, v, h) => {
        const ptrs = [p, g, m, v].map((x) => this.addressOf(x));
        if (ptrs.some((x) => x === null)) return false;
        // Elementwise, so split like the other elementwise kernels (pieces of 64 elements); the
        // scalars travel as float32 bits, the precision the kernel computes in.
        const scalars = [h.beta1, h.beta2, h.oneMinusBeta1, h.oneMinusBeta2, h.eps, h.l2, h.shrink, h.stepSize, h.bias2Sqrt].map(float32Bits);
        this.rowsOp(ROW_KIND.adam, 0, ptrs[0]!, ptrs[1]!, ptrs[2]!, p.length, 1, 1, 0, [ptrs[3]!, ...scalars]);
        return true;
      },
      sum: (out, parts) => {
        const o = this.addressOf(out);
        const ptrs = parts.map((x) => this.addressOf(x));
        if (o === null || ptrs.some((x) => x === null)) return false;
        const table = this.heap.alloc(Math.max(ptrs.length, 1) * 4);
        try {
          new Uint32Array(this.heap.memory.buffer, table.ptr, ptrs.length).set(ptrs as number[]);
          this.kernels.sumSources(o, table.ptr, ptrs.length, out.length);
        } finally {
          this.heap.release(table.ptr, table.size);
        }
        return true;
      },
    };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  // ---- fused: norms, activations, softmax (NormKernels, shared/backend/fused-norm.ts) ------

  // softmax, GELU and the LSTM / GRU forward cells run SIMD kernels (assembly/fused.ts: float32
  // polynomial exp / tanh / erf); the rest run the reference kernels on views of the heap, each
  // writing straight into its fresh block.

  softmax(x: DeviceBuffer, rows: number, cols: number, causal: boolean): DeviceBuffer {
    const X = this.use(x);
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== x.length) {
      throw new RangeError(`softmax: ${x.length} elements are not [${rows}, ${cols}]`);
    }
    if (causal && cols > 0 && rows % cols !== 0) throw new RangeError(`softmax: causal rows ${rows} are not whole [${cols}, ${cols}] blocks`);
    const { buffer } = this.fresh(x.length);
    if (x.length > 0) this.rowsOp(ROW_KIND.softmax, causal ? 1 : 0, X.ptr, 0, buffer.ptr, rows, cols, causal ? cols : 1);
    return buffer;
  }

  softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    return this.rowsPair('softmaxBackward', ROW_KIND.softmaxBackward, y, gy, rows, cols);
  }

  logSoftmax(x: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    this.checkRows('logSoftmax', x, rows, cols, null, null);
    const { buffer } = this.fresh(x.length);
    if (x.length > 0) this.rowsOp(ROW_KIND.logSoftmax, 0, this.use(x).ptr, 0, buffer.ptr, rows, cols);
    return buffer;
  }

  logSoftmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    return this.rowsPair('logSoftmaxBackward', ROW_KIND.logSoftmaxBackward, y, gy, rows, cols);
  }

  /** A row-wise backward kernel of (y, gy) [rows, cols] into a fresh block. */
  private rowsPair(op: string, kind: number, y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    this.checkRows(op, y, rows, cols, null, null);
    if (gy.length !== y.length) throw new RangeError(`${op}: gradient has ${gy.length} elements, the output ${y.length}`);
    const { buffer } = this.fresh(y.length);
    if (y.length > 0) this.rowsOp(kind, 0, this.use(y).ptr, this.use(gy).ptr, buffer.ptr, rows, cols);
    return buffer;
  }

  layerNorm(x: DeviceBuffer, weight: DeviceBuffer | null, bias: DeviceBuffer | null, rows: number, cols: number, eps: number): LayerNormResult {
    this.checkRows('layerNorm', x, rows, cols, weight, bias);
    const y = this.fresh(x.length);
    const mean = this.fresh(rows);
    const rstd = this.fresh(rows);
    this.kernels.layerNormRows(this.use(x).ptr, weight === null ? 0 : this.use(weight).ptr, bias === null ? 0 : this.use(bias).ptr, rows, cols, eps, y.buffer.ptr, mean.buffer.ptr, rstd.buffer.ptr);
    return { y: y.buffer, mean: mean.buffer, rstd: rstd.buffer };
  }

  layerNormBackward(
    gy: DeviceBuffer,
    x: DeviceBuffer,
    mean: DeviceBuffer,
    rstd: DeviceBuffer,
    weight: DeviceBuffer | null,
    rows: number,
    cols: number,
    grads: LayerNormGradRequest,
  ): LayerNormGrads {
    this.checkRows('layerNormBackward', x, rows, cols, weight, null);
    if (gy.length !== x.length || mean.length !== rows || rstd.length !== rows) throw new RangeError(`layerNormBackward: gy, mean and rstd must have ${x.length}, ${rows} and ${rows} elements`);
    const gx = this.fresh(x.length);
    const gWeight = grads.weight ? this.fresh(cols) : null;
    const gBias = grads.bias ? this.fresh(cols) : null;
    // float64 column sums in scratch blocks, rounded once into the float32 results.
    const accW = grads.weight ? this.heap.alloc(Math.max(cols, 1) * 8) : null;
    const accB = grads.bias ? this.heap.alloc(Math.max(cols, 1) * 8) : null;
    try {
      if (accW) new Float64Array(this.heap.memory.buffer, accW.ptr, cols).fill(0);
      if (accB) new Float64Array(this.heap.memory.buffer, accB.ptr, cols).fill(0);
      this.kernels.layerNormBackwardRows(this.use(gy).ptr, this.use(x).ptr, this.use(mean).ptr, this.use(rstd).ptr, weight === null ? 0 : this.use(weight).ptr, rows, cols, gx.buffer.ptr, accW?.ptr ?? 0, accB?.ptr ?? 0);
      if (gWeight && accW) gWeight.buffer.view.set(new Float64Array(this.heap.memory.buffer, accW.ptr, cols));
      if (gBias && accB) gBias.buffer.view.set(new Float64Array(this.heap.memory.buffer, accB.ptr, cols));
    } finally {
      if (accW) this.heap.release(accW.ptr, accW.size);
      if (accB) this.heap.release(accB.ptr, accB.size);
    }
    return { gx: gx.buffer, gWeight: gWeight && gWeight.buffer, gBias: gBias && gBias.buffer };
  }

  private checkRows(op: string, x: DeviceBuffer, rows: number, cols: number, weight: DeviceBuffer | null, bias: DeviceBuffer | null): void {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== x.length) throw new RangeError(`${op}: ${x.length} elements are not [${rows}, ${cols}]`);
    if (weight !== null && weight.length !== cols) throw new RangeError(`${op}: weight has ${weight.length} elements, expected ${cols}`);
    if (bias !== null && bias.length !== cols) throw new RangeError(`${op}: bias has ${bias.length} elements, expected ${cols}`);
  }

  gelu(x: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    const X = this.use(x);
    const { buffer } = this.fresh(x.length);
    this.rowsOp(ROW_KIND.gelu, approximate === 'tanh' ? 1 : 0, X.ptr, 0, buffer.ptr, x.length, 1);
    return buffer;
  }

  geluBackward(x: DeviceBuffer, gy: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    const X = this.use(x);
    const G = this.use(gy);
    if (gy.length !== x.length) throw new RangeError(`geluBackward: gradient has ${gy.length} elements, the input ${x.length}`);
    const { buffer } = this.fresh(x.length);
    this.rowsOp(ROW_KIND.geluBackward, approximate === 'tanh' ? 1 : 0, X.ptr, G.ptr, buffer.ptr, x.length, 1);
    return buffer;
  }

  relu(x: DeviceBuffer): DeviceBuffer {
    const X = this.use(x);
    const { buffer } = this.fresh(x.length);
    this.rowsOp(ROW_KIND.relu, 0, X.ptr, 0, buffer.ptr, x.length, 1);
    return buffer;
  }

  reluBackward(x: DeviceBuffer, gy: DeviceBuffer): DeviceBuffer {
    const X = this.use(x);
    const G = this.use(gy);
    if (gy.length !== x.length) throw new RangeError(`reluBackward: gradient has ${gy.length} elements, the input ${x.length}`);
    const { buffer } = this.fresh(x.length);
    this.rowsOp(ROW_KIND.relu, 0, X.ptr, G.ptr, buffer.ptr, x.length, 1);
    return buffer;
  }

  // ---- fused: recurrent cells (RecurrentKernels, shared/backend/fused-recurrent.ts) --------

  // The reference kernels on views of the heap. Outputs are allocated first and the input views
  // taken afterwards, as everywhere in this class.

  /** The reference kernels' argument checks, before a SIMD cell kernel reads raw addresses. */
  private checkCell(op: string, gates: number, gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, state: DeviceBuffer, batch: number, hidden: number): void {
    const G = gates * hidden;
    if (!Number.isInteger(batch) || !Number.isInteger(hidden) || batch < 0 || hidden < 0) throw new RangeError(`${op}: batch ${batch} and hidden ${hidden} must be non-negative integers`);
    if (G > 0 && gi.length % G !== 0) throw new RangeError(`${op}: gi has ${gi.length} elements, not whole rows of ${G}`);
    const rows = G > 0 ? gi.length / G : 0;
    if (!Number.isInteger(giRow) || giRow < 0 || (G > 0 && giRow + batch > rows)) throw new RangeError(`${op}: rows ${giRow} … ${giRow + batch - 1} of gi are outside its ${rows} rows`);
    if (gh.length !== batch * G) throw new RangeError(`${op}: gh has ${gh.length} elements, expected ${batch * G}`);
    if (bias !== null && bias.length !== G) throw new RangeError(`${op}: bias has ${bias.length} elements, expected ${G}`);
    if (state.length !== batch * hidden) throw new RangeError(`${op}: the state has ${state.length} elements, expected ${batch * hidden}`);
  }

  private f32OrNull(buffer: DeviceBuffer | null): Float32Array | null {
    return buffer === null ? null : this.f32(buffer);
  }

  lstmCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, c: DeviceBuffer, batch: number, hidden: number): LstmCellResult {
    const h = this.fresh(batch * hidden);
    const cNext = this.fresh(batch * hidden);
    const act = this.fresh(batch * 5 * hidden);
    this.checkCell('lstmCell', 4, gi, giRow, gh, bias, c, batch, hidden);
    this.kernels.lstmCell(this.use(gi).ptr, giRow, this.use(gh).ptr, bias === null ? 0 : this.use(bias).ptr, this.use(c).ptr, batch, hidden, h.buffer.ptr, cNext.buffer.ptr, act.buffer.ptr);
    return { h: h.buffer, c: cNext.buffer, act: act.buffer };
  }

  lstmCellBackward(
    act: DeviceBuffer,
    c: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradC: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): LstmCellGrads {
    const gGates = this.fresh(batch * 4 * hidden);
    const gc = this.fresh(batch * hidden);
    const H = hidden;
    if (!Number.isInteger(batch) || !Number.isInteger(H) || batch < 0 || H < 0) throw new RangeError(`lstmCellBackward: batch ${batch} and hidden ${H} must be non-negative integers`);
    if (act.length !== batch * 5 * H) throw new RangeError(`lstmCellBackward: act has ${act.length} elements, expected ${batch * 5 * H}`);
    if (c.length !== batch * H) throw new RangeError(`lstmCellBackward: c has ${c.length} elements, expected ${batch * H}`);
    if (gradH !== null && gradH.length !== batch * H) throw new RangeError(`lstmCellBackward: gradH has ${gradH.length} elements, expected ${batch * H}`);
    if (gradC !== null && gradC.length !== batch * H) throw new RangeError(`lstmCellBackward: gradC has ${gradC.length} elements, expected ${batch * H}`);
    if (gradOut !== null && (H === 0 ? false : gradOut.length % H !== 0 || !Number.isInteger(gradOutRow) || gradOutRow < 0 || gradOutRow + batch > gradOut.length / H)) {
      throw new RangeError(`lstmCellBackward: rows ${gradOutRow} … ${gradOutRow + batch - 1} of gradOut are outside its ${H > 0 ? Math.floor(gradOut.length / H) : 0} rows`);
    }
    const ptr = (b: DeviceBuffer | null): number => (b === null ? 0 : this.use(b).ptr);
    this.kernels.lstmCellBackward(ptr(act), ptr(c), ptr(gradOut), gradOutRow, ptr(gradH), ptr(gradC), batch, H, gGates.buffer.ptr, gc.buffer.ptr);
    return { gGates: gGates.buffer, gc: gc.buffer };
  }

  gruCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, h: DeviceBuffer, batch: number, hidden: number): GruCellResult {
    const hNext = this.fresh(batch * hidden);
    const act = this.fresh(batch * 4 * hidden);
    this.checkCell('gruCell', 3, gi, giRow, gh, bias, h, batch, hidden);
    this.kernels.gruCell(this.use(gi).ptr, giRow, this.use(gh).ptr, bias === null ? 0 : this.use(bias).ptr, this.use(h).ptr, batch, hidden, hNext.buffer.ptr, act.buffer.ptr);
    return { h: hNext.buffer, act: act.buffer };
  }

  gruCellBackward(
    act: DeviceBuffer,
    h: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradHDirect: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): GruCellGrads {
    const gGi = this.fresh(batch * 3 * hidden);
    const gGh = this.fresh(batch * 3 * hidden);
    const gh = this.fresh(batch * hidden);
    gruCellBackwardKernel(
      this.f32(act),
      this.f32(h),
      this.f32OrNull(gradOut),
      gradOutRow,
      this.f32OrNull(gradH),
      this.f32OrNull(gradHDirect),
      batch,
      hidden,
      gGi.out,
      gGh.out,
      gh.out,
    );
    return { gGi: gGi.buffer, gGh: gGh.buffer, gh: gh.buffer };
  }

  rnnCell(activation: RnnActivation, gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    const h = this.fresh(batch * hidden);
    rnnCellKernel(activation, this.f32(gi), giRow, this.f32(gh), this.f32OrNull(bias), batch, hidden, h.out);
    return h.buffer;
  }

  rnnCellBackward(activation: RnnActivation, h: DeviceBuffer, gradOut: DeviceBuffer | null, gradOutRow: number, gradH: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    const g = this.fresh(batch * hidden);
    rnnCellBackwardKernel(activation, this.f32(h), this.f32OrNull(gradOut), gradOutRow, this.f32OrNull(gradH), batch, hidden, g.out);
    return g.buffer;
  }
}

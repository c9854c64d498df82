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
import { broadcastStrides, shapeSize, type Shape } from '../../tensor/shape.js';
import { binaryKernel, mergeDims, unaryKernel, whereKernel } from '../cpu/elementwise.js';
import { concatKernel, gatherKernel, padKernel, permuteKernel, scatterAddKernel, sliceKernel } from '../cpu/layout.js';
import { reduceKernel } from '../cpu/reduce.js';
import type { WindowSpec } from '../conv-spec.js';
import { WasmHeap } from './heap.js';
import { instantiateKernels, kernelModule, type KernelExports, type KernelFlavour } from './kernels.js';
import { ThreadPool, type GemmSlice } from './pool.js';
import type { VectorOps } from '../../optim/vector-ops.js';

class WasmBuffer implements DeviceBuffer {
  readonly dtype: DType = 'float32';
  released = false;
  constructor(readonly ptr: number, readonly size: number, readonly length: number, readonly view: Float32Array) {}
}

/** Matrix products smaller than this many multiply-adds run on one thread (the fork costs ~10 µs). */
const PARALLEL_MIN_MACS = 1 << 18;
const NR = 8;

/** Operation codes of the SIMD kernels (assembly/elementwise.ts). */
const BINARY_CODES: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3, gt: 4, ge: 5, eq: 6 };
const UNARY_CODES: Partial<Record<UnaryOp, number>> = { neg: 0, abs: 1, sqrt: 2 };

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

  cast(buffer: DeviceBuffer, dtype: DType): DeviceBuffer {
    if (dtype !== 'float32') throw new TypeError('the wasm backend holds float32 only');
    return this.upload(this.f32(buffer));
  }

  unary(op: UnaryOp, a: DeviceBuffer): DeviceBuffer {
    const A = this.use(a);
    const { buffer, out } = this.fresh(a.length);
    const code = UNARY_CODES[op];
    if (code !== undefined) this.kernels.unary(code, A.ptr, buffer.ptr, a.length);
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
      this.kernels.binary(code, a.ptr, 1, b.ptr, 1, out.ptr, n);
      return true;
    }
    if (a.length === n && b.length === 1) {
      this.kernels.binary(code, a.ptr, 1, b.ptr, 0, out.ptr, n);
      return true;
    }
    if (a.length === 1 && b.length === n) {
      this.kernels.binary(code, a.ptr, 0, b.ptr, 1, out.ptr, n);
      return true;
    }
    if (a.length !== n) return false;
    const { shape, strides } = mergeDims(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
    const sb = strides[1];
    if (shape.length === 2 && sb[0] === 0 && sb[1] === 1) {
      this.kernels.binaryRows(code, a.ptr, b.ptr, out.ptr, shape[0], shape[1]);
      return true;
    }
    if (shape.length === 2 && sb[0] === 1 && sb[1] === 0) {
      this.kernels.binaryCols(code, a.ptr, b.ptr, out.ptr, shape[0], shape[1], shape[0]);
      return true;
    }
    if (shape.length === 3 && sb[0] === 0 && sb[1] === 1 && sb[2] === 0) {
      this.kernels.binaryCols(code, a.ptr, b.ptr, out.ptr, shape[0] * shape[1], shape[2], shape[1]);
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
    // One contiguous run of summed axes: [outer, r, inner] in SIMD with float64 accumulators.
    const contiguous = axes.length > 0 && axes.every((ax, i) => i === 0 || ax === axes[i - 1] + 1);
    if (op === 'sum' && contiguous && a.length > 0) {
      const outer = shapeSize(shape.slice(0, axes[0]));
      const r = shapeSize(shape.slice(axes[0], axes[axes.length - 1] + 1));
      const inner = shapeSize(shape.slice(axes[axes.length - 1] + 1));
      if (inner === 1) this.kernels.sumRows(A.ptr, buffer.ptr, outer, r);
      else {
        const acc = this.heap.alloc(inner * 8);
        try {
          this.kernels.sumMiddle(A.ptr, buffer.ptr, outer, r, inner, acc.ptr);
        } finally {
          this.heap.release(acc.ptr, acc.size);
        }
      }
      return buffer;
    }
    reduceKernel(op, A.view, shape, axes, out);
    return buffer;
  }

  matmul(a: DeviceBuffer, b: DeviceBuffer, spec: MatmulSpec): DeviceBuffer {
    const A = this.use(a);
    const B = this.use(b);
    const { batch, m, n, k } = spec;
    const { buffer } = this.fresh(batch * m * n);
    const aStride = spec.aBroadcast ? 0 : m * k * 4;
    const bStride = spec.bBroadcast ? 0 : k * n * 4;
    for (let t = 0; t < batch; t++) this.gemm(A.ptr + t * aStride, B.ptr + t * bStride, buffer.ptr + t * m * n * 4, m, n, k, spec.transA, spec.transB);
    return buffer;
  }

  /** The fork-join pool, for tests and diagnostics (null with one thread). */
  get threadPool(): ThreadPool | null {
    return this.pool;
  }

  /**
   * C = op(A)·op(B) for one matrix, split by columns across the pool when it is large enough. Each
   * thread gets whole 8-column panels, and every element's sum over k runs in the same order on any
   * thread, so the result is bit-identical for every thread count.
   */
  private gemm(a: number, b: number, c: number, m: number, n: number, k: number, transA: boolean, transB: boolean): void {
    if (m === 0 || n === 0) return;
    const panels = Math.ceil(n / NR);
    const threads = this.pool && m * n * k >= this.parallelMinMacs ? Math.min(this.pool.threads, panels) : 1;
    const per = Math.ceil(panels / threads) * NR;
    const ranges: Array<[number, number]> = [];
    for (let j0 = 0; j0 < n; j0 += per) ranges.push([j0, Math.min(n, j0 + per)]);
    const scratch = ranges.map(([j0, j1]) => this.heap.alloc(this.kernels.gemmScratchBytes(j1 - j0)));
    try {
      const slices: GemmSlice[] = ranges.map(([j0, j1], t) => ({ j0, j1, scratch: scratch[t].ptr }));
      const run = (s: GemmSlice): void => this.kernels.gemm(a, b, c, m, n, k, transA ? 1 : 0, transB ? 1 : 0, 0, s.j0, s.j1, s.scratch);
      if (slices.length === 1 || !this.pool) run(slices[0]);
      else this.pool.gemm({ a, b, c, m, n, k, transA: transA ? 1 : 0, transB: transB ? 1 : 0, accumulate: 0 }, slices, run);
    } finally {
      for (const s of scratch) this.heap.release(s.ptr, s.size);
    }
  }

  permute(a: DeviceBuffer, shape: Shape, perm: readonly number[]): DeviceBuffer {
    const { buffer, out } = this.fresh(a.length);
    permuteKernel(this.f32(a), shape, perm, out);
    return buffer;
  }

  slice(a: DeviceBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): DeviceBuffer {
    const { buffer, out } = this.fresh(shapeSize(size));
    sliceKernel(this.f32(a), shape, begin, size, out);
    return buffer;
  }

  pad(a: DeviceBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): DeviceBuffer {
    const { buffer, out } = this.fresh(shapeSize(outShape));
    padKernel(this.f32(a), shape, outShape, begin, out);
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
    this.kernels.im2col(X.ptr, n, c, h, w, ...this.window(spec), buffer.ptr);
    return buffer;
  }

  col2im(cols: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const C = this.use(cols);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(shapeSize(shape));
    this.kernels.col2im(C.ptr, n, c, h, w, ...this.window(spec), buffer.ptr);
    return buffer;
  }

  maxPool2d(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const X = this.use(x);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(n * c * spec.oh * spec.ow);
    this.kernels.maxPool(X.ptr, n * c, h, w, ...this.window(spec), 0, buffer.ptr);
    return buffer;
  }

  maxPool2dBackward(x: DeviceBuffer, shape: Shape, grad: DeviceBuffer, spec: WindowSpec): DeviceBuffer {
    const X = this.use(x);
    const G = this.use(grad);
    const [n, c, h, w] = shape;
    const { buffer } = this.fresh(shapeSize(shape));
    this.kernels.maxPool(X.ptr, n * c, h, w, ...this.window(spec), G.ptr, buffer.ptr);
    return buffer;
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
        this.kernels.adam(ptrs[0]!, ptrs[1]!, ptrs[2]!, ptrs[3]!, p.length, h.beta1, h.beta2, h.oneMinusBeta1, h.oneMinusBeta2, h.eps, h.l2, h.shrink, h.stepSize, h.bias2Sqrt);
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
}

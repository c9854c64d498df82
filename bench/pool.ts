/**
 * The pool benchmark: what handing one task to another thread costs, in a piscina pool and in
 * meshgrad's fork-join pool (shared/backend/wasm/pool.ts), against the matrix products of the MLP
 * step that such a task would carry. It backs the pool's claim that piscina's per-task cost is too
 * high for kernels.
 *
 * (a) piscina, 2 threads (its defaults otherwise: atomics 'sync'): the round trip of an empty task
 *     (`await pool.run(x)` on bench/pool-task.ts, which returns x), one at a time; and a fan-out of
 *     two empty tasks at once (`Promise.all`), what splitting one op across both threads costs.
 * (b) the fork-join pool, 2 threads (this one and one pool thread), driven directly through
 *     ThreadPool.gemm on a WasmHeap's memory: an empty split (both column ranges empty, so the
 *     kernel returns at once) and a tiny 16×16×16 product split 8 + 8 columns, against the same
 *     product on this thread alone. Also a 64×64×64 product through WasmBackend.matmul with 1 and
 *     2 threads: 2^18 multiply-adds, the smallest product the backend splits across threads.
 * (c) the MLP step's eight matrix products (784-256-128-10, batch 128: three forward, two dX, three
 *     dW) on the wasm backend with 1 thread and with 2, for the overhead's share of one product.
 *
 * Tiny operations are timed call by call, in rounds separated by a 20 ms pause (every thread goes
 * to sleep, as between two training steps), both back to back and with 100 µs of busy work on the
 * calling thread before each call (as the other ops of a step sit between two products, long
 * enough for the pool thread to go back to sleep). The tables give the 10th, 50th and 90th
 * percentiles over all calls: on this 2-vCPU VM the cost is bimodal, and which mode a stretch of
 * calls lands in depends on where the scheduler has put the threads.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { WasmHeap } from '../shared/backend/wasm/heap.js';
import { instantiateKernels, kernelModule, type KernelFlavour } from '../shared/backend/wasm/kernels.js';
import { ThreadPool, type GemmSlice } from '../shared/backend/wasm/pool.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { matmulT, tensor } from '../shared/ops/index.js';
import type { Shape } from '../shared/tensor/shape.js';
import { packageRoot } from '../shared/util/paths.js';
import { Rng } from '../shared/util/random.js';
import { median, mean, timeMs, timingStats, type TimingStats } from './report.js';

export const POOL_THREADS = 2;

/** Mirrors wasm-backend.ts: products with fewer multiply-adds (or under 16 columns) stay on one thread. */
export const PARALLEL_MIN_MACS = 1 << 18;
const PARALLEL_MIN_COLS = 16;

export interface MlpMatmulSpec {
  readonly name: string;
  /** Stored shapes of the operands. */
  readonly a: Shape;
  readonly b: Shape;
  readonly transA: boolean;
  readonly transB: boolean;
}

/** The MLP step's products, as `linear` and its backward call matmulT (y = x·Wᵀ, W stored [out, in]). */
export const MLP_MATMULS: readonly MlpMatmulSpec[] = [
  { name: 'fc1 forward  x·W1ᵀ', a: [128, 784], b: [256, 784], transA: false, transB: true },
  { name: 'fc2 forward  h1·W2ᵀ', a: [128, 256], b: [128, 256], transA: false, transB: true },
  { name: 'fc3 forward  h2·W3ᵀ', a: [128, 128], b: [10, 128], transA: false, transB: true },
  { name: 'fc3 dX  g·W3', a: [128, 10], b: [10, 128], transA: false, transB: false },
  { name: 'fc3 dW  gᵀ·h2', a: [128, 10], b: [128, 128], transA: true, transB: false },
  { name: 'fc2 dX  g·W2', a: [128, 128], b: [128, 256], transA: false, transB: false },
  { name: 'fc2 dW  gᵀ·h1', a: [128, 128], b: [128, 256], transA: true, transB: false },
  { name: 'fc1 dW  gᵀ·x', a: [128, 256], b: [128, 784], transA: true, transB: false },
];

export function matmulDims(s: MlpMatmulSpec): { m: number; n: number; k: number } {
  const [ar, ac] = s.a;
  const [br, bc] = s.b;
  return { m: s.transA ? ac : ar, k: s.transA ? ar : ac, n: s.transB ? br : bc };
}

export interface MatmulTiming {
  readonly name: string;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly macs: number;
  /** Whether the 2-thread backend splits it (PARALLEL_MIN_MACS and 16 columns). */
  readonly split: boolean;
  readonly oneThread: TimingStats;
  readonly twoThreads: TimingStats;
}

/** Percentiles of per-call times, ms. */
export interface CallStats {
  readonly runs: number;
  readonly p10Ms: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly meanMs: number;
}

/** One operation timed back to back, and after `gapMs` of busy work before each call. */
export interface CallModes {
  readonly backToBack: CallStats;
  readonly afterWork: CallStats;
}

export interface PoolSuiteResult {
  readonly threads: number;
  /** Busy work on the calling thread before each call of `afterWork`, ms. */
  readonly gapMs: number;
  readonly piscina: {
    readonly version: string;
    readonly atomics: string;
    /** One empty task at a time: `await pool.run(x)`. */
    readonly roundTrip: CallModes;
    /** Two empty tasks at once: `await Promise.all([...])`. */
    readonly fanOut: CallModes;
  };
  readonly forkJoin: {
    readonly flavour: KernelFlavour;
    /** An empty split: ThreadPool.gemm with both column ranges empty. */
    readonly empty: CallModes;
    /** 16×16×16 product split 8 + 8 columns across the 2 threads. */
    readonly tinyTwoThreads: CallModes;
    /** The same product on this thread alone (kernel call only). */
    readonly tinyOneThread: CallStats;
    /** The tiny product split across the pool equals the one-thread product. */
    readonly tinyMatches: boolean;
  };
  /** 64×64×64 through WasmBackend.matmul (the split threshold), per call. */
  readonly threshold: MatmulTiming;
  readonly mlpMatmuls: readonly MatmulTiming[];
  /** piscina round-trip median / fork-join empty-split median, back to back and after work. */
  readonly piscinaOverForkJoin: { readonly backToBack: number; readonly afterWork: number };
  /** Splits per MLP step on the 2-thread backend (products above the threshold). */
  readonly splitsPerStep: number;
  /** Every product checked out and piscina returned its input. */
  readonly ok: boolean;
}

export interface PoolSuiteOptions {
  readonly quick?: boolean;
  /** Rounds of tiny calls (default 10; --quick 2). */
  readonly rounds?: number;
  /** Calls per round (default 500; --quick 100). */
  readonly callsPerRound?: number;
  /** Time budget per matrix product and thread count, ms (default 300; --quick 50). */
  readonly budgetMs?: number;
  readonly flavour?: KernelFlavour;
  readonly log?: (line: string) => void;
}

export const GAP_MS = 0.1;
const ROUND_PAUSE_MS = 20;

function percentile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function callStats(samplesMs: readonly number[]): CallStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { runs: sorted.length, p10Ms: percentile(sorted, 0.1), medianMs: median(sorted), p90Ms: percentile(sorted, 0.9), meanMs: mean(sorted) };
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: the calling thread stays busy, as it is between two products of a step
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Rounds {
  readonly rounds: number;
  readonly calls: number;
}

/** Per-call times (ms) of a synchronous `fn`, `calls` per round, each after `gapMs` of busy work. */
async function perCall(fn: () => void, { rounds, calls }: Rounds, gapMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await pause(ROUND_PAUSE_MS);
    for (let i = 0; i < 10; i++) fn();
    for (let i = 0; i < calls; i++) {
      if (gapMs > 0) busyWait(gapMs);
      const t0 = performance.now();
      fn();
      out.push(performance.now() - t0);
    }
  }
  return out;
}

async function perCallAsync(fn: () => Promise<unknown>, { rounds, calls }: Rounds, gapMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await pause(ROUND_PAUSE_MS);
    for (let i = 0; i < 10; i++) await fn();
    for (let i = 0; i < calls; i++) {
      if (gapMs > 0) busyWait(gapMs);
      const t0 = performance.now();
      await fn();
      out.push(performance.now() - t0);
    }
  }
  return out;
}

async function modes(fn: () => void, r: Rounds): Promise<CallModes> {
  return { backToBack: callStats(await perCall(fn, r, 0)), afterWork: callStats(await perCall(fn, r, GAP_MS)) };
}

async function modesAsync(fn: () => Promise<unknown>, r: Rounds): Promise<CallModes> {
  return { backToBack: callStats(await perCallAsync(fn, r, 0)), afterWork: callStats(await perCallAsync(fn, r, GAP_MS)) };
}

/** Per-call times of a product that takes tens of µs to ms: warm-up, then calls until the budget is spent. */
function timeCalls(fn: () => void, budgetMs: number, maxCalls = 2000): number[] {
  for (let i = 0; i < 5; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxCalls && (times.length < 10 || performance.now() - start < budgetMs)) times.push(timeMs(fn));
  return times;
}

export function piscinaTaskFile(): string {
  const file = join(packageRoot(), 'dist', 'bench', 'pool-task.js');
  if (!existsSync(file)) throw new Error(`the pool suite's piscina task is not built: ${file} is missing (run npm run build)`);
  return file;
}

async function measurePiscina(r: Rounds, log: (line: string) => void): Promise<PoolSuiteResult['piscina'] & { echoed: boolean }> {
  log(`  piscina ${Piscina.version}, ${POOL_THREADS} threads: empty tasks ...`);
  const pool = new Piscina({ filename: piscinaTaskFile(), minThreads: POOL_THREADS, maxThreads: POOL_THREADS, idleTimeout: 60_000 });
  try {
    const echoed = (await pool.run(42)) === 42;
    const roundTrip = await modesAsync(() => pool.run(1), r);
    const fanOut = await modesAsync(() => Promise.all([pool.run(1), pool.run(2)]), r);
    return { version: Piscina.version, atomics: pool.options.atomics ?? 'sync', roundTrip, fanOut, echoed };
  } finally {
    await pool.destroy();
  }
}

async function measureForkJoin(r: Rounds, flavourPref: KernelFlavour | undefined, log: (line: string) => void): Promise<PoolSuiteResult['forkJoin']> {
  const heap = new WasmHeap(4 << 20);
  const { module, flavour } = kernelModule(flavourPref);
  const kernels = instantiateKernels(module, heap.memory);
  log(`  fork-join pool (${flavour}), ${POOL_THREADS} threads: empty and 16x16x16 splits ...`);
  const pool = await ThreadPool.start(POOL_THREADS, module, heap.memory);
  try {
    // Empty: both column ranges empty, so every thread's kernel call returns at once.
    const none = { a: 0, b: 0, c: 0, m: 0, n: 0, k: 0, transA: 0, transB: 0, accumulate: 0 };
    const emptySlices: GemmSlice[] = [
      { j0: 0, j1: 0, scratch: 0 },
      { j0: 0, j1: 0, scratch: 0 },
    ];
    const empty = await modes(() => pool.gemm(none, emptySlices, () => {}), r);

    // Tiny: C[16,16] = A[16,16]·B[16,16], columns 0-7 here and 8-15 on the pool thread.
    const n = 16;
    const rng = new Rng(3);
    const block = (): { ptr: number; view: Float32Array } => {
      const { ptr } = heap.alloc(n * n * 4);
      return { ptr, view: heap.f32(ptr, n * n) };
    };
    const A = block();
    const B = block();
    const C1 = block();
    const C2 = block();
    for (let i = 0; i < n * n; i++) {
      A.view[i] = rng.uniform() - 0.5;
      B.view[i] = rng.uniform() - 0.5;
    }
    const scratch = [heap.alloc(kernels.gemmScratchBytes(n)).ptr, heap.alloc(kernels.gemmScratchBytes(n)).ptr];
    const args = { a: A.ptr, b: B.ptr, c: C2.ptr, m: n, n, k: n, transA: 0, transB: 0, accumulate: 0 };
    const slices: GemmSlice[] = [
      { j0: 0, j1: n / 2, scratch: scratch[0] },
      { j0: n / 2, j1: n, scratch: scratch[1] },
    ];
    const runLocal = (s: GemmSlice): void => kernels.gemm(A.ptr, B.ptr, C2.ptr, n, n, n, 0, 0, 0, s.j0, s.j1, s.scratch);
    const one = (): void => kernels.gemm(A.ptr, B.ptr, C1.ptr, n, n, n, 0, 0, 0, 0, n, scratch[0]);
    const tinyOneThread = callStats(await perCall(one, r, 0));
    const tinyTwoThreads = await modes(() => pool.gemm(args, slices, runLocal), r);
    C2.view.fill(0);
    pool.gemm(args, slices, runLocal);
    const tinyMatches = closeTo(C2.view, C1.view) && C1.view.some((v) => v !== 0);
    return {
      flavour,
      empty,
      tinyTwoThreads,
      tinyOneThread,
      tinyMatches,
    };
  } finally {
    await pool.close();
  }
}

/** max |x − ref| ≤ 1e-5 · max |ref| (each thread runs the same kernel on whole columns). */
function closeTo(x: Float32Array, ref: Float32Array): boolean {
  if (x.length !== ref.length) return false;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    diff = Math.max(diff, Math.abs(x[i] - ref[i]));
  }
  return diff <= 1e-5 * scale;
}

function randomTensorData(shape: Shape, rng: Rng): Float32Array {
  const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform() - 0.5;
  return a;
}

/** Times every spec with 1 and with 2 threads on the wasm backend; also checks the two agree. */
async function measureMatmuls(specs: readonly MlpMatmulSpec[], budgetMs: number, flavour: KernelFlavour | undefined, log: (line: string) => void): Promise<{ timings: MatmulTiming[]; agree: boolean }> {
  const rng = new Rng(5);
  const data = specs.map((s) => ({ a: randomTensorData(s.a, rng), b: randomTensorData(s.b, rng) }));
  const times: Array<Map<number, TimingStats>> = specs.map(() => new Map());
  const products: Array<Map<number, Float32Array>> = specs.map(() => new Map());
  for (const threads of [1, POOL_THREADS]) {
    const backend = await WasmBackend.create({ threads, flavour });
    try {
      specs.forEach((s, i) => {
        log(`  ${s.name.replace(/\s+/g, ' ')}, ${threads} thread${threads === 1 ? '' : 's'} ...`);
        const A = tensor(Float32Array.from(data[i].a), s.a, { backend });
        const B = tensor(Float32Array.from(data[i].b), s.b, { backend });
        times[i].set(threads, timingStats(timeCalls(() => backend.scope(() => void matmulT(A, B, s.transA, s.transB)), budgetMs)));
        products[i].set(threads, backend.scope(() => Float32Array.from(matmulT(A, B, s.transA, s.transB).dataSync())));
      });
    } finally {
      await backend.close();
    }
  }
  const timings = specs.map((s, i): MatmulTiming => {
    const { m, n, k } = matmulDims(s);
    const macs = m * n * k;
    return {
      name: s.name,
      m,
      n,
      k,
      macs,
      split: macs >= PARALLEL_MIN_MACS && n >= PARALLEL_MIN_COLS,
      oneThread: times[i].get(1) as TimingStats,
      twoThreads: times[i].get(POOL_THREADS) as TimingStats,
    };
  });
  const agree = products.every((p) => closeTo(p.get(POOL_THREADS) as Float32Array, p.get(1) as Float32Array));
  return { timings, agree };
}

export async function runPoolSuite(options: PoolSuiteOptions = {}): Promise<PoolSuiteResult> {
  const quick = options.quick ?? false;
  const rounds: Rounds = { rounds: options.rounds ?? (quick ? 2 : 10), calls: options.callsPerRound ?? (quick ? 100 : 500) };
  const budgetMs = options.budgetMs ?? (quick ? 50 : 300);
  const log = options.log ?? (() => {});

  const piscina = await measurePiscina(rounds, log);
  const forkJoin = await measureForkJoin(rounds, options.flavour, log);
  const thresholdSpec: MlpMatmulSpec = { name: '64x64x64 (the split threshold)', a: [64, 64], b: [64, 64], transA: false, transB: false };
  const { timings, agree } = await measureMatmuls([thresholdSpec, ...MLP_MATMULS], budgetMs, options.flavour, log);
  const [threshold, ...mlpMatmuls] = timings;
  const { echoed, ...piscinaResult } = piscina;
  return {
    threads: POOL_THREADS,
    gapMs: GAP_MS,
    piscina: piscinaResult,
    forkJoin,
    threshold,
    mlpMatmuls,
    piscinaOverForkJoin: {
      backToBack: piscina.roundTrip.backToBack.medianMs / forkJoin.empty.backToBack.medianMs,
      afterWork: piscina.roundTrip.afterWork.medianMs / forkJoin.empty.afterWork.medianMs,
    },
    splitsPerStep: mlpMatmuls.filter((t) => t.split).length,
    ok: echoed && forkJoin.tinyMatches && agree,
  };
}

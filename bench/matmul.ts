/**
 * The matmul benchmark: C = A·B for square float32 matrices (N = 256, 512, 1024), in meshgrad
 * (`matmul` from shared/ops on the wasm backend with 1 and with 2 threads, and on the plain
 * TypeScript `cpu` reference backend) and in TensorFlow.js (`tf.matMul` on its CPU and WASM
 * backends, with `dataSync()` so that the product is really computed and read back). GFLOPS count
 * 2·N³ floating-point operations per product.
 *
 * Each (engine, size) runs one untimed warm-up product, then timed products until a time budget
 * is spent (at least one, at most `maxReps`): a few seconds per size in all, even where a single
 * product takes seconds (tfjs's CPU backend at N = 1024). A meshgrad product runs inside
 * `backend.scope`, as a training step does, so its output block is recycled for the next one.
 */

import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import type { KernelFlavour } from '../shared/backend/wasm/kernels.js';
import { matmul, tensor } from '../shared/ops/index.js';
import { Rng } from '../shared/util/random.js';
import { MESHGRAD_ENGINES, openMeshgradEngine, type MeshgradEngineId } from './backends.js';
import { useTfjsBackend, type TfjsBackendName } from './mlp-step.js';
import { timeMs, timingStats, type TimingStats } from './report.js';

export type MatmulEngine = MeshgradEngineId | 'tfjs-cpu' | 'tfjs-wasm';

/** The order of the table's columns. */
export const MATMUL_ENGINES: readonly MatmulEngine[] = ['meshgrad-wasm-1t', 'meshgrad-wasm-2t', 'meshgrad-cpu', 'tfjs-cpu', 'tfjs-wasm'];

/** Acceptance targets: meshgrad wasm's speed-up over tfjs-wasm (single-threaded SIMD). */
export const MATMUL_TARGETS = { oneThreadVsTfjsWasm: 1.3, twoThreadsVsTfjsWasm: 2.3 } as const;

export interface MatmulMeasurement {
  readonly engine: MatmulEngine;
  readonly n: number;
  readonly timing: TimingStats;
  /** 2·N³ / median time. */
  readonly gflops: number;
  /** max |C − C_ref| / max |C_ref|, C_ref being meshgrad cpu's product: the engines compute the same product. */
  readonly relError: number;
}

export interface MatmulRow {
  readonly n: number;
  readonly results: Readonly<Record<MatmulEngine, MatmulMeasurement>>;
  /** tfjs-wasm median / meshgrad wasm 1-thread median (> 1: meshgrad is faster). */
  readonly wasm1VsTfjsWasm: number;
  /** tfjs-wasm median / meshgrad wasm 2-thread median. */
  readonly wasm2VsTfjsWasm: number;
  /** meshgrad wasm 1-thread median / 2-thread median: what the second thread buys. */
  readonly twoThreadScaling: number;
  /** tfjs-cpu median / meshgrad cpu median. */
  readonly cpuVsTfjsCpu: number;
}

export interface MatmulSuiteResult {
  readonly sizes: readonly number[];
  readonly budgetMs: number;
  readonly rows: readonly MatmulRow[];
  readonly descriptions: Readonly<Record<MatmulEngine, string>>;
  /** The wasm kernel build that ran. */
  readonly flavour: KernelFlavour;
  readonly targets: typeof MATMUL_TARGETS;
  /** Every engine's product matched meshgrad cpu's to float32 accuracy. */
  readonly ok: boolean;
}

export interface MatmulSuiteOptions {
  readonly quick?: boolean;
  readonly sizes?: readonly number[];
  /** Time spent on the timed products of one engine at one size, in ms. */
  readonly budgetMs?: number;
  readonly maxReps?: number;
  /** Force a wasm kernel build (default: relaxed SIMD where the runtime has it). */
  readonly flavour?: KernelFlavour;
  readonly log?: (line: string) => void;
}

/** Tolerance of relError: float32 sums of N products in a different order (and FMA rounding). */
const MAX_REL_ERROR = 1e-4;

function randomMatrix(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

function relativeError(c: ArrayLike<number>, reference: Float32Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < reference.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(c[i] - reference[i]));
    maxRef = Math.max(maxRef, Math.abs(reference[i]));
  }
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

/** One warm-up run, then timed runs until `budgetMs` has passed (at least one, at most maxReps). */
function timeRuns(run: () => void, budgetMs: number, maxReps: number): number[] {
  run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps) {
    times.push(timeMs(run));
    if (performance.now() - start >= budgetMs) break;
  }
  return times;
}

function measurement(engine: MatmulEngine, n: number, times: number[], relError: number): MatmulMeasurement {
  const timing = timingStats(times);
  return { engine, n, timing, gflops: (2 * n ** 3) / (timing.medianMs * 1e6), relError };
}

export async function runMatmulSuite(options: MatmulSuiteOptions = {}): Promise<MatmulSuiteResult> {
  const quick = options.quick ?? false;
  const sizes = options.sizes ?? (quick ? [256, 512] : [256, 512, 1024]);
  const budgetMs = options.budgetMs ?? (quick ? 200 : 1000);
  const maxReps = options.maxReps ?? (quick ? 5 : 50);
  const log = options.log ?? (() => {});
  const rng = new Rng(7);
  const inputs = sizes.map((n) => ({ n, a: randomMatrix(n, rng), b: randomMatrix(n, rng) }));
  const results = new Map<MatmulEngine, Map<number, MatmulMeasurement>>(MATMUL_ENGINES.map((e) => [e, new Map()]));
  const descriptions: Record<MatmulEngine, string> = { 'meshgrad-wasm-1t': '', 'meshgrad-wasm-2t': '', 'meshgrad-cpu': '', 'tfjs-cpu': '', 'tfjs-wasm': '' };

  // The reference product: meshgrad's plain TypeScript kernel (float32 inputs, one thread).
  const reference = new Map<number, Float32Array>();
  for (const { n, a, b } of inputs) reference.set(n, Float32Array.from(matmul(tensor(a, [n, n]), tensor(b, [n, n])).dataSync()));

  let flavour: KernelFlavour | null = null;
  // The wasm engines first: the headline figures come from a process no other engine has warmed.
  for (const id of MESHGRAD_ENGINES) {
    const engine = await openMeshgradEngine(id, { flavour: options.flavour });
    try {
      descriptions[id] = engine.description;
      flavour ??= engine.flavour;
      const { backend } = engine;
      for (const { n, a, b } of inputs) {
        log(`  ${id} N=${n} ...`);
        // Created outside any scope: they live until the engine is closed.
        const A = tensor(Float32Array.from(a), [n, n], { backend });
        const B = tensor(Float32Array.from(b), [n, n], { backend });
        const times = timeRuns(() => backend.scope(() => void matmul(A, B).dataSync()), budgetMs, maxReps);
        const relError = backend.scope(() => relativeError(matmul(A, B).dataSync(), reference.get(n) as Float32Array));
        results.get(id)?.set(n, measurement(id, n, times, relError));
      }
    } finally {
      await engine.close();
    }
  }

  for (const backend of ['cpu', 'wasm'] as const satisfies readonly TfjsBackendName[]) {
    const engine = backend === 'cpu' ? 'tfjs-cpu' : 'tfjs-wasm';
    descriptions[engine] = (await useTfjsBackend(backend)).description;
    for (const { n, a, b } of inputs) {
      log(`  ${engine} N=${n} ...`);
      const A = tf.tensor2d(a, [n, n]);
      const B = tf.tensor2d(b, [n, n]);
      try {
        const times = timeRuns(
          () => {
            const c = tf.matMul(A, B);
            c.dataSync();
            c.dispose();
          },
          budgetMs,
          maxReps,
        );
        const c = tf.matMul(A, B);
        const relError = relativeError(c.dataSync(), reference.get(n) as Float32Array);
        c.dispose();
        results.get(engine)?.set(n, measurement(engine, n, times, relError));
      } finally {
        A.dispose();
        B.dispose();
      }
    }
  }

  const rows = sizes.map((n): MatmulRow => {
    const r = Object.fromEntries(MATMUL_ENGINES.map((e) => [e, results.get(e)?.get(n) as MatmulMeasurement])) as Record<MatmulEngine, MatmulMeasurement>;
    const ms = (e: MatmulEngine): number => r[e].timing.medianMs;
    return {
      n,
      results: r,
      wasm1VsTfjsWasm: ms('tfjs-wasm') / ms('meshgrad-wasm-1t'),
      wasm2VsTfjsWasm: ms('tfjs-wasm') / ms('meshgrad-wasm-2t'),
      twoThreadScaling: ms('meshgrad-wasm-1t') / ms('meshgrad-wasm-2t'),
      cpuVsTfjsCpu: ms('tfjs-cpu') / ms('meshgrad-cpu'),
    };
  });
  const ok = rows.every((row) => MATMUL_ENGINES.every((e) => row.results[e].relError < MAX_REL_ERROR));
  return { sizes, budgetMs, rows, descriptions, flavour: flavour ?? 'simd', targets: MATMUL_TARGETS, ok };
}

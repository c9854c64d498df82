/**
 * The matmul benchmark: C = A·B for square float32 matrices (N = 256, 512, 1024), in meshgrad
 * (`matmul` from shared/ops on the CPU backend) and in TensorFlow.js (`tf.matMul` on the CPU and
 * WASM backends, with `dataSync()` so that the product is really computed and read back).
 * GFLOPS count 2·N³ floating-point operations per product.
 *
 * Each (engine, size) runs one untimed warm-up product, then timed products until a time budget
 * is spent (at least one, at most `maxReps`): a few seconds per size in all, even where a single
 * product takes seconds (tfjs's CPU backend at N = 1024).
 */

import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { matmul, tensor } from '../shared/ops/index.js';
import { Rng } from '../shared/util/random.js';
import { useTfjsBackend, type TfjsBackendName } from './mlp-step.js';
import { timeMs, timingStats, type TimingStats } from './report.js';

export type MatmulEngine = 'meshgrad' | 'tfjs-cpu' | 'tfjs-wasm';

export interface MatmulMeasurement {
  readonly engine: MatmulEngine;
  readonly n: number;
  readonly timing: TimingStats;
  /** 2·N³ / median time. */
  readonly gflops: number;
  /** max |C − C_meshgrad| / max |C_meshgrad|: the engines compute the same product. */
  readonly relError: number;
}

export interface MatmulRow {
  readonly n: number;
  readonly meshgrad: MatmulMeasurement;
  readonly tfjsCpu: MatmulMeasurement;
  readonly tfjsWasm: MatmulMeasurement;
  /** tfjs-cpu median time / meshgrad median time (> 1: meshgrad is faster). */
  readonly speedupVsCpu: number;
  /** tfjs-wasm median time / meshgrad median time. */
  readonly speedupVsWasm: number;
}

export interface MatmulSuiteResult {
  readonly sizes: readonly number[];
  readonly budgetMs: number;
  readonly rows: readonly MatmulRow[];
  readonly descriptions: Readonly<Record<MatmulEngine, string>>;
  /** Every engine's product matched meshgrad's to float32 accuracy. */
  readonly ok: boolean;
}

export interface MatmulSuiteOptions {
  readonly quick?: boolean;
  readonly sizes?: readonly number[];
  /** Time spent on the timed products of one engine at one size, in ms. */
  readonly budgetMs?: number;
  readonly maxReps?: number;
  readonly log?: (line: string) => void;
}

/** Tolerance of relError: float32 sums of N products in a different order. */
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

  const meshgrad = new Map<number, MatmulMeasurement>();
  const reference = new Map<number, Float32Array>();
  for (const { n, a, b } of inputs) {
    log(`  meshgrad N=${n} ...`);
    const A = tensor(a, [n, n]);
    const B = tensor(b, [n, n]);
    const times = timeRuns(() => void matmul(A, B).dataSync(), budgetMs, maxReps);
    reference.set(n, Float32Array.from(matmul(A, B).dataSync()));
    meshgrad.set(n, measurement('meshgrad', n, times, 0));
  }

  const descriptions: Record<MatmulEngine, string> = { meshgrad: 'meshgrad (TypeScript kernels, 1 thread)', 'tfjs-cpu': '', 'tfjs-wasm': '' };
  const tfjsResults: Record<'tfjs-cpu' | 'tfjs-wasm', Map<number, MatmulMeasurement>> = { 'tfjs-cpu': new Map(), 'tfjs-wasm': new Map() };
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
        tfjsResults[engine].set(n, measurement(engine, n, times, relError));
      } finally {
        A.dispose();
        B.dispose();
      }
    }
  }

  const rows = sizes.map((n): MatmulRow => {
    const m = meshgrad.get(n) as MatmulMeasurement;
    const cpu = tfjsResults['tfjs-cpu'].get(n) as MatmulMeasurement;
    const wasm = tfjsResults['tfjs-wasm'].get(n) as MatmulMeasurement;
    return {
      n,
      meshgrad: m,
      tfjsCpu: cpu,
      tfjsWasm: wasm,
      speedupVsCpu: cpu.timing.medianMs / m.timing.medianMs,
      speedupVsWasm: wasm.timing.medianMs / m.timing.medianMs,
    };
  });
  const ok = rows.every((r) => r.tfjsCpu.relError < MAX_REL_ERROR && r.tfjsWasm.relError < MAX_REL_ERROR);
  return { sizes, budgetMs, rows, descriptions, ok };
}

/**
 * `--suite webgpu`, its matmul half (issue 14): square float32 products C = A·B for N = 256, 512,
 * 1024, 2048 and 4096 (--quick: 256 and 1024) on
 *   - meshgrad's WebGPU backend (`backend.matmul`, shared/backend/webgpu/kernels/matmul.ts), the
 *     product read back with `backend.read`;
 *   - meshgrad's wasm backend with a thread per core (`WasmBackend.create({ threads:
 *     os.availableParallelism() })`), the product copied out of the wasm heap;
 *   - TensorFlow.js's WebGPU backend (tfjs-backend-webgpu on its own Dawn device on the same
 *     adapter, set up by bench/mlp-step.ts's `useTfjsBackend('webgpu')`), `tf.matMul` then
 *     `await c.data()`.
 * Every timed run ends with the product on the host, so each figure includes waiting for the
 * device and the read-back (a 4096² product is 64 MiB). GFLOPS count 2·N³ operations. Each
 * (engine, N) runs one untimed warm-up (which compiles the pipelines), then timed runs until a time
 * budget is spent (at least one). Before each N, an engine's time for one run is estimated from
 * its GFLOPS at the previous N (time grows as N³): an N where one run would exceed MAX_RUN_S is
 * skipped and the table says so (on a software adapter tfjs-webgpu at 4096 would take minutes).
 * The engines compute the same product: the webgpu and tfjs results are compared with the wasm
 * backend's (tested against the CPU reference elsewhere).
 *
 * On a software adapter (Mesa's lavapipe: the "GPU" is this machine's CPU cores) the figures
 * compare meshgrad's kernel efficiency with tfjs-webgpu's on the same adapter, not GPU speed;
 * there the issue's target is meshgrad at N = 1024 no slower than tfjs-webgpu.
 *
 * Wiring (bench/main.ts): `runWebGpuMatmulSuite(quick, { log })` returns the rows,
 * `webGpuMatmulTable(result)` formats them. It opens the WebGPU backend itself and throws if there
 * is no adapter (main.ts probes first and skips the suite with the reason).
 */

import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import type { MatmulSpec } from '../shared/backend/backend.js';
import type { AdapterSummary } from '../shared/backend/webgpu/gpu-loader.js';
import { matmulTiling } from '../shared/backend/webgpu/kernels/matmul.js';
import { WebGpuBackend } from '../shared/backend/webgpu/webgpu-backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { Rng } from '../shared/util/random.js';
import { useTfjsBackend } from './mlp-step.js';
import { fmt, fmtRatio, formatTable, timingStats, type TimingStats } from './report.js';

export const WEBGPU_MATMUL_ENGINES = ['meshgrad-webgpu', 'meshgrad-wasm', 'tfjs-webgpu'] as const;
export type WebGpuMatmulEngine = (typeof WEBGPU_MATMUL_ENGINES)[number];

export const WEBGPU_MATMUL_SIZES = [256, 512, 1024, 2048, 4096] as const;
export const WEBGPU_MATMUL_QUICK_SIZES = [256, 1024] as const;
/** An N whose single run is estimated to take longer than this (seconds) is skipped for that engine. */
export const MAX_RUN_S = 20;
/** The issue's target on a software adapter: meshgrad webgpu at this N at least tfjs-webgpu's speed. */
export const WEBGPU_MATMUL_TARGET = { n: 1024, ratio: 1 } as const;
/** Tolerance of relError: float32 sums of N products in different orders. */
const MAX_REL_ERROR = 1e-4;

export interface WebGpuMatmulCell {
  readonly engine: WebGpuMatmulEngine;
  readonly n: number;
  /** Null when skipped or failed. */
  readonly timing: TimingStats | null;
  /** 2·N³ / median time. */
  readonly gflops: number | null;
  /** max |C − C_wasm| / max |C_wasm| (null for wasm itself, or when either is missing). */
  readonly relError: number | null;
  /** Why there is no figure: the skip rule's estimate, or the error. */
  readonly skipped: string | null;
}

export interface WebGpuMatmulRow {
  readonly n: number;
  readonly cells: Readonly<Record<WebGpuMatmulEngine, WebGpuMatmulCell>>;
  /** meshgrad webgpu GFLOPS / tfjs-webgpu GFLOPS (= tfjs ms / meshgrad ms; > 1: meshgrad faster). */
  readonly webgpuVsTfjs: number | null;
  /** meshgrad webgpu GFLOPS / meshgrad wasm GFLOPS. */
  readonly webgpuVsWasm: number | null;
  /** The tiling meshgrad's kernel uses at this N on this adapter, e.g. "8x8 threads, 16x16 blocks, k-tile 8". */
  readonly tiling: string;
}

export interface WebGpuMatmulSuiteResult {
  readonly adapter: AdapterSummary;
  readonly sizes: readonly number[];
  readonly budgetMs: number;
  readonly maxRunS: number;
  readonly descriptions: Readonly<Record<WebGpuMatmulEngine, string>>;
  readonly rows: readonly WebGpuMatmulRow[];
  /** The software-adapter target (null on a hardware adapter, or when N = 1024 was not measured). */
  readonly target: { readonly n: number; readonly ratio: number | null; readonly met: boolean } | null;
  /** Every measured product matched the wasm backend's, and no engine failed. */
  readonly ok: boolean;
}

export interface WebGpuMatmulSuiteOptions {
  readonly sizes?: readonly number[];
  readonly engines?: readonly WebGpuMatmulEngine[];
  /** Time spent on the timed runs of one engine at one N, in ms. */
  readonly budgetMs?: number;
  readonly maxReps?: number;
  readonly maxRunS?: number;
  readonly log?: (line: string) => void;
}

interface Engine {
  readonly description: string;
  /** Uploads A and B and returns one run: the product on the host. */
  prepare(n: number, a: Float32Array, b: Float32Array): { run: () => Promise<Float32Array>; release: () => void };
  close(): Promise<void>;
}

const squareSpec = (n: number): MatmulSpec => ({ batch: 1, m: n, n, k: n, transA: false, transB: false, aBroadcast: false, bBroadcast: false });

function webgpuEngine(gpu: WebGpuBackend): Engine {
  return {
    description: `meshgrad webgpu (${gpu.adapter.name})`,
    prepare(n, a, b) {
      // Outside any scope: they live until collected; each run's product is recycled with its scope.
      const A = gpu.upload(a);
      const B = gpu.upload(b);
      return {
        run: async () => (await gpu.scope(() => gpu.read(gpu.matmul(A, B, squareSpec(n))))) as Float32Array,
        release: () => {},
      };
    },
    close: async () => {},
  };
}

async function wasmEngine(): Promise<Engine> {
  const wasm = await WasmBackend.create({ threads: os.availableParallelism() });
  return {
    description: `meshgrad wasm (${wasm.flavour}, ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'})`,
    prepare(n, a, b) {
      const A = wasm.upload(a);
      const B = wasm.upload(b);
      // slice(): the product copied out of the heap, as the other engines' read-backs are copies.
      return { run: () => Promise.resolve(wasm.scope(() => (wasm.readSync(wasm.matmul(A, B, squareSpec(n))) as Float32Array).slice())), release: () => {} };
    },
    close: () => wasm.close(),
  };
}

async function tfjsEngine(): Promise<Engine> {
  const info = await useTfjsBackend('webgpu');
  return {
    description: info.description,
    prepare(n, a, b) {
      const A = tf.tensor2d(a, [n, n]);
      const B = tf.tensor2d(b, [n, n]);
      return {
        run: async () => {
          const c = tf.matMul(A, B);
          try {
            return (await c.data()) as Float32Array;
          } finally {
            c.dispose();
          }
        },
        release: () => {
          A.dispose();
          B.dispose();
        },
      };
    },
    close: async () => {},
  };
}

function randomMatrix(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

function relativeError(c: ArrayLike<number>, reference: Float32Array): number {
  if (c.length !== reference.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(c[i] - reference[i]);
    maxDiff = Math.max(maxDiff, Number.isNaN(d) ? Infinity : d);
    maxRef = Math.max(maxRef, Math.abs(reference[i]));
  }
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

/** One warm-up run, then timed runs until `budgetMs` has passed (at least one, at most maxReps); the last product. */
async function timeRuns(run: () => Promise<Float32Array>, budgetMs: number, maxReps: number): Promise<{ times: number[]; last: Float32Array }> {
  let last = await run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps) {
    const t0 = performance.now();
    last = await run();
    times.push(performance.now() - t0);
    if (performance.now() - start >= budgetMs) break;
  }
  return { times, last };
}

const tilingText = (gpu: WebGpuBackend, n: number): string => {
  const t = matmulTiling(gpu.ctx, squareSpec(n));
  return `${t.tx}x${t.ty} threads, ${t.r}x${t.c} blocks, k-tile ${t.tk}`;
};

export async function runWebGpuMatmulSuite(quick: boolean, options: WebGpuMatmulSuiteOptions = {}): Promise<WebGpuMatmulSuiteResult> {
  const sizes = [...(options.sizes ?? (quick ? WEBGPU_MATMUL_QUICK_SIZES : WEBGPU_MATMUL_SIZES))].sort((x, y) => x - y);
  const engines = options.engines ?? WEBGPU_MATMUL_ENGINES;
  const budgetMs = options.budgetMs ?? (quick ? 300 : 2000);
  const maxReps = options.maxReps ?? (quick ? 3 : 20);
  const maxRunS = options.maxRunS ?? MAX_RUN_S;
  const log = options.log ?? (() => {});
  const gpu = await WebGpuBackend.create();
  const rng = new Rng(11);
  const inputs = sizes.map((n) => ({ n, a: randomMatrix(n, rng), b: randomMatrix(n, rng) }));
  const cells = new Map<WebGpuMatmulEngine, Map<number, WebGpuMatmulCell>>(WEBGPU_MATMUL_ENGINES.map((e) => [e, new Map()]));
  const descriptions: Record<WebGpuMatmulEngine, string> = { 'meshgrad-webgpu': '-', 'meshgrad-wasm': '-', 'tfjs-webgpu': '-' };
  /** The wasm backend's products: the reference the other engines are compared with. */
  const reference = new Map<number, Float32Array>();
  let failed = false;

  // wasm first (its products are the reference), then meshgrad webgpu, then tfjs-webgpu.
  const order: WebGpuMatmulEngine[] = ['meshgrad-wasm', 'meshgrad-webgpu', 'tfjs-webgpu'];
  for (const id of order) {
    const cell = (n: number, c: Omit<WebGpuMatmulCell, 'engine' | 'n'>): void => void cells.get(id)?.set(n, { engine: id, n, ...c });
    if (!engines.includes(id)) {
      for (const { n } of inputs) cell(n, { timing: null, gflops: null, relError: null, skipped: 'not measured (engines option)' });
      continue;
    }
    let engine: Engine;
    try {
      engine = id === 'meshgrad-webgpu' ? webgpuEngine(gpu) : id === 'meshgrad-wasm' ? await wasmEngine() : await tfjsEngine();
    } catch (error) {
      failed = true;
      const why = `failed to start: ${(error as Error).message.split('\n')[0]}`;
      log(`  ${id}: ${why}`);
      for (const { n } of inputs) cell(n, { timing: null, gflops: null, relError: null, skipped: why });
      continue;
    }
    descriptions[id] = engine.description;
    try {
      let previous: { n: number; gflops: number } | null = null;
      for (const { n, a, b } of inputs) {
        if (previous !== null) {
          const estimateS = (2 * n ** 3) / (previous.gflops * 1e9);
          if (estimateS > maxRunS) {
            const why = `skipped: one run ~${fmt(estimateS, 0)} s (from ${fmt(previous.gflops, 1)} GFLOPS at N=${previous.n}) > ${maxRunS} s`;
            log(`  ${id} N=${n}: ${why}`);
            cell(n, { timing: null, gflops: null, relError: null, skipped: why });
            continue;
          }
        }
        log(`  ${id} N=${n} ...`);
        const { run, release } = engine.prepare(n, a, b);
        try {
          const { times, last } = await timeRuns(run, budgetMs, maxReps);
          const timing = timingStats(times);
          const gflops = (2 * n ** 3) / (timing.medianMs * 1e6);
          if (id === 'meshgrad-wasm') reference.set(n, last);
          const ref = reference.get(n);
          const relError = id === 'meshgrad-wasm' || ref === undefined ? null : relativeError(last, ref);
          cell(n, { timing, gflops, relError, skipped: null });
          previous = { n, gflops };
        } catch (error) {
          failed = true;
          const why = `failed: ${(error as Error).message.split('\n')[0]}`;
          log(`  ${id} N=${n}: ${why}`);
          cell(n, { timing: null, gflops: null, relError: null, skipped: why });
        } finally {
          release();
        }
      }
    } finally {
      await engine.close();
    }
  }

  const rows = sizes.map((n): WebGpuMatmulRow => {
    const c = Object.fromEntries(WEBGPU_MATMUL_ENGINES.map((e) => [e, cells.get(e)?.get(n) as WebGpuMatmulCell])) as Record<WebGpuMatmulEngine, WebGpuMatmulCell>;
    const ratio = (x: number | null, y: number | null): number | null => (x === null || y === null ? null : x / y);
    return {
      n,
      cells: c,
      webgpuVsTfjs: ratio(c['meshgrad-webgpu'].gflops, c['tfjs-webgpu'].gflops),
      webgpuVsWasm: ratio(c['meshgrad-webgpu'].gflops, c['meshgrad-wasm'].gflops),
      tiling: tilingText(gpu, n),
    };
  });
  const targetRow = rows.find((r) => r.n === WEBGPU_MATMUL_TARGET.n);
  const target =
    gpu.adapter.software && targetRow !== undefined && targetRow.webgpuVsTfjs !== null
      ? { n: WEBGPU_MATMUL_TARGET.n, ratio: targetRow.webgpuVsTfjs, met: targetRow.webgpuVsTfjs >= WEBGPU_MATMUL_TARGET.ratio }
      : null;
  const errorsOk = rows.every((r) => WEBGPU_MATMUL_ENGINES.every((e) => r.cells[e].relError === null || r.cells[e].relError < MAX_REL_ERROR));
  return { adapter: gpu.adapter, sizes, budgetMs, maxRunS, descriptions, rows, target, ok: errorsOk && !failed };
}

export function webGpuMatmulTable(r: WebGpuMatmulSuiteResult): string {
  const cell = (c: WebGpuMatmulCell): string => {
    if (c.timing === null || c.gflops === null) {
      if (c.skipped?.startsWith('skipped')) return `skipped (> ${r.maxRunS} s a run)`;
      return c.skipped?.startsWith('not measured') ? '-' : 'FAILED';
    }
    const ms = c.timing.medianMs;
    return `${fmt(c.gflops, c.gflops < 10 ? 2 : 1)} (${fmt(ms, ms < 10 ? 2 : ms < 1000 ? 1 : 0)} ms${c.timing.runs < 3 ? `, ${c.timing.runs} run${c.timing.runs === 1 ? '' : 's'}` : ''})`;
  };
  const ratio = (v: number | null): string => (v === null ? '-' : fmtRatio(v));
  const table = formatTable(
    ['N', 'meshgrad webgpu', 'meshgrad wasm', 'tfjs-webgpu', 'webgpu / tfjs-webgpu', 'webgpu / wasm'],
    r.rows.map((row) => [String(row.n), cell(row.cells['meshgrad-webgpu']), cell(row.cells['meshgrad-wasm']), cell(row.cells['tfjs-webgpu']), ratio(row.webgpuVsTfjs), ratio(row.webgpuVsWasm)]),
    new Set([0, 1, 2, 3, 4, 5]),
  );
  const adapterLine = r.adapter.software
    ? `  a SOFTWARE adapter (the "GPU" is this machine's CPU): these figures compare meshgrad's kernel efficiency against tfjs-webgpu on the same adapter, not absolute GPU speed`
    : `  a hardware adapter (${r.adapter.description || r.adapter.vendor})`;
  const skipped = r.rows.flatMap((row) => WEBGPU_MATMUL_ENGINES.flatMap((e) => (row.cells[e].skipped && row.cells[e].timing === null && !row.cells[e].skipped.startsWith('not measured') ? [`  ${e} N=${row.n}: ${row.cells[e].skipped}`] : [])));
  const errors = r.rows.map((row) => `N=${row.n}: ${(['meshgrad-webgpu', 'tfjs-webgpu'] as const).map((e) => (row.cells[e].relError === null ? '-' : row.cells[e].relError.toExponential(1))).join(' / ')}`).join('; ');
  const tilings = [...new Set(r.rows.map((row) => row.tiling))].length === 1 ? r.rows[0]?.tiling ?? '-' : r.rows.map((row) => `N=${row.n} ${row.tiling}`).join('; ');
  const t = r.target;
  const targetLine = t
    ? `Target (software adapter): meshgrad webgpu at N=${t.n} no slower than tfjs-webgpu: ${fmtRatio(t.ratio ?? NaN)} its GFLOPS: ${t.met ? 'MET' : 'NOT MET'}`
    : r.adapter.software
      ? `Target (software adapter): N=${WEBGPU_MATMUL_TARGET.n} not measured on both engines`
      : 'Target: none for the matmul on a hardware adapter (the gpt-tiny step is the hardware target)';
  return [
    `WebGPU matmul on ${r.adapter.name}: square float32 C = A*B; cells are GFLOPS = 2N^3 / median time (median ms), every run ending with the product read back to the host`,
    adapterLine,
    `  engines: ${r.descriptions['meshgrad-webgpu']}; ${r.descriptions['meshgrad-wasm']}; ${r.descriptions['tfjs-webgpu']}`,
    `  ratios: meshgrad webgpu GFLOPS / the other engine's (> 1: meshgrad webgpu faster); an N whose one run would take over ${r.maxRunS} s (estimated from the engine's GFLOPS at the previous N) is skipped`,
    '',
    table,
    '',
    `  meshgrad webgpu tiling: ${tilings}`,
    `  max relative difference from meshgrad wasm's product (webgpu / tfjs-webgpu): ${errors}`,
    ...skipped,
    ...(r.ok ? [] : ['  CHECK FAILED: a product differs from the wasm backend\'s, or an engine failed']),
    '',
    targetLine,
  ].join('\n');
}

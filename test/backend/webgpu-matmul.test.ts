// The WebGPU matrix product against the CPU reference kernel (shared/backend/cpu/matmul.ts): odd
// shapes that fit no tile, every transpose pair, every m, n, k in 1..9, batches with either operand
// broadcast, k = 0 and empty outputs, a long k, Inf/NaN at the edge of the last k-tile, one buffer
// as both operands, and a batch beyond one dispatch's 65535 workgroups. Each case runs with the
// tiling the backend picks for this adapter, and the main ones also with the tilings of the other
// kind of adapter: the 'gpu' target through an odd tiling (15 threads, which divide no tile, so
// the guarded staging runs too) for every transpose pair and the GPU tiling itself for one, the
// 'cpu' target through its largest tiling; so both code paths are checked wherever the suite runs
// (on a software adapter each pipeline costs 0.5-3 s to compile: the cases share few tilings).
// Skipped, with the reason printed, where no WebGPU adapter exists.
import { describe, expect, it } from 'vitest';
import type { MatmulSpec } from '../../shared/backend/backend.js';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { GpuBuffer } from '../../shared/backend/webgpu/webgpu-backend.js';
import { GPU_TILING, matmulGpu, matmulGpuTiled, matmulSource, matmulTiling, matmulWorkgroupBytes, type MatmulTiling } from '../../shared/backend/webgpu/kernels/matmul.js';
import { gpuSkipReason, maxRelError, webgpu } from './webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;

/** The largest software tiling (8 × 8 threads, 16 × 16 blocks) and an odd 'gpu' one (15 threads, k-tile 3: guarded staging). */
const BIG_CPU: MatmulTiling = { tx: 8, ty: 8, r: 16, c: 16, tk: 8, unroll: 1, target: 'cpu' };
const ODD: MatmulTiling = { tx: 3, ty: 5, r: 4, c: 8, tk: 6, unroll: 3, target: 'gpu' };
/** A 'cpu' tiling with more threads than units in its A tile (the staging's `if (li < units)` path). */
const THIN: MatmulTiling = { tx: 8, ty: 2, r: 4, c: 4, tk: 2, unroll: 1, target: 'cpu' };
const TILINGS: ReadonlyArray<[string, MatmulTiling]> = [
  ['odd gpu-target', ODD],
  ['cpu-16x16', BIG_CPU],
];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function data(length: number, next: () => number): Float32Array {
  return Float32Array.from({ length }, () => next() * 2 - 1);
}

function spec(batch: number, m: number, n: number, k: number, transA = false, transB = false, aBroadcast = false, bBroadcast = false): MatmulSpec {
  return { batch, m, n, k, transA, transB, aBroadcast, bBroadcast };
}

function operands(s: MatmulSpec, seed: number): { a: Float32Array; b: Float32Array } {
  const next = rng(seed);
  return { a: data((s.aBroadcast ? 1 : s.batch) * s.m * s.k, next), b: data((s.bBroadcast ? 1 : s.batch) * s.k * s.n, next) };
}

function expected(s: MatmulSpec, a: Float32Array, b: Float32Array): Float32Array {
  return cpu.readSync(cpu.matmul(cpu.upload(a), cpu.upload(b), s)) as Float32Array;
}

const label = (s: MatmulSpec, extra = ''): string =>
  `${extra}batch ${s.batch} m ${s.m} n ${s.n} k ${s.k}${s.transA ? ' transA' : ''}${s.transB ? ' transB' : ''}${s.aBroadcast ? ' aBroadcast' : ''}${s.bBroadcast ? ' bBroadcast' : ''}`;

interface Job {
  readonly s: MatmulSpec;
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly tiling: MatmulTiling | null;
  readonly what: string;
}

/** Records every job's product, reads them all back with one submit, and checks each against the reference. */
async function check(jobs: readonly Job[], tolerance = 1e-5): Promise<void> {
  const g = webgpu();
  const outs = jobs.map((j) => {
    const a = (g.upload(j.a) as GpuBuffer).gpu;
    const b = (g.upload(j.b) as GpuBuffer).gpu;
    return j.tiling === null ? matmulGpu(g.ctx, a, b, j.s) : matmulGpuTiled(g.ctx, a, b, j.s, j.tiling);
  });
  const read = await g.ctx.readMany(outs.map((o, i) => [o, 4 * jobs[i].s.batch * jobs[i].s.m * jobs[i].s.n] as const));
  jobs.forEach((j, i) => {
    const got = new Float32Array(read[i]);
    const want = expected(j.s, j.a, j.b);
    expect(got.length, label(j.s, j.what)).toBe(want.length);
    expect(maxRelError(got, want), label(j.s, j.what)).toBeLessThan(tolerance);
  });
}

const PAIRS: ReadonlyArray<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

suite('webgpu matmul matches the reference', () => {
  it('odd shapes that fit no tile, every transpose pair, every tiling', async () => {
    const shapes: Array<[number, number, number]> = [
      [67, 131, 45],
      [1, 200, 17],
      [150, 3, 31],
      [13, 50, 130],
      [70, 66, 9],
    ];
    const jobs: Job[] = [];
    let seed = 1;
    for (const [m, n, k] of shapes) {
      for (const [ta, tb] of PAIRS) {
        const s = spec(1, m, n, k, ta, tb);
        const { a, b } = operands(s, seed++);
        jobs.push({ s, a, b, tiling: null, what: 'adapter tiling: ' });
        for (const [name, t] of TILINGS) jobs.push({ s, a, b, tiling: t, what: `${name} tiling: ` });
        if (!ta && !tb) jobs.push({ s, a, b, tiling: GPU_TILING, what: 'gpu tiling: ' });
      }
    }
    await check(jobs);
  });

  it('every m, n, k in 1..9 with random transposes', async () => {
    const next = rng(99);
    const jobs: Job[] = [];
    for (let m = 1; m <= 9; m++) {
      for (let n = 1; n <= 9; n++) {
        for (let k = 1; k <= 9; k++) {
          const s = spec(1, m, n, k, next() < 0.5, next() < 0.5);
          const { a, b } = operands(s, m * 100 + n * 10 + k);
          jobs.push({ s, a, b, tiling: null, what: '' });
          // The odd 'gpu' tiling too, on a third of the cases.
          if ((m + n + k) % 3 === 0) jobs.push({ s, a, b, tiling: ODD, what: 'odd gpu-target tiling: ' });
          if ((m + n + k) % 3 === 1) jobs.push({ s, a, b, tiling: THIN, what: 'thin tiling: ' });
        }
      }
    }
    await check(jobs);
  });

  it('batched products with either operand broadcast, every transpose pair', async () => {
    const jobs: Job[] = [];
    let seed = 500;
    for (const [aB, bB] of PAIRS) {
      for (const [ta, tb] of PAIRS) {
        const s = spec(5, 19, 37, 23, ta, tb, aB, bB);
        const { a, b } = operands(s, seed++);
        jobs.push({ s, a, b, tiling: null, what: '' });
        jobs.push({ s, a, b, tiling: ODD, what: 'odd tiling: ' });
      }
    }
    const wide = spec(3, 200, 140, 50, false, true, false, true);
    jobs.push({ s: wide, ...operands(wide, 7), tiling: null, what: '' });
    jobs.push({ s: wide, ...operands(wide, 7), tiling: BIG_CPU, what: 'cpu-16x16 tiling: ' });
    await check(jobs);
  });

  it('k = 0 gives zeros; an empty output dispatches nothing', async () => {
    const g = webgpu();
    for (const t of [null, ODD, BIG_CPU]) {
      const s = spec(2, 13, 7, 0);
      const empty = (g.upload(new Float32Array(0)) as GpuBuffer).gpu;
      // The output comes from the pool (earlier tests left values in its buffers): every element must be written.
      const out = t === null ? matmulGpu(g.ctx, empty, empty, s) : matmulGpuTiled(g.ctx, empty, empty, s, t);
      const [bytes] = await g.ctx.readMany([[out, 4 * 2 * 13 * 7]]);
      expect(Array.from(new Float32Array(bytes))).toEqual(new Array(2 * 13 * 7).fill(0));
    }
    const before = g.ctx.stats.dispatches;
    for (const s of [spec(0, 4, 4, 4), spec(3, 0, 4, 4), spec(3, 4, 0, 4)]) {
      const a = (g.upload(new Float32Array(Math.max(1, s.batch * s.m * s.k))) as GpuBuffer).gpu;
      const b = (g.upload(new Float32Array(Math.max(1, s.batch * s.k * s.n))) as GpuBuffer).gpu;
      matmulGpu(g.ctx, a, b, s);
    }
    expect(g.ctx.stats.dispatches).toBe(before);
    // Through the backend: k = 0 is a [m, n] tensor of zeros.
    const z = (await g.read(g.matmul(g.upload(new Float32Array(0)), g.upload(new Float32Array(0)), spec(1, 3, 5, 0)))) as Float32Array;
    expect(Array.from(z)).toEqual(new Array(15).fill(0));
  });

  it('a tiling beyond WebGPU\'s guaranteed limits, or with blocks not in fours, is refused', () => {
    expect(() => matmulSource({ ...BIG_CPU, tx: 32, ty: 16 }, false, false)).toThrow(RangeError);
    expect(() => matmulSource({ ...BIG_CPU, tk: 32 }, false, false)).toThrow(RangeError);
    expect(() => matmulSource({ ...BIG_CPU, r: 6 }, false, false)).toThrow(RangeError);
    expect(() => matmulSource({ ...BIG_CPU, unroll: 3 }, false, false)).toThrow(RangeError);
    expect(matmulWorkgroupBytes(GPU_TILING)).toBeLessThanOrEqual(16384);
  });

  it('a long k stays within float32 accumulation error', async () => {
    const jobs: Job[] = [];
    for (const [ta, tb] of [
      [false, false],
      [true, true],
    ] as const) {
      const s = spec(1, 21, 18, 4099, ta, tb);
      jobs.push({ s, ...operands(s, ta ? 3 : 4), tiling: null, what: '' });
    }
    await check(jobs);
  });

  it('Inf and NaN propagate as in the reference, also at the end of the last k-tile', async () => {
    const g = webgpu();
    // k = 11 is a multiple of no k-tile: the last tile's padding must add exact zeros, never 0·Inf.
    const s = spec(1, 6, 5, 11);
    const { a, b } = operands(s, 42);
    a[0 * 11 + 10] = Infinity; // row 0, last k: row 0 of the product is ±Inf
    a[2 * 11 + 3] = NaN; // row 2: NaN
    b[10 * 5 + 4] = 0; // column 4 meets the Inf with a 0: NaN in (0, 4), as in the reference
    const want = expected(s, a, b);
    for (const t of [null, ...TILINGS.map(([, tiling]) => tiling)]) {
      const A = (g.upload(a) as GpuBuffer).gpu;
      const B = (g.upload(b) as GpuBuffer).gpu;
      const out = t === null ? matmulGpu(g.ctx, A, B, s) : matmulGpuTiled(g.ctx, A, B, s, t);
      const got = new Float32Array((await g.ctx.readMany([[out, 4 * 30]]))[0]);
      for (let i = 0; i < want.length; i++) {
        const where = `${JSON.stringify(t)} element ${i}: ${got[i]} vs ${want[i]}`;
        if (!Number.isFinite(want[i])) expect(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])), where).toBe(true);
        else expect(Math.abs(got[i] - want[i]), where).toBeLessThan(1e-5 * 4);
      }
    }
  });

  it('one buffer as both operands (x·xᵀ), through the backend', async () => {
    const g = webgpu();
    const s = spec(1, 37, 37, 29, false, true);
    const x = data(37 * 29, rng(8));
    const X = g.upload(x);
    const got = (await g.read(g.matmul(X, X, s))) as Float32Array;
    expect(maxRelError(got, expected(s, x, x))).toBeLessThan(1e-5);
  });

  it('a batch beyond 65535 workgroups is split over dispatches', async () => {
    const g = webgpu();
    const s = spec(65537, 1, 2, 3, false, false, false, true);
    // On a software adapter the tiling for m = 1, n = 2 is one thread a workgroup: 65537 of them are cheap.
    expect(matmulTiling(g.ctx, s).tx * matmulTiling(g.ctx, s).ty).toBeLessThanOrEqual(g.adapter.software ? 1 : 256);
    const before = g.ctx.stats.dispatches;
    await check([{ s, ...operands(s, 77), tiling: null, what: '' }]);
    expect(g.ctx.stats.dispatches - before).toBe(2);
  });
});

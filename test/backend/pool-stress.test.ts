// The fork-join pool under load: thousands of fork-joins of random shapes — tiny and empty slices,
// empty matrices, every transpose — on both kernel builds and 2, 3 and 4 threads, while hog
// processes keep every core busy, each result compared bit for bit with one thread. Preempting the
// caller between "new generation" and its notify is what the busy cores provoke; before the fix
// (thread.ts header) this hung or returned wrong bits within a few hundred fork-joins. Then the
// failure paths: a pool thread that dies, and one that never wakes, each become a PoolStallError
// naming the pool's state instead of a wait without end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import { PoolStallError } from '../../shared/backend/wasm/pool.js';
import type { KernelFlavour } from '../../shared/backend/wasm/kernels.js';
import * as F from '../../shared/ops/index.js';
import { Rng } from '../../shared/util/random.js';
import { CpuHog } from '../helpers/cpu-hog.js';

let hog: CpuHog;
beforeAll(() => {
  hog = CpuHog.start();
});
afterAll(async () => {
  await hog.stop();
});

/** The first index where two float32 arrays differ in their bits, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** A random size: mostly tiny (so most threads get empty or one-panel slices), sometimes 0, sometimes larger. */
function size(rng: Rng): number {
  const r = rng.int(10);
  if (r === 0) return 0;
  if (r < 7) return 1 + rng.int(24);
  return 1 + rng.int(140);
}

const FORK_JOINS = 1500;

describe('the fork-join pool under load', () => {
  const configs: Array<[KernelFlavour, number]> = [];
  for (const flavour of ['simd', 'relaxed-simd'] as const) for (const threads of [2, 3, 4]) configs.push([flavour, threads]);

  it.each(configs)('%s, %i threads: every product is bit-identical to one thread', { timeout: 240_000 }, async (flavour, threads) => {
    expect(hog.running).toBe(true);
    const one = await WasmBackend.create({ flavour });
    const many = await WasmBackend.create({ flavour, threads, parallelMinMacs: 0 });
    try {
      const rng = new Rng(1000 * threads + (flavour === 'simd' ? 1 : 2));
      let forks = 0;
      for (let trial = 0; trial < FORK_JOINS; trial++) {
        const m = size(rng);
        const k = size(rng);
        const n = size(rng);
        const ta = rng.int(2) === 1;
        const tb = rng.int(2) === 1;
        const a = F.randn(ta ? [k, m] : [m, k], rng, { backend: one });
        const b = F.randn(tb ? [n, k] : [k, n], rng, { backend: one });
        const expected = one.scope(() => Float32Array.from(F.matmulT(a, b, ta, tb).dataSync() as Float32Array));
        const actual = many.scope(() => {
          const a2 = F.tensor(a.dataSync() as Float32Array, a.shape, { backend: many });
          const b2 = F.tensor(b.dataSync() as Float32Array, b.shape, { backend: many });
          return Float32Array.from(F.matmulT(a2, b2, ta, tb).dataSync() as Float32Array);
        });
        if (m > 0 && n > 0) forks++;
        const at = firstBitDifference(actual, expected);
        if (at >= 0) expect.fail(`${m}x${k}x${n} transA=${ta} transB=${tb}: element ${at} is ${actual[at]} with ${threads} threads, ${expected[at]} with one`);
      }
      expect(forks).toBeGreaterThan(FORK_JOINS / 2);
    } finally {
      await one.close();
      await many.close();
    }
    expect(hog.running).toBe(true);
  });
});

describe('a pool that cannot finish fails with its state, never hangs', () => {
  it('a pool thread that has exited: the next fork-join fails at once, naming it', async () => {
    const backend = await WasmBackend.create({ threads: 3, parallelMinMacs: 0 });
    try {
      const pool = backend.threadPool!;
      await pool.terminateThreadForTest(2);
      await new Promise((r) => setImmediate(r)); // let the 'exit' event reach the pool
      const x = F.ones([8, 64], { backend });
      let error: unknown = null;
      try {
        F.matmul(x, F.ones([64, 64], { backend }));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(PoolStallError);
      expect(String(error)).toMatch(/pool thread 2 exited/);
      expect(String(error)).toMatch(/thread 2 exited \(exit code \d+\)/);
      expect(String(error)).toMatch(/thread 1 idle, started \d+, finished \d+: done/);
      // The pool stays failed rather than trusting its threads again.
      expect(() => F.matmul(x, F.ones([64, 64], { backend }))).toThrow(PoolStallError);
    } finally {
      await backend.close();
    }
  });

  it('a pool thread that never takes the task (a lost wake-up): the fork-join fails within its bound', async () => {
    const backend = await WasmBackend.create({ threads: 2, parallelMinMacs: 0, stallAfterMs: 300 });
    try {
      const pool = backend.threadPool!;
      // Ask the thread to end, then block this thread until it is gone, so the 'exit' event has
      // not been delivered: from the pool's side, the thread simply never answers.
      const ended = pool.terminateThreadForTest(1);
      const until = Date.now() + 500;
      while (Date.now() < until);
      const x = F.ones([8, 64], { backend });
      let error: unknown = null;
      const began = Date.now();
      try {
        F.matmul(x, F.ones([64, 64], { backend }));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(PoolStallError);
      expect(String(error)).toMatch(/the thread pool stalled \(no completion after \d+\.\d s\): generation \d+, pending 1/);
      expect(String(error)).toMatch(/thread 1 \w+, started \d+, finished \d+: never started it \(lost wake-up\?\)/);
      // Bounded: it gave up on its own (the limit is 300 ms here; the bound checked is loose, so
      // that a busy machine cannot fail it).
      expect(Date.now() - began).toBeLessThan(60_000);
      await ended;
    } finally {
      await backend.close();
    }
  });
});

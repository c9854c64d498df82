// The gemm kernel (shared/backend/wasm/assembly/gemm.ts) called directly, below the backend: every
// flag (transposes, accumulate, swapped orientation, V packed once for the batch), ranges of
// members / S rows / V lanes as the pool's pieces use them, k = 0, and operands flush against the
// end of the wasm memory (a read past a matrix would trap there) with canaries around C (a write
// outside the range asked for would show). Results are checked against a float64 reference, and
// bit for bit across orientations and cuts: the thread pool relies on every element's bits being
// independent of which piece, orientation or thread computes it (the kernel's numerical contract).
import { describe, expect, it } from 'vitest';
import { WasmHeap } from '../../shared/backend/wasm/heap.js';
import { GEMM_FLAGS, instantiateKernels, kernelModule, type KernelExports, type KernelFlavour } from '../../shared/backend/wasm/kernels.js';
import { Rng } from '../../shared/util/random.js';

interface Case {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  aBroadcast: boolean;
  bBroadcast: boolean;
}

/** Float64 reference of C (=|+=) op(A)·op(B), and the bound |op(A)|·|op(B)| for the error. */
function reference(c: Case, a: Float32Array, b: Float32Array, c0: Float32Array | null): { value: Float64Array; scale: Float64Array } {
  const { batch, m, n, k } = c;
  const value = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const ab = c.aBroadcast ? 0 : t * m * k;
    const bb = c.bBroadcast ? 0 : t * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = c0 ? c0[t * m * n + i * n + j] : 0;
        let z = Math.abs(s);
        for (let p = 0; p < k; p++) {
          const x = a[ab + (c.transA ? p * m + i : i * k + p)] * b[bb + (c.transB ? j * k + p : p * n + j)];
          s += x;
          z += Math.abs(x);
        }
        value[t * m * n + i * n + j] = s;
        scale[t * m * n + i * n + j] = z;
      }
    }
  }
  return { value, scale };
}

const CANARY = 12345.5;

class Bench {
  readonly heap = new WasmHeap(4 << 20, 512);
  readonly k: KernelExports;
  constructor(flavour: KernelFlavour) {
    this.k = instantiateKernels(kernelModule(flavour).module, this.heap.memory);
  }
  /** A float block; `atEnd` places it flush against the end of the memory (never allocated: the heap stays far below). */
  block(floats: number, atEnd = false): { ptr: number; size: number; view: Float32Array } {
    if (atEnd) {
      const ptr = this.heap.memory.buffer.byteLength - floats * 4;
      return { ptr, size: 0, view: new Float32Array(this.heap.memory.buffer, ptr, floats) };
    }
    const { ptr, size } = this.heap.alloc(Math.max(floats, 1) * 4);
    return { ptr, size, view: this.heap.f32(ptr, floats) };
  }
  free(blk: { ptr: number; size: number }): void {
    if (blk.size > 0) this.heap.release(blk.ptr, blk.size);
  }
}

/**
 * Runs one product through gemmBatch, cut into pieces by `cuts` (ranges of members, S rows and V
 * lanes, each list of boundaries ascending from 0 to the extent), and returns C (canaries checked).
 */
function run(bench: Bench, c: Case, a: Float32Array, b: Float32Array, c0: Float32Array | null, swap: boolean, packOnce: boolean, cuts: { t: number[]; r: number[]; v: number[] }, endOperand: 'a' | 'b' | 'none'): Float32Array {
  const { batch, m, n, k } = c;
  const A = bench.block(a.length, endOperand === 'a');
  const B = bench.block(b.length, endOperand === 'b');
  A.view.set(a);
  B.view.set(b);
  const guard = 16;
  const C = bench.block(batch * m * n + 2 * guard);
  C.view.fill(CANARY);
  const out = C.view.subarray(guard, guard + batch * m * n);
  if (c0) out.set(c0);
  const lanes = swap ? m : n;
  const scratch = bench.heap.alloc(bench.k.gemmScratchFor(k, lanes, packOnce ? 1 : 0));
  const flags = (c.transA ? GEMM_FLAGS.transA : 0) | (c.transB ? GEMM_FLAGS.transB : 0) | (c0 ? GEMM_FLAGS.accumulate : 0) | (swap ? GEMM_FLAGS.swap : 0) | (packOnce ? GEMM_FLAGS.packOnce : 0);
  for (let ti = 0; ti + 1 < cuts.t.length; ti++) {
    for (let ri = 0; ri + 1 < cuts.r.length; ri++) {
      for (let vi = 0; vi + 1 < cuts.v.length; vi++) {
        bench.k.gemmBatch(A.ptr, B.ptr, C.ptr + guard * 4, m, n, k, flags, c.aBroadcast ? 0 : m * k * 4, c.bBroadcast ? 0 : k * n * 4, cuts.t[ti], cuts.t[ti + 1], cuts.r[ri], cuts.r[ri + 1], cuts.v[vi], cuts.v[vi + 1], scratch.ptr);
      }
    }
  }
  for (let i = 0; i < guard; i++) {
    expect(C.view[i], 'a write before C').toBe(CANARY);
    expect(C.view[guard + batch * m * n + i], 'a write after C').toBe(CANARY);
  }
  const result = Float32Array.from(out);
  bench.heap.release(scratch.ptr, scratch.size);
  for (const blk of [A, B, C]) bench.free(blk);
  return result;
}

/** Boundaries 0 = b0 < b1 < ... = extent, each a multiple of `unit` but the last. */
function cut(extent: number, unit: number, rng: Rng): number[] {
  const out = [0];
  while (out[out.length - 1] < extent) out.push(Math.min(extent, out[out.length - 1] + unit * (1 + rng.int(3))));
  return out;
}

function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

describe.each(['simd', 'relaxed-simd'] as const)('gemmBatch (%s)', (flavour) => {
  const bench = new Bench(flavour);

  it('matches the float64 reference and gives the same bits in both orientations and any cut', () => {
    const rng = new Rng(flavour === 'simd' ? 31 : 32);
    for (let trial = 0; trial < 400; trial++) {
      const small = trial % 4 !== 0;
      const c: Case = {
        batch: 1 + rng.int(3),
        m: 1 + rng.int(small ? 13 : 70),
        n: 1 + rng.int(small ? 17 : 70),
        k: trial % 40 === 0 ? 0 : 1 + rng.int(small ? 9 : trial % 3 === 0 ? 600 : 40),
        transA: rng.int(2) === 1,
        transB: rng.int(2) === 1,
        aBroadcast: rng.int(3) === 0,
        bBroadcast: rng.int(3) === 0,
      };
      const a = Float32Array.from({ length: (c.aBroadcast ? 1 : c.batch) * c.m * c.k }, () => rng.normal() * 10 ** (rng.int(5) - 2));
      const b = Float32Array.from({ length: (c.bBroadcast ? 1 : c.batch) * c.k * c.n }, () => rng.normal());
      const c0 = rng.int(2) === 1 ? Float32Array.from({ length: c.batch * c.m * c.n }, () => rng.normal()) : null;
      const { value, scale } = reference(c, a, b, c0);
      const what = JSON.stringify({ ...c, accumulate: c0 !== null });
      let first: Uint32Array | null = null;
      for (const swap of [false, true]) {
        const rows = swap ? c.n : c.m;
        const lanes = swap ? c.m : c.n;
        const vBroadcast = swap ? c.aBroadcast : c.bBroadcast;
        for (const pieces of [false, true]) {
          const cuts = pieces ? { t: cut(c.batch, 1, rng), r: cut(rows, 4, rng), v: cut(lanes, 8, rng) } : { t: [0, c.batch], r: [0, rows], v: [0, lanes] };
          const packOnce = vBroadcast && c.batch > 1 && (!pieces || cuts.t.length === 2);
          const end = (['a', 'b', 'none'] as const)[rng.int(3)];
          const got = run(bench, c, a, b, c0, swap, packOnce, cuts, end);
          for (let i = 0; i < got.length; i++) {
            const err = Math.abs(got[i] - value[i]);
            if (!(err <= 2e-6 * (scale[i] + 1e-30) * (1 + Math.sqrt(c.k)))) expect.fail(`${what} swap=${swap} pieces=${pieces}: element ${i} is ${got[i]}, reference ${value[i]}`);
          }
          if (!first) first = Uint32Array.from(bits(got));
          else {
            const at = bits(got).findIndex((x, i) => x !== first![i]);
            if (at >= 0) expect.fail(`${what} swap=${swap} pieces=${pieces}: element ${at} has other bits than the first way of computing it`);
          }
        }
      }
    }
  });

  it('k = 0 writes zeros, or leaves C alone when accumulating', () => {
    const c: Case = { batch: 2, m: 5, n: 11, k: 0, transA: false, transB: true, aBroadcast: false, bBroadcast: false };
    for (const swap of [false, true]) {
      const cuts = { t: [0, 2], r: [0, swap ? 11 : 5], v: [0, swap ? 5 : 11] };
      expect([...run(bench, c, new Float32Array(0), new Float32Array(0), null, swap, false, cuts, 'none')].every((x) => x === 0)).toBe(true);
      const c0 = Float32Array.from({ length: 110 }, (_, i) => i);
      expect([...run(bench, c, new Float32Array(0), new Float32Array(0), c0, swap, false, cuts, 'none')]).toEqual([...c0]);
    }
  });

  it('the legacy column-range entry (gemm) agrees with gemmBatch', () => {
    const rng = new Rng(4);
    const m = 13, n = 29, k = 300;
    const a = Float32Array.from({ length: m * k }, () => rng.normal());
    const b = Float32Array.from({ length: k * n }, () => rng.normal());
    const A = bench.block(a.length), B = bench.block(b.length), C = bench.block(m * n);
    A.view.set(a);
    B.view.set(b);
    const scratch = bench.heap.alloc(bench.k.gemmScratchBytes(n));
    bench.k.gemm(A.ptr, B.ptr, C.ptr, m, n, k, 0, 1, 0, 0, 12, scratch.ptr);
    bench.k.gemm(A.ptr, B.ptr, C.ptr, m, n, k, 0, 1, 0, 12, n, scratch.ptr);
    const c: Case = { batch: 1, m, n, k, transA: false, transB: true, aBroadcast: false, bBroadcast: false };
    const want = run(bench, c, a, b, null, false, false, { t: [0, 1], r: [0, m], v: [0, n] }, 'none');
    expect([...bits(Float32Array.from(C.view))]).toEqual([...bits(want)]);
    for (const blk of [A, B, C]) bench.free(blk);
    bench.heap.release(scratch.ptr, scratch.size);
  });
});

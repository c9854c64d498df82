// matmul's batch broadcasting (NumPy / torch.matmul: batch axes right-aligned, each pair equal or
// one of them 1) and its 1-D operands: forward against a naive triple loop on random shapes with
// odd sizes, every transpose pair, float64 finite-difference gradient checks for each broadcast
// pattern (a broadcast side's gradient is the sum over the axes it was broadcast along), the error
// for batch axes that do not broadcast, and the same products on the wasm backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as F from '../../shared/ops/index.js';
import { matmulT } from '../../shared/ops/matmul.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** The flat offset of batch entry `index` (of `batch`) in an operand with batch axes `own` (broadcast reads index 0). */
function batchOffset(index: readonly number[], batch: readonly number[], own: readonly number[], matrixSize: number): number {
  const strides = stridesOf(own);
  let offset = 0;
  for (let i = 0; i < own.length; i++) {
    const j = batch.length - own.length + i;
    offset += (own[i] === 1 ? 0 : index[j]) * strides[i];
  }
  return offset * matrixSize;
}

/** op(A)·op(B) with broadcast batch axes by plain loops, in float64; returns the shape and the data. */
function reference(a: Tensor, b: Tensor, transA: boolean, transB: boolean): { shape: number[]; data: Float64Array } {
  const A = a.dataSync();
  const B = b.dataSync();
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const n = transB ? br : bc;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[i - rank + aBatch.length] ?? 1;
    const db = bBatch[i - rank + bBatch.length] ?? 1;
    batch.push(da === 1 ? db : da);
  }
  const count = batch.reduce((p, d) => p * d, 1);
  const out = new Float64Array(count * m * n);
  const bStrides = stridesOf(batch);
  for (let e = 0; e < count; e++) {
    const index = bStrides.map((s, i) => Math.floor(e / s) % batch[i]);
    const ao = batchOffset(index, batch, aBatch, ar * ac);
    const bo = batchOffset(index, batch, bBatch, br * bc);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? A[ao + p * ac + i] : A[ao + i * ac + p];
          const bv = transB ? B[bo + j * bc + p] : B[bo + p * bc + j];
          acc += av * bv;
        }
        out[(e * m + i) * n + j] = acc;
      }
    }
  }
  return { shape: [...batch, m, n], data: out };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  expect(err).toBeLessThan(tol);
}

/** Two batch shapes that broadcast: per aligned axis a size, then each side keeps it or has 1; one side may lack leading axes. */
function randomBatches(rng: Rng): [number[], number[]] {
  const sizes = [1, 2, 3, 5];
  const rank = Math.floor(rng.uniform() * 4);
  const common = Array.from({ length: rank }, () => sizes[Math.floor(rng.uniform() * sizes.length)]);
  const side = (): number[] => common.map((d) => (rng.uniform() < 0.4 ? 1 : d));
  let a = side();
  let b = side();
  const drop = Math.floor(rng.uniform() * (rank + 1));
  if (rng.uniform() < 0.5) a = a.slice(drop);
  else b = b.slice(drop);
  return [a, b];
}

function operand(batch: readonly number[], rows: number, cols: number, seed: number): Tensor {
  return F.randn([...batch, rows, cols], new Rng(seed), { dtype: 'float64' });
}

describe('matmul broadcasting: forward against a naive loop', () => {
  it('matches on 60 random broadcast patterns with odd sizes and every transpose pair', () => {
    const rng = new Rng(2024);
    for (let trial = 0; trial < 60; trial++) {
      const [aBatch, bBatch] = randomBatches(rng);
      const [m, k, n] = [1 + Math.floor(rng.uniform() * 6), 1 + Math.floor(rng.uniform() * 7), 1 + Math.floor(rng.uniform() * 5)];
      const transA = trial % 2 === 1;
      const transB = trial % 4 >= 2;
      const a = operand(aBatch, transA ? k : m, transA ? m : k, 10 + trial);
      const b = operand(bBatch, transB ? n : k, transB ? k : n, 500 + trial);
      const want = reference(a, b, transA, transB);
      const got = matmulT(a, b, transA, transB);
      expect(got.shape, `${a} · ${b}`).toEqual(want.shape);
      expectClose(got.dataSync(), want.data, 1e-12);
    }
  });

  it('gives the documented shapes', () => {
    const z = (...shape: number[]) => F.zeros(shape);
    expect(F.matmul(z(2, 1, 3, 4), z(5, 4, 6)).shape).toEqual([2, 5, 3, 6]);
    expect(F.matmul(z(3, 4), z(7, 1, 4, 2)).shape).toEqual([7, 1, 3, 2]);
    expect(F.matmul(z(1, 1, 3, 4), z(7, 4, 2)).shape).toEqual([1, 7, 3, 2]);
    expect(F.matmul(z(2, 3, 4), z(1, 4, 5)).shape).toEqual([2, 3, 5]);
    expect(F.matmul(z(4, 1, 3, 4), z(1, 6, 4, 5)).shape).toEqual([4, 6, 3, 5]);
  });

  it('float32 agrees with the float64 loop', () => {
    const a = F.randn([3, 1, 5, 7], new Rng(1));
    const b = F.randn([4, 7, 3], new Rng(2));
    expectClose(F.matmul(a, b).dataSync(), reference(a, b, false, false).data, 1e-5);
  });

  it('names both shapes when batch axes do not broadcast', () => {
    expect(() => F.matmul(F.zeros([2, 3, 4, 5]), F.zeros([4, 5, 6]))).toThrow(/\[2, 3\] of \[2, 3, 4, 5\] and \[4\] of \[4, 5, 6\] do not broadcast/);
    expect(() => F.matmul(F.zeros([2, 1, 4, 5]), F.zeros([3, 1, 5, 6]))).toThrow(/\[2, 1, 4, 5\].*\[3, 1, 5, 6\]/);
  });
});

describe('matmul with 1-D operands (torch.matmul)', () => {
  const v = (n: number, seed: number) => F.randn([n], new Rng(seed), { dtype: 'float64' });

  it('vector·vector is the dot product, a scalar', () => {
    const a = v(5, 1);
    const b = v(5, 2);
    const c = F.matmul(a, b);
    expect(c.shape).toEqual([]);
    const [x, y] = [a.dataSync(), b.dataSync()];
    expect(c.item()).toBeCloseTo(Array.from(x).reduce((s, xi, i) => s + xi * y[i], 0), 12);
  });

  it('vector·matrix and matrix·vector drop the added axis, also under a batch', () => {
    const a = v(4, 3);
    const m = operand([2, 3], 4, 5, 4);
    const row = F.matmul(a, m);
    expect(row.shape).toEqual([2, 3, 5]);
    expectClose(row.dataSync(), reference(F.reshape(a, [1, 4]), m, false, false).data, 1e-12);
    const w = operand([3], 6, 4, 5);
    const col = F.matmul(w, a);
    expect(col.shape).toEqual([3, 6]);
    expectClose(col.dataSync(), reference(w, F.reshape(a, [4, 1]), false, false).data, 1e-12);
  });

  it('rejects scalars and mismatched inner sizes naming the shapes', () => {
    expect(() => F.matmul(F.zeros([]), F.zeros([3]))).toThrow(/\[\].*\[3\]/);
    expect(() => F.matmul(F.zeros([3]), F.zeros([4]))).toThrow(/\[1, 3\].*\[4, 1\]/);
  });
});

describe('matmul broadcasting: float64 gradient checks', () => {
  const patterns: Array<[string, number[], number[], boolean, boolean]> = [
    ['[2,1,3,4]·[5,4,6]', [2, 1, 3, 4], [5, 4, 6], false, false],
    ['[3,4]·[3,1,4,2]', [3, 4], [3, 1, 4, 2], false, false],
    ['[1,1,3,4]·[3,4,2] (one matrix on the left)', [1, 1, 3, 4], [3, 4, 2], false, false],
    ['[2,3,3,4]·[1,4,5] (one matrix on the right)', [2, 3, 3, 4], [1, 4, 5], false, false],
    ['[3,1,2,3]·[1,2,3,4] (both broadcast)', [3, 1, 2, 3], [1, 2, 3, 4], false, false],
    ['[2,1,4,3]ᵀ·[3,4,5]', [2, 1, 4, 3], [3, 4, 5], true, false],
    ['[1,3,3,4]·[2,1,5,4]ᵀ', [1, 3, 3, 4], [2, 1, 5, 4], false, true],
    ['[2,1,4,3]ᵀ·[1,3,5,4]ᵀ', [2, 1, 4, 3], [1, 3, 5, 4], true, true],
  ];
  for (const [name, aShape, bShape, transA, transB] of patterns) {
    it(name, () => {
      gradcheck((a, b) => matmulT(a, b, transA, transB), [randInput(aShape, 1), randInput(bShape, 2)]);
    });
  }

  it('1-D operands: vector·batched matrix, batched matrix·vector, dot', () => {
    gradcheck((a, b) => F.matmul(a, b), [randInput([4], 3), randInput([2, 4, 3], 4)]);
    gradcheck((a, b) => F.matmul(a, b), [randInput([2, 3, 4], 5), randInput([4], 6)]);
    gradcheck((a, b) => F.matmul(a, b), [randInput([5], 7), randInput([5], 8)]);
  });

  it('a broadcast side gets the sum of its per-entry gradients', () => {
    // d(sum(A·B))/dB for A [2,1,3,4] broadcast over B's 5 entries: Σ over A's batch of Aᵀ·1.
    const a = randInput([2, 1, 3, 4], 9);
    const b = randInput([5, 4, 6], 10);
    F.sum(F.matmul(a, b)).backward();
    const A = a.dataSync();
    const want = new Float64Array(5 * 4 * 6);
    for (let e = 0; e < 5; e++) for (let p = 0; p < 4; p++) for (let j = 0; j < 6; j++) {
      let s = 0;
      for (let g = 0; g < 2; g++) for (let i = 0; i < 3; i++) s += A[(g * 3 + i) * 4 + p];
      want[(e * 4 + p) * 6 + j] = s;
    }
    expectClose(b.grad!.dataSync(), want, 1e-12);
    expect(a.grad!.shape).toEqual([2, 1, 3, 4]);
  });
});

describe('matmul broadcasting on the wasm backend', () => {
  let wasm: WasmBackend;
  beforeAll(async () => {
    wasm = await WasmBackend.create();
  });
  afterAll(async () => {
    await wasm.close();
  });

  it('forward and gradients agree with the CPU', () => {
    const on = (t: Tensor): Tensor => F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend: wasm, requiresGrad: true });
    const a = F.randn([2, 1, 3, 5], new Rng(11), { requiresGrad: true });
    const b = F.randn([3, 5, 7], new Rng(12), { requiresGrad: true });
    const [wa, wb] = [on(a), on(b)];
    const c = F.matmul(a, b);
    const wc = F.matmul(wa, wb);
    expectClose(wc.dataSync(), c.dataSync(), 1e-5);
    F.sum(c).backward();
    F.sum(wc).backward();
    expectClose(wa.grad!.dataSync(), a.grad!.dataSync(), 1e-5);
    expectClose(wb.grad!.dataSync(), b.grad!.dataSync(), 1e-5);
  });
});

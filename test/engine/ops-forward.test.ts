// Forward values of the ops against straightforward reference computations.
import { describe, expect, it } from 'vitest';
import * as F from '../../shared/ops/index.js';
import { erf32, erf64 } from '../../shared/backend/cpu/erf.js';
import { Rng } from '../../shared/util/random.js';

function naiveMatmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number, ta: boolean, tb: boolean): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-10): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])))) expect.fail(`element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('matmul kernel', () => {
  const rng = new Rng(3);
  it('matches the naive product on random shapes, all transpose flags, including odd sizes', () => {
    for (let trial = 0; trial < 40; trial++) {
      const m = 1 + rng.int(13);
      const k = 1 + rng.int(300);
      const n = 1 + rng.int(13);
      const ta = rng.int(2) === 1;
      const tb = rng.int(2) === 1;
      const a = F.randn(ta ? [k, m] : [m, k], rng, { dtype: 'float64' });
      const b = F.randn(tb ? [n, k] : [k, n], rng, { dtype: 'float64' });
      const c = F.matmulT(a, b, ta, tb);
      expect(c.shape).toEqual([m, n]);
      close(c.dataSync(), naiveMatmul(a.dataSync() as Float64Array, b.dataSync() as Float64Array, m, k, n, ta, tb));
    }
  });
  it('batched and broadcast batches', () => {
    const a = F.randn([3, 5, 6], rng, { dtype: 'float64' });
    const b = F.randn([6, 4], rng, { dtype: 'float64' });
    const c = F.matmul(a, b).dataSync();
    for (let t = 0; t < 3; t++) {
      const at = (a.dataSync() as Float64Array).subarray(t * 30, t * 30 + 30);
      close(c.subarray(t * 20, t * 20 + 20), naiveMatmul(at, b.dataSync() as Float64Array, 5, 6, 4, false, false));
    }
  });
  it('rejects mismatched inner dimensions naming the shapes', () => {
    expect(() => F.matmul(F.zeros([2, 3]), F.zeros([4, 5]))).toThrow(/\[2, 3\].*\[4, 5\]/);
  });
});

describe('elementwise and broadcasting', () => {
  it('broadcasts like NumPy', () => {
    const a = F.tensor([1, 2, 3, 4, 5, 6], [2, 1, 3]);
    const b = F.tensor([10, 20], [2, 1]);
    const c = F.add(a, b);
    expect(c.shape).toEqual([2, 2, 3]);
    expect([...c.dataSync()]).toEqual([11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26]);
  });
  it('refuses shapes that do not broadcast', () => {
    expect(() => F.add(F.zeros([2, 3]), F.zeros([4]))).toThrow(/\[2, 3\] and \[4\]/);
  });
  it('refuses mixed dtypes', () => {
    expect(() => F.add(F.zeros([2], { dtype: 'float64' }), F.zeros([2]))).toThrow(/mixed dtypes/);
  });
  it('sigmoid and tanh stay finite for huge inputs, with finite gradients', () => {
    const x = F.tensor([-1000, -50, 0, 50, 1000]);
    x.requiresGrad = true;
    const y = F.sigmoid(x);
    expect([...y.dataSync()]).toEqual([0, expect.closeTo(0, 10), 0.5, 1, 1]);
    F.sum(F.add(y, F.tanh(x))).backward();
    for (const g of x.grad!.dataSync()) expect(Number.isFinite(g)).toBe(true);
  });
  it('erf matches reference values', () => {
    const ref: Array<[number, number]> = [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [2.5, 0.9995930479825550], [3, 0.9999779095030014], [-1.5, -0.9661051464753108]];
    for (const [x, v] of ref) {
      expect(Math.abs(erf64(x) - v)).toBeLessThan(1e-14);
      expect(Math.abs(erf32(x) - v)).toBeLessThan(2e-7);
    }
  });
});

describe('reductions', () => {
  const x = F.tensor(Float64Array.from({ length: 24 }, (_, i) => (i * 7) % 11), [2, 3, 4]);
  it('sum over each axis and over pairs of axes', () => {
    const d = x.dataSync();
    const at = (i: number, j: number, k: number): number => d[i * 12 + j * 4 + k];
    const s1 = F.sum(x, 1).dataSync();
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) expect(s1[i * 4 + k]).toBe(at(i, 0, k) + at(i, 1, k) + at(i, 2, k));
    const s02 = F.sum(x, [0, 2]).dataSync();
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) s += at(i, j, k);
      expect(s02[j]).toBe(s);
    }
    expect(F.sum(x).item()).toBe([...d].reduce((p, v) => p + v, 0));
    expect(F.sum(x, -1, { keepDims: true }).shape).toEqual([2, 3, 1]);
  });
  it('max and mean', () => {
    expect(F.max(x).item()).toBe(10);
    expect(F.mean(F.tensor([1, 2, 3, 6])).item()).toBe(3);
    expect([...F.max(F.tensor([1, 5, 3, 2, 0, 4], [2, 3]), 1).dataSync()]).toEqual([5, 4]);
  });
  it('splits the gradient of max between ties', () => {
    const t = F.tensor([3, 1, 3], [3], { requiresGrad: true });
    F.max(t).backward();
    expect([...t.grad!.dataSync()]).toEqual([0.5, 0, 0.5]);
  });
});

describe('softmax and losses', () => {
  it('softmax rows sum to one, even for huge logits', () => {
    const p = F.softmax(F.tensor([1000, 1001, 1002, -5, 0, 5], [2, 3])).dataSync();
    expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 6);
    expect(p[3] + p[4] + p[5]).toBeCloseTo(1, 6);
    expect(p[2]).toBeCloseTo(Math.exp(2) / (1 + Math.exp(1) + Math.exp(2)), 6);
  });
  it('crossEntropy equals −mean log p of the target class', () => {
    const logits = F.tensor(new Float64Array([1, 2, 3, 0, 0, 0]), [2, 3]);
    const ce = F.crossEntropy(logits, [2, 0]).item();
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(ce).toBeCloseTo(((lse - 3) + Math.log(3)) / 2, 12);
  });
  it('label smoothing matches torch: (1−ε)·nll + ε·mean(−log p)', () => {
    const logits = F.tensor(new Float64Array([1, 2, 3]), [1, 3]);
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const logp = [1 - lse, 2 - lse, 3 - lse];
    const eps = 0.2;
    const expected = (1 - eps) * -logp[0] + (eps * -(logp[0] + logp[1] + logp[2])) / 3;
    expect(F.crossEntropy(logits, [0], { labelSmoothing: eps }).item()).toBeCloseTo(expected, 12);
  });
  it('crossEntropy rejects a bad target naming it', () => {
    expect(() => F.crossEntropy(F.zeros([2, 3]), [0, 3])).toThrow(/target 3 at position 1/);
  });
  it('bceWithLogits equals the naive formula and survives huge logits', () => {
    const x = [-2, 0.5, 3];
    const y = [0, 1, 0.25];
    const naive = x.reduce((s, xi, i) => {
      const p = 1 / (1 + Math.exp(-xi));
      return s - (y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p));
    }, 0) / 3;
    expect(F.bceWithLogits(F.tensor(new Float64Array(x)), F.tensor(new Float64Array(y))).item()).toBeCloseTo(naive, 12);
    expect(Number.isFinite(F.bceWithLogits(F.tensor([1e4, -1e4]), F.tensor([0, 1])).item())).toBe(true);
  });
});

describe('layout', () => {
  it('permute, slice, concat, gather move the right values', () => {
    const x = F.tensor([0, 1, 2, 3, 4, 5], [2, 3]);
    expect([...F.transpose(x).dataSync()]).toEqual([0, 3, 1, 4, 2, 5]);
    expect([...F.slice(x, [0, 1], [2, 2]).dataSync()]).toEqual([1, 2, 4, 5]);
    expect([...F.concat([x, x], 1).dataSync()]).toEqual([0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
    expect([...F.gather(x, 1, [2, 0]).dataSync()]).toEqual([2, 0, 5, 3]);
    const p = F.permute(F.tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]), [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(p.dataSync()[1]).toBe(4); // p[0,0,1] = x[0,1,0]
  });
  it('gather rejects an out-of-range index naming it', () => {
    expect(() => F.gather(F.zeros([3]), 0, [0, 5])).toThrow(/index 5/);
  });
});

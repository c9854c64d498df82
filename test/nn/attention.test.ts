// Attention layers: float64 gradient checks (through forwardWith and float64 parameter copies),
// masking semantics, LayerNorm statistics, positional tables, PyTorch names and shapes.
import { describe, expect, it } from 'vitest';
import {
  LayerNorm,
  MultiHeadAttention,
  PositionalEmbedding,
  TransformerBlock,
  addPositions,
  sinusoidalPositions,
  type ParamMap,
} from '../../shared/nn/attention.js';
import type { Module } from '../../shared/nn/module.js';
import * as F from '../../shared/ops/index.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

/** Random float64 stand-ins for a module's parameters (random rather than the init, so zero biases and unit γ get exercised). */
function randomParams(m: Module, seed: number): Tensor[] {
  return m.namedParameters().map(([, p], i) => randInput(p.shape, seed + i, 0.5));
}

function asMap(m: Module, values: readonly Tensor[]): ParamMap {
  return new Map(m.namedParameters().map(([n], i): [string, Tensor] => [n, values[i]]));
}

function shapes(m: Module): string[] {
  return m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`);
}

function meanOf(a: ArrayLike<number>, f: (v: number) => number = (v) => v): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += f(a[i]);
  return s / a.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Values of row `t` (all features) of batch entry `b` in a [batch, seq, d] array. */
function row(data: ArrayLike<number>, seq: number, d: number, b: number, t: number): number[] {
  return Array.from({ length: d }, (_, c) => data[(b * seq + t) * d + c]);
}

describe('LayerNorm', () => {
  it('has torch.nn.LayerNorm names and init, and none without affine', () => {
    const ln = new LayerNorm(5);
    expect(shapes(ln)).toEqual(['weight:5', 'bias:5']);
    expect([...ln.weight!.dataSync()]).toEqual([1, 1, 1, 1, 1]);
    expect([...ln.bias!.dataSync()]).toEqual([0, 0, 0, 0, 0]);
    expect(new LayerNorm(5, { elementwiseAffine: false }).parameters()).toHaveLength(0);
  });
  it('gives each row mean 0 and biased variance 1, even with a large offset', () => {
    const ln = new LayerNorm(64, { eps: 0 });
    const x = F.randn([3, 4, 64], new Rng(1), { mean: 1000, std: 3 });
    const y = ln.forward(x).dataSync();
    for (let r = 0; r < 12; r++) {
      const v = y.subarray(r * 64, (r + 1) * 64);
      const mu = meanOf(v);
      const variance = meanOf(v, (a) => (a - mu) * (a - mu));
      expect(Math.abs(mu)).toBeLessThan(1e-4);
      expect(variance).toBeCloseTo(1, 3);
    }
  });
  it('maps a constant row to β (eps keeps it finite)', () => {
    const y = new LayerNorm(4).forward(F.full([2, 4], 3)).dataSync();
    expect([...y]).toEqual(new Array(8).fill(0));
  });
  it('gradient-checks in float64, including γ and β', () => {
    const ln = new LayerNorm(5, { dtype: 'float64' });
    gradcheck((x, w, b) => ln.forwardWith(new Map([['weight', w], ['bias', b]]), x), [randInput([2, 3, 5], 1), randInput([5], 3, 0.5, 1), randInput([5], 4)]);
    // The module's own float64 parameters, and no affine part.
    gradcheck((x, w) => ln.forward(F.mul(x, w)), [randInput([4, 5], 2, 2, 1), ln.weight!]);
    gradcheck((x) => new LayerNorm(5, { elementwiseAffine: false, dtype: 'float64' }).forward(x), [randInput([3, 5], 5)]);
  });
  it('rejects an input whose last dimension is not dim', () => {
    expect(() => new LayerNorm(4).forward(F.zeros([2, 3]))).toThrow(/LayerNorm\(4\): input \[2, 3\] must have last dimension 4/);
  });
});

describe('MultiHeadAttention', () => {
  it('names, shapes and initialises parameters like torch.nn.MultiheadAttention', () => {
    const d = 16;
    const mha = new MultiHeadAttention(d, 4, new Rng(1));
    expect(shapes(mha)).toEqual(['in_proj_weight:48x16', 'in_proj_bias:48', 'out_proj.weight:16x16', 'out_proj.bias:16']);
    expect(mha.inProjBias!.dataSync().every((v) => v === 0)).toBe(true);
    expect(mha.outProj.bias!.dataSync().every((v) => v === 0)).toBe(true);
    // xavier_uniform over [3d, d]: U(±√(6/(d + 3d))).
    const bound = Math.sqrt(6 / (4 * d));
    const w = mha.inProjWeight.dataSync();
    expect(Math.max(...w)).toBeLessThanOrEqual(bound);
    expect(Math.max(...w)).toBeGreaterThan(0.9 * bound);
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-bound);
    // out_proj keeps Linear's default U(±1/√d) weight.
    const o = mha.outProj.weight.dataSync();
    expect(Math.max(...o.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(d));
    expect(shapes(new MultiHeadAttention(d, 4, new Rng(1), { bias: false }))).toEqual(['in_proj_weight:48x16', 'out_proj.weight:16x16']);
  });
  it('rejects bad sizes, inputs and masks naming the values', () => {
    expect(() => new MultiHeadAttention(10, 3, new Rng(1))).toThrow(/dModel 10 is not divisible by numHeads 3/);
    expect(() => new MultiHeadAttention(8, 2, new Rng(1), { dropout: 1 })).toThrow(/dropout must be in \[0, 1\), got 1/);
    const mha = new MultiHeadAttention(8, 2, new Rng(1));
    expect(() => mha.forward(F.zeros([2, 3, 6]))).toThrow(/input must be \[batch, seq, 8\], got \[2, 3, 6\]/);
    expect(() => mha.attend(F.zeros([2, 3, 8]), { paddingMask: [true, false] })).toThrow(/paddingMask has 2 entries, input \[batch 2, seq 3\] needs 6/);
    expect(() => mha.attend(F.zeros([1, 2, 8]), { paddingMask: Int32Array.from([0, 2]) })).toThrow(/entry 1 is 2/);
  });

  it('matches a direct loop implementation of the torch formula (heads split from Q, K, V columns)', () => {
    const [b, t, d, heads] = [2, 3, 6, 2];
    const dh = d / heads;
    const m = new MultiHeadAttention(d, heads, new Rng(13));
    const ps = randomParams(m, 50);
    const x = randInput([b, t, d], 14);
    const pad = [0, 0, 1, 0, 0, 0];
    const y = m.forwardWith(asMap(m, ps), x, { causal: true, paddingMask: pad }).dataSync();
    const [wIn, bIn, wOut, bOut] = ps.map((p) => p.dataSync());
    const xs = x.dataSync();
    // qkv[n][s][r] = Σ_c x[n][s][c]·W_in[r][c] + b_in[r]; head h of Q / K / V uses rows part·d + h·dₕ + e.
    const proj = (n: number, s: number, r: number): number => {
      let acc = bIn[r];
      for (let c = 0; c < d; c++) acc += xs[(n * t + s) * d + c] * wIn[r * d + c];
      return acc;
    };
    for (let n = 0; n < b; n++) {
      for (let i = 0; i < t; i++) {
        const ctx = new Array<number>(d).fill(0);
        for (let h = 0; h < heads; h++) {
          const keys = [...Array(t).keys()].filter((j) => j <= i && !pad[n * t + j]);
          const logits = keys.map((j) => {
            let dot = 0;
            for (let e = 0; e < dh; e++) dot += proj(n, i, h * dh + e) * proj(n, j, d + h * dh + e);
            return dot / Math.sqrt(dh);
          });
          const top = Math.max(...logits);
          const w = logits.map((l) => Math.exp(l - top));
          const z = w.reduce((s2, v) => s2 + v, 0);
          keys.forEach((j, k) => {
            for (let e = 0; e < dh; e++) ctx[h * dh + e] += (w[k] / z) * proj(n, j, 2 * d + h * dh + e);
          });
        }
        for (let o = 0; o < d; o++) {
          let expected = bOut[o];
          for (let c = 0; c < d; c++) expected += ctx[c] * wOut[o * d + c];
          expect(y[(n * t + i) * d + o]).toBeCloseTo(expected, 12);
        }
      }
    }
  });

  const B = 2;
  const T = 3;
  const D = 4;
  const mha = new MultiHeadAttention(D, 2, new Rng(3));
  const check = (options: Parameters<MultiHeadAttention['attend']>[1]): void => {
    gradcheck((x, ...ps) => mha.forwardWith(asMap(mha, ps), x, options), [randInput([B, T, D], 1), ...randomParams(mha, 20)]);
  };
  it('gradient-checks in float64 without a mask', () => check({}));
  it('gradient-checks in float64 with a causal mask', () => check({ causal: true }));
  it('gradient-checks in float64 with a padding mask', () => check({ paddingMask: [false, false, true, true, false, false] }));
  it('gradient-checks in float64 with causal + left padding (fully masked rows included)', () => check({ causal: true, paddingMask: Int32Array.from([1, 1, 0, 0, 0, 1]) }));
  it('gradient-checks without biases', () => {
    const m = new MultiHeadAttention(D, 2, new Rng(4), { bias: false });
    gradcheck((x, ...ps) => m.forwardWith(asMap(m, ps), x, { causal: true }), [randInput([B, T, D], 2), ...randomParams(m, 30)]);
  });

  it('is causal: output at t does not change when tokens after t change', () => {
    const m = new MultiHeadAttention(8, 2, new Rng(5));
    const seq = 5;
    const x = F.randn([2, seq, 8], new Rng(6), { dtype: 'float64' });
    const params = new Map(m.namedParameters().map(([n, p]): [string, Tensor] => [n, F.tensor(Float64Array.from(p.dataSync()), p.shape)]));
    const before = m.forwardWith(params, x, { causal: true }).dataSync();
    const changed = Float64Array.from(x.dataSync());
    const t = 2;
    for (let b = 0; b < 2; b++) for (let s = t + 1; s < seq; s++) for (let c = 0; c < 8; c++) changed[(b * seq + s) * 8 + c] += 3;
    const after = m.forwardWith(params, F.tensor(changed, [2, seq, 8]), { causal: true }).dataSync();
    for (let b = 0; b < 2; b++) {
      for (let s = 0; s <= t; s++) expect(maxAbsDiff(row(before, seq, 8, b, s), row(after, seq, 8, b, s))).toBeLessThan(1e-12);
      // …while later positions do see the change.
      expect(maxAbsDiff(row(before, seq, 8, b, t + 1), row(after, seq, 8, b, t + 1))).toBeGreaterThan(1e-3);
    }
    // Without the mask, earlier positions see the future.
    const open = m.forwardWith(params, F.tensor(changed, [2, seq, 8])).dataSync();
    expect(maxAbsDiff(row(before, seq, 8, 0, 0), row(open, seq, 8, 0, 0))).toBeGreaterThan(1e-3);
  });

  it('gives padded keys exactly zero weight, rows summing to 1', () => {
    const m = new MultiHeadAttention(8, 4, new Rng(7));
    const seq = 4;
    const pad = [false, false, true, false, true, true, false, false];
    const w = m.attentionWeights(F.randn([2, seq, 8], new Rng(8)), { paddingMask: pad }).dataSync();
    expect(w.length).toBe(2 * 4 * seq * seq);
    for (let b = 0; b < 2; b++) {
      for (let h = 0; h < 4; h++) {
        for (let i = 0; i < seq; i++) {
          const base = ((b * 4 + h) * seq + i) * seq;
          let total = 0;
          for (let j = 0; j < seq; j++) {
            if (pad[b * seq + j]) expect(w[base + j]).toBe(0);
            else expect(w[base + j]).toBeGreaterThan(0);
            total += w[base + j];
          }
          expect(total).toBeCloseTo(1, 6);
        }
      }
    }
  });

  it('gives finite output (and zero weights) for fully masked rows', () => {
    const m = new MultiHeadAttention(8, 2, new Rng(9));
    const x = F.randn([2, 3, 8], new Rng(10), { requiresGrad: true });
    // Batch 0 is all padding; in batch 1 (left-padded, causal) query 0 has no key left.
    const options = { causal: true, paddingMask: [1, 1, 1, 1, 0, 0] };
    const y = m.attend(x, options);
    expect(y.dataSync().every(Number.isFinite)).toBe(true);
    F.sum(y).backward();
    expect(x.grad!.dataSync().every(Number.isFinite)).toBe(true);
    expect(m.inProjWeight.grad!.dataSync().every(Number.isFinite)).toBe(true);
    const w = m.attentionWeights(x, options).dataSync();
    expect(w.subarray(0, 2 * 9).every((v) => v === 0)).toBe(true); // batch 0, both heads
    expect(w.subarray(2 * 9, 2 * 9 + 3).every((v) => v === 0)).toBe(true); // batch 1, head 0, query 0
    // With nothing to attend to, the output is the output projection's bias (zeros at init).
    expect(y.dataSync().subarray(0, 3 * 8).every((v) => v === 0)).toBe(true);
  });

  it('drops attention probabilities only in training, from its own seeded stream', () => {
    const make = (): MultiHeadAttention => new MultiHeadAttention(8, 2, new Rng(11), { dropout: 0.5 });
    const x = F.randn([2, 4, 8], new Rng(12));
    const a = make();
    const b = make();
    const ya = a.forward(x).dataSync();
    expect([...b.forward(x).dataSync()]).toEqual([...ya]);
    expect(maxAbsDiff(a.forward(x).dataSync(), ya)).toBeGreaterThan(1e-4);
    a.eval();
    const e1 = a.forward(x).dataSync();
    expect([...a.forward(x).dataSync()]).toEqual([...e1]);
    const plain = new MultiHeadAttention(8, 2, new Rng(11));
    plain.loadStateDict(a.stateDict());
    expect(maxAbsDiff(plain.forward(x).dataSync(), e1)).toBeLessThan(1e-6);
  });
});

describe('TransformerBlock', () => {
  it('names its parameters ln1, attn, ln2, mlp.0, mlp.2', () => {
    expect(shapes(new TransformerBlock(8, 2, new Rng(1)))).toEqual([
      'ln1.weight:8',
      'ln1.bias:8',
      'attn.in_proj_weight:24x8',
      'attn.in_proj_bias:24',
      'attn.out_proj.weight:8x8',
      'attn.out_proj.bias:8',
      'ln2.weight:8',
      'ln2.bias:8',
      'mlp.0.weight:32x8',
      'mlp.0.bias:32',
      'mlp.2.weight:8x32',
      'mlp.2.bias:8',
    ]);
    expect(() => new TransformerBlock(6, 2, new Rng(1), { mlpRatio: 0.25 })).toThrow(/dModel 6 × mlpRatio 0.25 = 1.5 is not a positive integer/);
  });
  it('forward equals forwardWith over its own parameters', () => {
    const block = new TransformerBlock(8, 2, new Rng(2));
    const x = F.randn([2, 3, 8], new Rng(3));
    expect([...block.forward(x).dataSync()]).toEqual([...block.forwardWith(new Map(block.namedParameters()), x).dataSync()]);
  });
  it('gradient-checks in float64 (causal, and with padding)', () => {
    const block = new TransformerBlock(4, 2, new Rng(4));
    const ps = randomParams(block, 40);
    gradcheck((x, ...p) => block.forwardWith(asMap(block, p), x), [randInput([2, 3, 4], 5), ...ps]);
    gradcheck((x, ...p) => block.forwardWith(asMap(block, p), x, { paddingMask: [0, 0, 1, 0, 0, 0] }), [randInput([2, 3, 4], 6), ...ps], { check: [0] });
  });
  it('is causal by default', () => {
    const block = new TransformerBlock(8, 2, new Rng(5));
    const x = F.randn([1, 4, 8], new Rng(6));
    const changed = Float32Array.from(x.dataSync());
    for (let c = 0; c < 8; c++) changed[3 * 8 + c] += 5;
    const a = block.forward(x).dataSync();
    const b = block.forward(F.tensor(changed, [1, 4, 8])).dataSync();
    expect(maxAbsDiff(a.subarray(0, 3 * 8), b.subarray(0, 3 * 8))).toBe(0);
    expect(maxAbsDiff(a.subarray(3 * 8), b.subarray(3 * 8))).toBeGreaterThan(1e-3);
  });
});

describe('positional encodings', () => {
  it('learned: weight [maxLen, d] ~ N(0, 0.02²), added per position', () => {
    const pe = new PositionalEmbedding(512, 64, new Rng(1));
    expect(shapes(pe)).toEqual(['weight:512x64']);
    const w = pe.weight.dataSync();
    const variance = meanOf(w, (v) => v * v);
    expect(Math.sqrt(variance)).toBeCloseTo(0.02, 3);
    const y = pe.forward(F.zeros([2, 3, 64])).dataSync();
    expect([...y.subarray(3 * 64, 4 * 64)]).toEqual([...w.subarray(0, 64)]); // batch 1, position 0
    expect([...y.subarray(5 * 64, 6 * 64)]).toEqual([...w.subarray(2 * 64, 3 * 64)]); // batch 1, position 2
  });
  it('learned: gradient-checks in float64; unused rows get zero gradient', () => {
    const pe = new PositionalEmbedding(5, 3, new Rng(2), { dtype: 'float64' });
    expect(pe.weight.dtype).toBe('float64');
    gradcheck((x, w) => pe.forwardWith(new Map([['weight', w]]), F.mul(x, x)), [randInput([2, 4, 3], 3), randInput([5, 3], 4)]);
    const x = randInput([2, 4, 3], 5);
    F.sum(pe.forward(x)).backward();
    const g = pe.weight.grad!.dataSync();
    expect([...g.subarray(0, 12)]).toEqual(new Array(12).fill(2));
    expect([...g.subarray(12)]).toEqual([0, 0, 0]);
  });
  it('rejects sequences longer than maxLen, naming both', () => {
    const pe = new PositionalEmbedding(4, 2, new Rng(1));
    expect(() => pe.forward(F.zeros([1, 5, 2]))).toThrow(/sequence length 5 exceeds maxLen 4/);
    expect(() => addPositions(F.zeros([1, 9, 6]), sinusoidalPositions(8, 6))).toThrow(/sequence length 9 exceeds maxLen 8/);
    expect(() => pe.forward(F.zeros([1, 2, 3]))).toThrow(/input \[1, 2, 3\] must be \[\.\.\., seq, 2\]/);
  });
  it('sinusoidal: matches sin/cos(pos / 10000^(2i/d)) and has no gradient', () => {
    const pe = sinusoidalPositions(10, 4, { dtype: 'float64' });
    expect(pe.requiresGrad).toBe(false);
    const v = pe.dataSync();
    expect([...v.subarray(0, 4)]).toEqual([0, 1, 0, 1]);
    // pos 1: angles 1 and 1/10000^(2/4) = 0.01.
    expect(v[4]).toBeCloseTo(0.8414709848078965, 14);
    expect(v[5]).toBeCloseTo(0.5403023058681398, 14);
    expect(v[6]).toBeCloseTo(0.009999833334166664, 14);
    expect(v[7]).toBeCloseTo(0.9999500004166653, 14);
    // pos 7, pair i = 1: sin(0.07), cos(0.07).
    expect(v[7 * 4 + 2]).toBeCloseTo(Math.sin(0.07), 14);
    expect(v[7 * 4 + 3]).toBeCloseTo(Math.cos(0.07), 14);
    // An odd width ends with a sine column: d = 5, column 4 is sin(pos / 10000^(4/5)).
    const odd = sinusoidalPositions(3, 5).dataSync();
    expect(odd[2 * 5 + 4]).toBeCloseTo(Math.sin(2 / Math.pow(10000, 0.8)), 6);
    const y = addPositions(F.ones([2, 3, 4], { dtype: 'float64' }), pe).dataSync();
    expect(y[4 + 4 * 3]).toBeCloseTo(1 + 0.8414709848078965, 14); // batch 1, position 1, column 0
  });
});

// Embedding, RNN, LSTM and GRU: PyTorch names, layouts and init; forward values against the PyTorch
// formulas written out in plain JavaScript; float64 gradient checks through time (with a passed-in
// state, one and two layers); the state round trip that truncated back-propagation relies on.
import { describe, expect, it } from 'vitest';
import { Embedding, GRU, LSTM, RNN, detachState, type LSTMState, type RecurrentBase, type RNNState } from '../../shared/nn/recurrent.js';
import * as F from '../../shared/ops/index.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

type Mode = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';
const sig = (v: number): number => 1 / (1 + Math.exp(-v));

/** Row-major W [rows, cols] times v, plus b (or nothing). */
function affine(w: ArrayLike<number>, b: ArrayLike<number> | null, v: readonly number[], rows: number): number[] {
  const cols = v.length;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r] : 0;
    for (let j = 0; j < cols; j++) s += w[r * cols + j] * v[j];
    out.push(s);
  }
  return out;
}

/**
 * A direct transcription of torch.nn.RNN / LSTM / GRU (batch_first), one sample and one step at a
 * time. x [B][T][in], h0 and c0 [L][B][H]; returns the top layer's outputs and the final states.
 */
function reference(
  m: RecurrentBase<RNNState>,
  x: number[][][],
  h0: number[][][],
  c0: number[][][] | null,
): { out: number[][][]; h: number[][][]; c: number[][][] } {
  const H = m.hiddenSize;
  const G = m.mode === 'lstm' ? 4 : m.mode === 'gru' ? 3 : 1;
  let seqs = x.map((s) => s.map((v) => [...v]));
  const hN: number[][][] = [];
  const cN: number[][][] = [];
  m.layers.forEach((p, k) => {
    const wIh = p.weightIh.dataSync();
    const wHh = p.weightHh.dataSync();
    const bIh = p.biasIh ? p.biasIh.dataSync() : null;
    const bHh = p.biasHh ? p.biasHh.dataSync() : null;
    const hk: number[][] = [];
    const ck: number[][] = [];
    seqs = seqs.map((seq, b) => {
      let h = [...h0[k][b]];
      let c = c0 ? [...c0[k][b]] : [];
      const outs = seq.map((xt) => {
        const gi = affine(wIh, bIh, xt, G * H); // W_i· x + b_i·, gates stacked
        const gh = affine(wHh, bHh, h, G * H); // W_h· h + b_h·
        const at = (v: number[], gate: number, j: number): number => v[gate * H + j];
        if (m.mode === 'rnn_tanh') h = h.map((_, j) => Math.tanh(gi[j] + gh[j]));
        else if (m.mode === 'rnn_relu') h = h.map((_, j) => Math.max(0, gi[j] + gh[j]));
        else if (m.mode === 'lstm') {
          // i, f, g, o = σ, σ, tanh, σ of (W_i· x + b_i· + W_h· h + b_h·); c' = f c + i g; h' = o tanh(c')
          const cNext = c.map((cj, j) => {
            const i = sig(at(gi, 0, j) + at(gh, 0, j));
            const f = sig(at(gi, 1, j) + at(gh, 1, j));
            const g = Math.tanh(at(gi, 2, j) + at(gh, 2, j));
            return f * cj + i * g;
          });
          h = cNext.map((cj, j) => sig(at(gi, 3, j) + at(gh, 3, j)) * Math.tanh(cj));
          c = cNext;
        } else {
          // r, z = σ(W_i· x + b_i· + W_h· h + b_h·); n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 − z) n + z h
          h = h.map((hj, j) => {
            const r = sig(at(gi, 0, j) + at(gh, 0, j));
            const z = sig(at(gi, 1, j) + at(gh, 1, j));
            const n = Math.tanh(at(gi, 2, j) + r * at(gh, 2, j));
            return (1 - z) * n + z * hj;
          });
        }
        return h;
      });
      hk.push(h);
      ck.push(c);
      return outs;
    });
    hN.push(hk);
    cN.push(ck);
  });
  return { out: seqs, h: hN, c: cN };
}

/** A nested array of a tensor's values, for the reference. */
function nest3(t: Tensor): number[][][] {
  const [a, b, c] = t.shape;
  const d = t.dataSync();
  return Array.from({ length: a }, (_, i) => Array.from({ length: b }, (_, j) => Array.from({ length: c }, (_, k) => d[(i * b + j) * c + k])));
}

function expectNear(got: ArrayLike<number>, want: readonly number[], tol = 1e-12): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol)) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

function make(mode: Mode, inputSize: number, hidden: number, seed: number, opts: { numLayers?: number; bias?: boolean } = {}): RecurrentBase<RNNState> {
  const o = { ...opts, dtype: 'float64' as const };
  const rng = new Rng(seed);
  if (mode === 'lstm') return new LSTM(inputSize, hidden, rng, o);
  if (mode === 'gru') return new GRU(inputSize, hidden, rng, o);
  return new RNN(inputSize, hidden, rng, { ...o, nonlinearity: mode === 'rnn_relu' ? 'relu' : 'tanh' });
}

/** Output, final h (and c) flattened into one vector, so that a gradient check sees all of them. */
function everything(m: RecurrentBase<RNNState>, x: Tensor, state?: RNNState | LSTMState): Tensor {
  const { output, state: s } = m.run(x, state);
  const parts = [output, s.h, ...('c' in s ? [(s as LSTMState).c] : [])];
  return F.concat(parts.map((t) => F.reshape(t, [-1])), 0);
}

describe('parameter names, layouts and initialisation', () => {
  it('registers weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} in PyTorch order and shapes', () => {
    const shapes = (m: RecurrentBase<RNNState>): string[] => m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`);
    const layerNames = (g: number, inF: number, h: number, k: number): string[] => [
      `weight_ih_l${k}:${g * h}x${inF}`,
      `weight_hh_l${k}:${g * h}x${h}`,
      `bias_ih_l${k}:${g * h}`,
      `bias_hh_l${k}:${g * h}`,
    ];
    const rng = new Rng(1);
    expect(shapes(new LSTM(3, 5, rng, { numLayers: 2 }))).toEqual([...layerNames(4, 3, 5, 0), ...layerNames(4, 5, 5, 1)]);
    expect(shapes(new GRU(3, 5, rng, { numLayers: 2 }))).toEqual([...layerNames(3, 3, 5, 0), ...layerNames(3, 5, 5, 1)]);
    expect(shapes(new RNN(3, 5, rng))).toEqual(layerNames(1, 3, 5, 0));
    expect(shapes(new LSTM(3, 5, rng, { bias: false }))).toEqual(['weight_ih_l0:20x3', 'weight_hh_l0:20x5']);
    expect(new LSTM(3, 5, rng).parameterCount()).toBe(4 * (5 * 3 + 5 * 5 + 5 + 5));
  });
  it('initialises every parameter U(±1/√hidden), seeded and reproducible', () => {
    const a = new LSTM(10, 64, new Rng(3), { numLayers: 2 });
    const b = new LSTM(10, 64, new Rng(3), { numLayers: 2 });
    const bound = 1 / Math.sqrt(64);
    for (const [[name, p], [, q]] of a.namedParameters().map((e, i) => [e, b.namedParameters()[i]] as const)) {
      expect([...p.dataSync()], name).toEqual([...q.dataSync()]);
      expect(p.dtype).toBe('float32');
      for (const v of p.dataSync()) expect(Math.abs(v)).toBeLessThanOrEqual(bound);
    }
    // The variance of U(±b) is b²/3.
    const w = [...a.namedParameters()[1][1].dataSync()];
    expect(w.reduce((s, v) => s + v * v, 0) / w.length).toBeCloseTo((bound * bound) / 3, 4);
  });
  it('float64 parameters hold the same (float32-drawn) values', () => {
    const a = new GRU(3, 4, new Rng(5));
    const b = new GRU(3, 4, new Rng(5), { dtype: 'float64' });
    expect(b.parameters()[0].dtype).toBe('float64');
    expect([...b.parameters()[0].dataSync()]).toEqual([...a.parameters()[0].dataSync()]);
  });
  it('rejects bad sizes, naming them', () => {
    expect(() => new LSTM(0, 4, new Rng(1))).toThrow(/LSTM: inputSize must be a positive integer, got 0/);
    expect(() => new GRU(3, 4, new Rng(1), { numLayers: 1.5 })).toThrow(/GRU: numLayers .* got 1\.5/);
    expect(() => new RNN(3, 4, new Rng(1), { nonlinearity: 'sigmoid' as 'tanh' })).toThrow(/nonlinearity .* 'sigmoid'/);
  });
});

describe('forward values follow the PyTorch formulas', () => {
  // One step, one sample, one hidden unit, with every parameter set by hand.
  function scalarCase<M extends RecurrentBase<RNNState>>(m: M, values: Record<string, number[]>): M {
    m.loadStateDict(new Map(Object.entries(values).map(([k, v]) => [k, { shape: [v.length, ...(k.startsWith('weight') ? [1] : [])], value: v }])));
    return m;
  }
  const x = 0.7;
  const h = -0.4;
  const run1 = (m: RecurrentBase<RNNState>, state: RNNState | LSTMState): { out: number; h: number; c?: number } => {
    const { output, state: s } = m.run(F.tensor(Float64Array.of(x), [1, 1, 1]), state);
    return { out: output.item(), h: s.h.item(), c: 'c' in s ? (s as LSTMState).c.item() : undefined };
  };
  const t = (v: number): Tensor => F.tensor(Float64Array.of(v), [1, 1, 1]);

  it('RNN: h′ = tanh(W_ih x + b_ih + W_hh h + b_hh)', () => {
    const m = scalarCase(new RNN(1, 1, new Rng(1), { dtype: 'float64' }), { weight_ih_l0: [0.5], weight_hh_l0: [-1.2], bias_ih_l0: [0.1], bias_hh_l0: [0.3] });
    const want = Math.tanh(0.5 * x + 0.1 + -1.2 * h + 0.3);
    const got = run1(m, { h: t(h) });
    expect(got.out).toBeCloseTo(want, 14);
    expect(got.h).toBeCloseTo(want, 14);
  });
  it('LSTM: gates i, f, g, o; c′ = f c + i g; h′ = o tanh(c′)', () => {
    const wi = [0.2, -0.5, 0.9, 1.1]; // W_ii, W_if, W_ig, W_io
    const wh = [0.3, 0.8, -0.6, 0.4]; // W_hi, W_hf, W_hg, W_ho
    const bi = [0.05, 0.1, -0.2, 0.0];
    const bh = [-0.1, 0.6, 0.15, 0.25];
    const c = 1.3;
    const m = scalarCase(new LSTM(1, 1, new Rng(1), { dtype: 'float64' }), { weight_ih_l0: wi, weight_hh_l0: wh, bias_ih_l0: bi, bias_hh_l0: bh });
    const pre = (k: number): number => wi[k] * x + bi[k] + wh[k] * h + bh[k];
    const i = sig(pre(0));
    const f = sig(pre(1));
    const g = Math.tanh(pre(2));
    const o = sig(pre(3));
    const c1 = f * c + i * g;
    const h1 = o * Math.tanh(c1);
    const got = run1(m, { h: t(h), c: t(c) });
    expect(got.out).toBeCloseTo(h1, 14);
    expect(got.h).toBeCloseTo(h1, 14);
    expect(got.c).toBeCloseTo(c1, 14);
  });
  it('GRU: gates r, z, n; n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h′ = (1 − z) n + z h', () => {
    const wi = [0.2, -0.5, 0.9]; // W_ir, W_iz, W_in
    const wh = [0.3, 0.8, -0.6]; // W_hr, W_hz, W_hn
    const bi = [0.05, 0.1, -0.2];
    const bh = [-0.1, 0.6, 0.15];
    const m = scalarCase(new GRU(1, 1, new Rng(1), { dtype: 'float64' }), { weight_ih_l0: wi, weight_hh_l0: wh, bias_ih_l0: bi, bias_hh_l0: bh });
    const r = sig(wi[0] * x + bi[0] + wh[0] * h + bh[0]);
    const z = sig(wi[1] * x + bi[1] + wh[1] * h + bh[1]);
    const n = Math.tanh(wi[2] * x + bi[2] + r * (wh[2] * h + bh[2]));
    const h1 = (1 - z) * n + z * h;
    const got = run1(m, { h: t(h) });
    expect(got.out).toBeCloseTo(h1, 14);
    expect(got.h).toBeCloseTo(h1, 14);
  });

  const cases: Array<[Mode, number, boolean]> = [
    ['rnn_tanh', 2, true],
    ['rnn_relu', 1, true],
    ['lstm', 2, true],
    ['lstm', 1, false],
    ['gru', 2, true],
    ['gru', 1, false],
  ];
  for (const [mode, numLayers, bias] of cases) {
    it(`${mode}, ${numLayers} layer(s)${bias ? '' : ', no bias'}: whole sequences with a given state match the transcription`, () => {
      const m = make(mode, 3, 4, 11, { numLayers, bias });
      const x = randInput([2, 5, 3], 1);
      const h0 = randInput([numLayers, 2, 4], 2, 0.5);
      const c0 = randInput([numLayers, 2, 4], 3, 0.5);
      const state = mode === 'lstm' ? { h: h0, c: c0 } : { h: h0 };
      const { output, state: s } = m.run(x, state);
      expect(output.shape).toEqual([2, 5, 4]);
      expect(s.h.shape).toEqual([numLayers, 2, 4]);
      const ref = reference(m, nest3(x), nest3(h0), mode === 'lstm' ? nest3(c0) : null);
      expectNear(output.dataSync(), ref.out.flat(2));
      expectNear(s.h.dataSync(), ref.h.flat(2));
      if (mode === 'lstm') expectNear((s as LSTMState).c.dataSync(), ref.c.flat(2));
    });
  }
  it('forward() starts from zeros and returns run().output', () => {
    const m = make('lstm', 3, 4, 4, { numLayers: 2 });
    const x = randInput([2, 3, 3], 5);
    const zero = F.zeros([2, 2, 4], { dtype: 'float64' });
    const state: LSTMState = { h: zero, c: zero };
    expectNear(m.forward(x).dataSync(), [...m.run(x, state).output.dataSync()], 0);
  });
});

describe('gradient checks through time (float64)', () => {
  for (const mode of ['rnn_tanh', 'lstm', 'gru'] as const) {
    for (const numLayers of [1, 2]) {
      it(`${mode}, ${numLayers} layer(s), with a passed-in initial state`, () => {
        const m = make(mode, 3, 2, 21 + numLayers, { numLayers });
        const steps = numLayers === 1 ? 5 : 3; // 5: the halving split of the steps is uneven
        const x = randInput([2, steps, 3], 6);
        const h0 = randInput([numLayers, 2, 2], 7, 0.5);
        const c0 = randInput([numLayers, 2, 2], 8, 0.5);
        if (mode === 'lstm') gradcheck((xi, hi, ci) => everything(m, xi, { h: hi, c: ci }), [x, h0, c0, ...m.parameters()]);
        else gradcheck((xi, hi) => everything(m, xi, { h: hi }), [x, h0, ...m.parameters()]);
      });
    }
  }
  it('gru without bias, from the zero state', () => {
    const m = make('gru', 2, 3, 9, { bias: false });
    gradcheck((xi) => everything(m, xi), [randInput([2, 3, 2], 10), ...m.parameters()]);
  });
});

describe('truncated back-propagation through time', () => {
  for (const mode of ['lstm', 'gru'] as const) {
    it(`${mode}: two chunks fed state-to-state reproduce the whole sequence; detaching stops backward at the boundary`, () => {
      const m = make(mode, 3, 4, 31, { numLayers: 2 });
      const x = randInput([2, 6, 3], 12);
      const whole = m.run(x);
      const x1 = F.tensor(Float64Array.from(F.narrow(x, 1, 0, 4).dataSync()), [2, 4, 3], { requiresGrad: true });
      const x2 = F.tensor(Float64Array.from(F.narrow(x, 1, 4, 2).dataSync()), [2, 2, 3], { requiresGrad: true });
      const first = m.run(x1);
      const carried = mode === 'lstm' ? detachState(first.state as LSTMState) : detachState(first.state);
      expect(carried.h.requiresGrad).toBe(false);
      expect(carried.h.isLeaf).toBe(true);
      const second = m.run(x2, carried);
      expectNear(F.concat([first.output, second.output], 1).dataSync(), [...whole.output.dataSync()]);
      expectNear(second.state.h.dataSync(), [...whole.state.h.dataSync()]);
      if (mode === 'lstm') expectNear((second.state as LSTMState).c.dataSync(), [...(whole.state as LSTMState).c.dataSync()]);

      m.zeroGrad();
      F.sum(second.output).backward();
      expect(x2.grad).not.toBeNull();
      expect(x1.grad).toBeNull();
      for (const [name, p] of m.namedParameters()) expect(p.grad, name).not.toBeNull();
    });
  }
  it('without detaching, backward reaches the earlier chunk', () => {
    const m = make('rnn_tanh', 2, 3, 41);
    const x1 = randInput([1, 3, 2], 13);
    const x2 = randInput([1, 3, 2], 14);
    const second = m.run(x2, m.run(x1).state);
    F.sum(second.output).backward();
    expect(x1.grad).not.toBeNull();
  });
  it('runs a long sequence forward and backward (float32)', () => {
    const m = new LSTM(4, 8, new Rng(2));
    const x = F.randn([2, 300, 4], new Rng(3));
    x.requiresGrad = true;
    const { output } = m.run(x);
    F.mean(output).backward();
    expect(x.grad!.shape).toEqual([2, 300, 4]);
    expect([...x.grad!.dataSync()].every(Number.isFinite)).toBe(true);
    // The first step still receives gradient through 299 recurrent steps (small but not zero).
    expect(Math.abs(x.grad!.dataSync()[0])).toBeGreaterThan(0);
  });
});

describe('recurrent input checks', () => {
  it('names bad input and state shapes, missing c and dtype mismatches', () => {
    const m = new LSTM(3, 4, new Rng(1), { numLayers: 2 });
    expect(() => m.forward(F.zeros([2, 5, 4]))).toThrow(/LSTM: input must be \[batch, seq, 3\] \(batch-first\), got \[2, 5, 4\]/);
    expect(() => m.forward(F.zeros([5, 3]))).toThrow(/got \[5, 3\]/);
    expect(() => m.run(F.zeros([2, 5, 3]), { h: F.zeros([1, 2, 4]), c: F.zeros([2, 2, 4]) })).toThrow(/state h must be \[numLayers, batch, hidden\] = \[2, 2, 4\], got \[1, 2, 4\]/);
    expect(() => m.run(F.zeros([2, 5, 3]), { h: F.zeros([2, 2, 4]) } as LSTMState)).toThrow(/LSTM: the state needs both h and c/);
    expect(() => m.forward(F.zeros([2, 5, 3], { dtype: 'float64' }))).toThrow(/input is float64 but the parameters are float32/);
    expect(() => m.forward(F.zeros([2, 0, 3]))).toThrow(/empty batch or sequence/);
  });
});

describe('Embedding', () => {
  it('stores weight [num, dim] drawn N(0, 1), named like torch.nn.Embedding', () => {
    const e = new Embedding(500, 40, new Rng(1));
    expect(e.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual(['weight:500x40']);
    const w = [...e.weight.dataSync()];
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const variance = w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(variance).toBeCloseTo(1, 1);
  });
  it('looks rows up into [...shape, dim], from Int32Array indices or a float tensor of ids', () => {
    const e = new Embedding(5, 3, new Rng(2));
    const w = e.weight.dataSync();
    const ids = Int32Array.of(4, 0, 2, 4, 1, 3);
    const y = e.lookup(ids, [2, 3]);
    expect(y.shape).toEqual([2, 3, 3]);
    expect([...y.dataSync()]).toEqual([...ids].flatMap((i) => [...w.subarray(3 * i, 3 * i + 3)]));
    const z = e.forward(F.tensor([4, 0, 2, 4, 1, 3], [2, 3]));
    expect([...z.dataSync()]).toEqual([...y.dataSync()]);
  });
  it('scatter-adds the gradient of repeated ids', () => {
    const e = new Embedding(4, 2, new Rng(3));
    F.sum(e.lookup(Int32Array.of(1, 3, 1, 1), [4])).backward();
    expect([...e.weight.grad!.dataSync()]).toEqual([0, 0, 3, 3, 0, 0, 1, 1]);
    const e64 = new Embedding(4, 3, new Rng(4), { dtype: 'float64' });
    gradcheck((w) => F.tanh(F.gather(w, 0, [2, 0, 2, 3])), [e64.weight]);
    gradcheck(() => F.tanh(e64.lookup(Int32Array.of(2, 0, 2, 3, 3, 1), [3, 2])), [e64.weight]);
  });
  it('rejects out-of-range, negative and fractional ids and a shape mismatch, naming them', () => {
    const e = new Embedding(5, 3, new Rng(2));
    expect(() => e.lookup(Int32Array.of(0, 5), [2])).toThrow(/Embedding: index 5 at position 1 is out of range \[0, 5\)/);
    expect(() => e.lookup(Int32Array.of(-1), [1])).toThrow(/index -1 at position 0/);
    expect(() => e.forward(F.tensor([1, 2.5], [2]))).toThrow(/index 2\.5 at position 1 of input \[2\] is not an integer/);
    expect(() => e.forward(F.tensor([7], [1]))).toThrow(/index 7 .* out of range/);
    expect(() => e.lookup(Int32Array.of(1, 2, 3), [2, 2])).toThrow(/3 indices do not fill shape \[2, 2\]/);
  });
});

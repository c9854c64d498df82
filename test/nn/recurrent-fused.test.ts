// The fused recurrent layer (shared/ops/recurrent.ts) and its cell kernels
// (shared/backend/fused-recurrent.ts): float64 finite-difference checks of the layer op for LSTM,
// GRU and RNN (odd sizes, two stacked layers, with and without bias, initial states that require
// grad, `needed` flags); LSTM / GRU / RNN modules against the composed per-step formulas they
// replaced (kept below as the reference), forward and every gradient; the wasm backend's cell
// kernels and the whole layer on wasm against the CPU reference kernels (float32).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, DeviceBuffer } from '../../shared/backend/backend.js';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import type { RnnActivation } from '../../shared/backend/fused-recurrent.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import { GRU, LSTM, RNN, type LSTMState, type RecurrentBase, type RNNState } from '../../shared/nn/recurrent.js';
import * as F from '../../shared/ops/index.js';
import { recurrentLayer, type RecurrentCellMode } from '../../shared/ops/recurrent.js';
import type { DType } from '../../shared/tensor/dtype.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

const GATES: Record<RecurrentCellMode, number> = { rnn_tanh: 1, rnn_relu: 1, lstm: 4, gru: 3 };

// ---- the composed per-step implementation the fused layer replaced (reference) -------------------

/** The old LSTM step: c' = f c + i g, h' = o tanh(c'), gates i, f, g, o from gi + gh. */
function lstmStep(gi: Tensor, gh: Tensor, c: Tensor, H: number): [Tensor, Tensor] {
  const gates = F.add(gi, gh);
  const i = F.sigmoid(F.narrow(gates, 1, 0, H));
  const f = F.sigmoid(F.narrow(gates, 1, H, H));
  const g = F.tanh(F.narrow(gates, 1, 2 * H, H));
  const o = F.sigmoid(F.narrow(gates, 1, 3 * H, H));
  const cNext = F.add(F.mul(f, c), F.mul(i, g));
  return [F.mul(o, F.tanh(cNext)), cNext];
}

/** The old GRU step: r, z, n with b_hn inside the reset product; h' = n + z (h − n). */
function gruStep(gi: Tensor, gh: Tensor, h: Tensor, H: number): Tensor {
  const r = F.sigmoid(F.add(F.narrow(gi, 1, 0, H), F.narrow(gh, 1, 0, H)));
  const z = F.sigmoid(F.add(F.narrow(gi, 1, H, H), F.narrow(gh, 1, H, H)));
  const n = F.tanh(F.add(F.narrow(gi, 1, 2 * H, H), F.mul(r, F.narrow(gh, 1, 2 * H, H))));
  return F.add(n, F.mul(z, F.sub(h, n)));
}

/** The old RecurrentBase.run, step by step from recorded ops (state required). */
function composedRun(m: RecurrentBase<RNNState>, x: Tensor, h0: Tensor, c0: Tensor | null): { output: Tensor; h: Tensor; c: Tensor | null } {
  const H = m.hiddenSize;
  const [B, T] = x.shape;
  const L = m.numLayers;
  let seq = F.reshape(F.permute(x, [1, 0, 2]), [T * B, m.inputSize]);
  let hs: Tensor[] = [];
  const hN: Tensor[] = [];
  const cN: Tensor[] = [];
  for (let k = 0; k < L; k++) {
    const p = m.layers[k];
    const proj = F.linear(seq, p.weightIh, p.biasIh);
    let h = F.reshape(F.narrow(h0, 0, k, 1), [B, H]);
    let c = c0 ? F.reshape(F.narrow(c0, 0, k, 1), [B, H]) : null;
    hs = [];
    for (let t = 0; t < T; t++) {
      const gi = F.narrow(proj, 0, t * B, B);
      const gh = F.linear(h, p.weightHh, p.biasHh);
      if (m.mode === 'lstm') [h, c] = lstmStep(gi, gh, c!, H);
      else if (m.mode === 'gru') h = gruStep(gi, gh, h, H);
      else h = m.mode === 'rnn_relu' ? F.relu(F.add(gi, gh)) : F.tanh(F.add(gi, gh));
      hs.push(h);
    }
    hN.push(h);
    if (c) cN.push(c);
    seq = F.concat(hs, 0);
  }
  const output = F.concat(hs.map((ht) => F.unsqueeze(ht, 1)), 1);
  const stack = (ts: Tensor[]): Tensor => F.concat(ts.map((t) => F.unsqueeze(t, 0)), 0);
  return { output, h: stack(hN), c: cN.length > 0 ? stack(cN) : null };
}

// ---- helpers -------------------------------------------------------------------------------------

function makeModule(mode: RecurrentCellMode, inputSize: number, hidden: number, seed: number, numLayers: number, bias: boolean, dtype: DType): RecurrentBase<RNNState> {
  const o = { numLayers, bias, dtype };
  const rng = new Rng(seed);
  if (mode === 'lstm') return new LSTM(inputSize, hidden, rng, o);
  if (mode === 'gru') return new GRU(inputSize, hidden, rng, o);
  return new RNN(inputSize, hidden, rng, { ...o, nonlinearity: mode === 'rnn_relu' ? 'relu' : 'tanh' });
}

function randTensor(shape: readonly number[], rng: Rng, dtype: DType, scale = 1, requiresGrad = false): Tensor {
  const t = F.randn(shape, rng, { dtype, std: scale });
  t.requiresGrad = requiresGrad;
  return t;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  return maxAbsDiff(actual, expected) / Math.max(scale, 1e-30);
}

// ---- gradient checks of the layer op -------------------------------------------------------------

interface OpLayer {
  readonly wIh: Tensor;
  readonly wHh: Tensor;
  readonly bIh: Tensor | null;
  readonly bHh: Tensor | null;
}

/**
 * Two (or more) stacked layers from the op directly. x is [T·B, in] time-major; h0s / c0s one
 * [B, H] state per layer. `keep` picks what the result is made of: the top output, the final
 * states, or everything (all flattened into one vector).
 */
function stackedOp(mode: RecurrentCellMode, x: Tensor, layers: readonly OpLayer[], h0s: readonly Tensor[], c0s: readonly Tensor[] | null, keep: 'all' | 'output' | 'states'): Tensor {
  let seq = x;
  const parts: Tensor[] = [];
  layers.forEach((p, k) => {
    const r = recurrentLayer(mode, F.linear(seq, p.wIh, p.bIh), p.wHh, p.bHh, h0s[k], c0s ? c0s[k] : null);
    seq = r.output;
    if (keep !== 'output') parts.push(r.hT, ...(r.cT ? [r.cT] : []));
  });
  if (keep !== 'states') parts.push(seq);
  return F.concat(parts.map((t) => F.reshape(t, [-1])), 0);
}

function opCase(mode: RecurrentCellMode, bias: boolean, seed: number, sizes = { B: 3, T: 4, H: 5, I: 7, L: 2 }) {
  const { B, T, H, I, L } = sizes;
  const G = GATES[mode];
  let s = seed;
  const x = randInput([T * B, I], s++);
  const h0s = Array.from({ length: L }, () => randInput([B, H], s++, 0.5));
  const c0s = mode === 'lstm' ? Array.from({ length: L }, () => randInput([B, H], s++, 0.5)) : null;
  const layers: OpLayer[] = Array.from({ length: L }, (_, k) => ({
    wIh: randInput([G * H, k === 0 ? I : H], s++, 0.4),
    wHh: randInput([G * H, H], s++, 0.4),
    bIh: bias ? randInput([G * H], s++, 0.3) : null,
    bHh: bias ? randInput([G * H], s++, 0.3) : null,
  }));
  const weights = layers.flatMap((p) => [p.wIh, p.wHh, ...(p.bIh ? [p.bIh] : []), ...(p.bHh ? [p.bHh] : [])]);
  const inputs = [x, ...h0s, ...(c0s ?? []), ...weights];
  /** Rebuilds the stack from gradcheck's argument list (the same tensors, in `inputs` order). */
  const unpack = (args: Tensor[]): { x: Tensor; h0s: Tensor[]; c0s: Tensor[] | null; layers: OpLayer[] } => {
    let i = 0;
    const xx = args[i++];
    const hh = h0s.map(() => args[i++]);
    const cc = c0s ? c0s.map(() => args[i++]) : null;
    const ll = layers.map((p) => ({ wIh: args[i++], wHh: args[i++], bIh: p.bIh ? args[i++] : null, bHh: p.bHh ? args[i++] : null }));
    return { x: xx, h0s: hh, c0s: cc, layers: ll };
  };
  const fn =
    (keep: 'all' | 'output' | 'states') =>
    (...args: Tensor[]): Tensor => {
      const u = unpack(args);
      return stackedOp(mode, u.x, u.layers, u.h0s, u.c0s, keep);
    };
  return { inputs, fn, x, h0s, c0s, layers };
}

describe('recurrentLayer: float64 gradient checks (B=3, T=4, H=5, input 7, two layers)', () => {
  for (const mode of ['lstm', 'gru', 'rnn_tanh'] as const) {
    for (const bias of [true, false]) {
      it(`${mode}${bias ? '' : ', no bias'}: input, initial states and every weight`, () => {
        const c = opCase(mode, bias, 100 + (bias ? 0 : 50) + GATES[mode]);
        gradcheck(c.fn('all'), c.inputs);
      });
    }
  }
  for (const mode of ['lstm', 'gru'] as const) {
    it(`${mode}: gradients that reach only the output, or only the final states`, () => {
      const c = opCase(mode, true, 300 + GATES[mode], { B: 2, T: 3, H: 3, I: 4, L: 2 });
      gradcheck(c.fn('output'), c.inputs);
      gradcheck(c.fn('states'), c.inputs);
    });
    it(`${mode}: one step, one layer`, () => {
      const c = opCase(mode, true, 400 + GATES[mode], { B: 3, T: 1, H: 4, I: 2, L: 1 });
      gradcheck(c.fn('all'), c.inputs);
    });
  }
  it('rnn_relu, one layer (values kept away from the kink)', () => {
    const c = opCase('rnn_relu', true, 500, { B: 3, T: 4, H: 5, I: 7, L: 1 });
    gradcheck(c.fn('all'), c.inputs);
  });
  for (const mode of ['lstm', 'gru'] as const) {
    it(`${mode}: respects needed flags (h0 and W_hh frozen; c0 alone requiring grad)`, () => {
      const c = opCase(mode, true, 600 + GATES[mode], { B: 3, T: 3, H: 4, I: 5, L: 1 });
      c.h0s[0].requiresGrad = false;
      c.layers[0].wHh.requiresGrad = false;
      const frozen = new Set<Tensor>([c.h0s[0], c.layers[0].wHh]);
      const check = c.inputs.map((_, i) => i).filter((i) => !frozen.has(c.inputs[i]));
      gradcheck(c.fn('all'), c.inputs, { check });
      expect(c.h0s[0].grad).toBeNull();
      expect(c.layers[0].wHh.grad).toBeNull();
      if (c.c0s) expect(c.c0s[0].grad).not.toBeNull();
      // Nothing but the initial state requires grad: the state's gradient alone.
      for (const t of c.inputs) {
        t.requiresGrad = false;
        t.grad = null;
      }
      const s0 = mode === 'lstm' ? c.c0s![0] : c.h0s[0];
      s0.requiresGrad = true;
      gradcheck(c.fn('all'), c.inputs, { check: [c.inputs.indexOf(s0)] });
    });
  }
  it('rejects inconsistent shapes and states, naming them', () => {
    const f64 = { dtype: 'float64' as const };
    const w = F.zeros([8, 2], f64);
    const h0 = F.zeros([3, 2], f64);
    expect(() => recurrentLayer('lstm', F.zeros([6, 8], f64), w, null, h0, null)).toThrow(/lstm needs c0/);
    expect(() => recurrentLayer('gru', F.zeros([6, 8], f64), w, null, h0, null)).toThrow(/weightHh must be \[6, 2\], got \[8, 2\]/);
    expect(() => recurrentLayer('lstm', F.zeros([7, 8], f64), w, null, h0, h0)).toThrow(/inputProj must be \[steps·3, 8\]/);
    expect(() => recurrentLayer('lstm', F.zeros([6, 8], f64), w, F.zeros([4], f64), h0, h0)).toThrow(/biasHh must be \[8\]/);
    expect(() => recurrentLayer('rnn_tanh', F.zeros([6, 2], f64), F.zeros([2, 2], f64), null, h0, h0)).toThrow(/no cell state/);
    expect(() => recurrentLayer('lstm', F.zeros([6, 8]), w, null, h0, h0)).toThrow(/mixed dtypes/);
  });
});

// ---- the modules against the composed formulas ---------------------------------------------------

describe('LSTM / GRU / RNN modules equal the composed per-step implementation', () => {
  const B = 3;
  const T = 4;
  const H = 5;
  const I = 7;
  interface Run {
    readonly values: Float64Array[];
    readonly grads: Float64Array[];
  }
  /** Forward values and every gradient (x, h0, c0, parameters) of a fixed random contraction. */
  function measure(m: RecurrentBase<RNNState>, dtype: DType, fused: boolean, seed: number): Run {
    const rng = new Rng(seed);
    const L = m.numLayers;
    const x = randTensor([B, T, I], rng, dtype, 1, true);
    const h0 = randTensor([L, B, H], rng, dtype, 0.5, true);
    const c0 = m.mode === 'lstm' ? randTensor([L, B, H], rng, dtype, 0.5, true) : null;
    let output: Tensor;
    let h: Tensor;
    let c: Tensor | null;
    if (fused) {
      const r = m.run(x, (c0 ? { h: h0, c: c0 } : { h: h0 }) as RNNState);
      output = r.output;
      h = r.state.h;
      c = c0 ? (r.state as LSTMState).c : null;
    } else ({ output, h, c } = composedRun(m, x, h0, c0));
    const outs = [output, h, ...(c ? [c] : [])];
    const loss = outs.map((t) => F.sum(F.mul(t, randTensor(t.shape, rng, dtype)))).reduce((a, b) => F.add(a, b));
    m.zeroGrad();
    loss.backward();
    const grads = [x, h0, ...(c0 ? [c0] : []), ...m.parameters()].map((t) => Float64Array.from(t.grad!.dataSync()));
    return { values: outs.map((t) => Float64Array.from(t.dataSync())), grads };
  }
  const cases: Array<[RecurrentCellMode, number, boolean]> = [
    ['lstm', 2, true],
    ['lstm', 1, false],
    ['gru', 2, true],
    ['gru', 1, false],
    ['rnn_tanh', 2, true],
    ['rnn_relu', 2, false],
  ];
  for (const [mode, L, bias] of cases) {
    it(`${mode}, ${L} layer(s)${bias ? '' : ', no bias'}: float64 outputs and gradients to 1e-12`, () => {
      const m = makeModule(mode, I, H, 7 + L, L, bias, 'float64');
      const want = measure(m, 'float64', false, 21);
      const got = measure(m, 'float64', true, 21);
      want.values.forEach((v, i) => expect(maxAbsDiff(got.values[i], v), `value ${i}`).toBeLessThan(1e-12));
      want.grads.forEach((g, i) => expect(maxAbsDiff(got.grads[i], g), `gradient ${i}`).toBeLessThan(1e-12));
    });
  }
  for (const mode of ['lstm', 'gru'] as const) {
    it(`${mode}, 2 layers: float32 to float rounding`, () => {
      const m = makeModule(mode, I, H, 5, 2, true, 'float32');
      const want = measure(m, 'float32', false, 22);
      const got = measure(m, 'float32', true, 22);
      want.values.forEach((v, i) => expect(maxRelError(got.values[i], v), `value ${i}`).toBeLessThan(1e-5));
      want.grads.forEach((g, i) => expect(maxRelError(got.grads[i], g), `gradient ${i}`).toBeLessThan(1e-5));
    });
  }
});

// ---- wasm against the CPU reference kernels ------------------------------------------------------

describe('wasm backend: recurrent cell kernels and the layer op against the CPU reference (float32)', () => {
  let wasm: WasmBackend;
  beforeAll(async () => {
    wasm = await WasmBackend.create();
  });
  afterAll(async () => {
    await wasm.close();
  });

  /** The same random float32 data on both backends. */
  function pair(length: number, rng: Rng, scale = 1): { c: DeviceBuffer; w: DeviceBuffer } {
    const data = new Float32Array(length);
    for (let i = 0; i < length; i++) data[i] = rng.normal() * scale;
    return { c: cpu.upload(Float32Array.from(data)), w: wasm.upload(Float32Array.from(data)) };
  }
  type Pair = { c: DeviceBuffer; w: DeviceBuffer } | null;
  const on = (p: Pair, side: 'c' | 'w'): DeviceBuffer | null => (p === null ? null : p[side]);
  function expectSame(a: DeviceBuffer, b: DeviceBuffer, what: string): void {
    const x = cpu.readSync(a)!;
    const y = wasm.readSync(b);
    expect(maxRelError(y, x), what).toBeLessThan(1e-6);
  }

  const shapes: Array<[number, number, number]> = [
    [3, 7, 5], // batch, hidden, steps of gi / gradOut
    [1, 1, 1],
    [5, 3, 2],
  ];
  for (const [B, H, T] of shapes) {
    for (const optional of [true, false]) {
      it(`cells on B=${B}, H=${H}, rows of step ${T - 1} of ${T}${optional ? '' : ', optional inputs null'}`, () => {
        const rng = new Rng(B * 100 + H * 10 + T);
        const row = (T - 1) * B;
        const opt = (length: number, scale = 1): Pair => (optional ? pair(length, rng, scale) : null);
        wasm.scope(() => {
          // LSTM
          {
            const gi = pair(T * B * 4 * H, rng);
            const gh = pair(B * 4 * H, rng);
            const bias = opt(4 * H);
            const c = pair(B * H, rng);
            const run = (b: Backend, s: 'c' | 'w') => b.lstmCell(gi[s], row, gh[s], on(bias, s), c[s], B, H);
            const fc = run(cpu, 'c');
            const fw = run(wasm, 'w');
            expectSame(fc.h, fw.h, 'lstm h');
            expectSame(fc.c, fw.c, 'lstm c');
            expectSame(fc.act, fw.act, 'lstm act');
            const gradOut = opt(T * B * H);
            const gradH = opt(B * H);
            const gradC = opt(B * H);
            const back = (b: Backend, s: 'c' | 'w', act: DeviceBuffer) => b.lstmCellBackward(act, c[s], on(gradOut, s), row, on(gradH, s), on(gradC, s), B, H);
            const bc = back(cpu, 'c', fc.act);
            const bw = back(wasm, 'w', fw.act);
            expectSame(bc.gGates, bw.gGates, 'lstm gGates');
            expectSame(bc.gc, bw.gc, 'lstm gc');
          }
          // GRU
          {
            const gi = pair(T * B * 3 * H, rng);
            const gh = pair(B * 3 * H, rng);
            const bias = opt(3 * H);
            const h = pair(B * H, rng);
            const run = (b: Backend, s: 'c' | 'w') => b.gruCell(gi[s], row, gh[s], on(bias, s), h[s], B, H);
            const fc = run(cpu, 'c');
            const fw = run(wasm, 'w');
            expectSame(fc.h, fw.h, 'gru h');
            expectSame(fc.act, fw.act, 'gru act');
            const gradOut = opt(T * B * H);
            const gradH = opt(B * H);
            const gradD = opt(B * H);
            const back = (b: Backend, s: 'c' | 'w', act: DeviceBuffer) => b.gruCellBackward(act, h[s], on(gradOut, s), row, on(gradH, s), on(gradD, s), B, H);
            const bc = back(cpu, 'c', fc.act);
            const bw = back(wasm, 'w', fw.act);
            expectSame(bc.gGi, bw.gGi, 'gru gGi');
            expectSame(bc.gGh, bw.gGh, 'gru gGh');
            expectSame(bc.gh, bw.gh, 'gru gh');
          }
          // RNN
          for (const activation of ['tanh', 'relu'] as RnnActivation[]) {
            const gi = pair(T * B * H, rng);
            const gh = pair(B * H, rng);
            const bias = opt(H);
            const hc = cpu.rnnCell(activation, gi.c, row, gh.c, on(bias, 'c'), B, H);
            const hw = wasm.rnnCell(activation, gi.w, row, gh.w, on(bias, 'w'), B, H);
            expectSame(hc, hw, `rnn ${activation} h`);
            const gradOut = opt(T * B * H);
            const gradH = opt(B * H);
            expectSame(
              cpu.rnnCellBackward(activation, hc, on(gradOut, 'c'), row, on(gradH, 'c'), B, H),
              wasm.rnnCellBackward(activation, hw, on(gradOut, 'w'), row, on(gradH, 'w'), B, H),
              `rnn ${activation} backward`,
            );
          }
        });
      });
    }
  }

  it('reports rows outside gi and wrong lengths', () => {
    const gi = cpu.upload(new Float32Array(2 * 3 * 4 * 2));
    const gh = cpu.upload(new Float32Array(3 * 4 * 2));
    const c = cpu.upload(new Float32Array(3 * 2));
    expect(() => cpu.lstmCell(gi, 4, gh, null, c, 3, 2)).toThrow(/lstmCell: rows 4 … 6 of gi are outside its 6 rows/);
    expect(() => cpu.lstmCell(gi, 0, gh, null, cpu.upload(new Float32Array(5)), 3, 2)).toThrow(/lstmCell: c has 5 elements, expected 6/);
    expect(() => wasm.scope(() => wasm.gruCell(wasm.upload(new Float32Array(7)), 0, wasm.upload(new Float32Array(6)), null, wasm.upload(new Float32Array(2)), 1, 2))).toThrow(/gruCell: gi has 7 elements, not whole rows of 6/);
  });

  for (const mode of ['lstm', 'gru', 'rnn_tanh'] as const) {
    it(`${mode}: the whole layer op, forward and backward, matches the CPU backend`, () => {
      const B = 3;
      const T = 5;
      const H = 6;
      const G = GATES[mode];
      const rng = new Rng(77 + G);
      const make = (shape: number[], scale: number): Tensor => F.tensor(Float32Array.from(F.randn(shape, rng, { std: scale }).dataSync()), shape);
      const host = {
        proj: make([T * B, G * H], 1),
        wHh: make([G * H, H], 0.4),
        bHh: make([G * H], 0.3),
        h0: make([B, H], 0.5),
        c0: mode === 'lstm' ? make([B, H], 0.5) : null,
        gOut: make([T * B, H], 1),
        gH: make([B, H], 1),
        gC: make([B, H], 1),
      };
      const run = (backend: Backend): Float32Array[] => {
        const put = (t: Tensor | null, requiresGrad: boolean): Tensor | null => (t === null ? null : F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend, requiresGrad }));
        const proj = put(host.proj, true)!;
        const wHh = put(host.wHh, true)!;
        const bHh = put(host.bHh, true)!;
        const h0 = put(host.h0, true)!;
        const c0 = put(host.c0, true);
        const r = recurrentLayer(mode, proj, wHh, bHh, h0, c0);
        let loss = F.add(F.sum(F.mul(r.output, put(host.gOut, false)!)), F.sum(F.mul(r.hT, put(host.gH, false)!)));
        if (r.cT) loss = F.add(loss, F.sum(F.mul(r.cT, put(host.gC, false)!)));
        loss.backward();
        const all = [r.output, r.hT, ...(r.cT ? [r.cT] : []), ...[proj, wHh, bHh, h0, ...(c0 ? [c0] : [])].map((t) => t.grad!)];
        return all.map((t) => Float32Array.from(t.dataSync()));
      };
      const want = run(cpu);
      const got = wasm.scope(() => run(wasm));
      want.forEach((v, i) => expect(maxRelError(got[i], v), `result ${i}`).toBeLessThan(1e-5));
    });
  }
});

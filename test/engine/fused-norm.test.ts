// The fused NormKernels primitives (softmax, causal softmax, log-softmax, LayerNorm, GELU):
// float64 finite-difference gradient checks of the ops on the cpu backend; equality with the
// composed formulas they replaced (forward and gradients, float64, ~1e-12); the wasm backend
// (float32) against the cpu reference kernels on random shapes, odd sizes and cols = 1; and the
// numerical traps named in shared/backend/fused-norm.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import type { Backend, DeviceBuffer } from '../../shared/backend/backend.js';
import type { GeluApproximation } from '../../shared/backend/fused-norm.js';
import * as F from '../../shared/ops/index.js';
import { layerNorm } from '../../shared/nn/attention.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

// ---- the composed formulas the fused ops replaced (references) -------------------------------------

function composedSoftmax(x: Tensor, axis = -1): Tensor {
  const shifted = F.sub(x, F.max(x.detach(), axis, { keepDims: true }));
  const e = F.exp(shifted);
  return F.div(e, F.sum(e, axis, { keepDims: true }));
}

function composedLogSoftmax(x: Tensor, axis = -1): Tensor {
  const shifted = F.sub(x, F.max(x.detach(), axis, { keepDims: true }));
  return F.sub(shifted, F.log(F.sum(F.exp(shifted), axis, { keepDims: true })));
}

/** The attention path's causal mask: masked scores replaced by −1e9 before a plain softmax. */
function composedCausalSoftmax(x: Tensor): Tensor {
  const t = x.shape[x.rank - 1];
  const keep = new Float64Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j <= i; j++) keep[i * t + j] = 1;
  return composedSoftmax(F.where(F.tensor(keep, [t, t], { dtype: x.dtype }), x, -1e9));
}

function composedLayerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const mu = F.mean(x, -1, { keepDims: true });
  const centred = F.sub(x, mu);
  const variance = F.mean(F.mul(centred, centred), -1, { keepDims: true });
  let y = F.div(centred, F.sqrt(F.add(variance, eps)));
  if (weight) y = F.mul(y, weight);
  if (bias) y = F.add(y, bias);
  return y;
}

function composedGelu(x: Tensor): Tensor {
  return F.mul(F.mul(x, 0.5), F.add(F.erf(F.mul(x, Math.SQRT1_2)), 1));
}

function composedGeluTanh(x: Tensor): Tensor {
  const inner = F.mul(F.add(x, F.mul(F.mul(F.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return F.mul(F.mul(x, 0.5), F.add(F.tanh(inner), 1));
}

// ---- helpers ----------------------------------------------------------------------------------------

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err;
}

/** max |a − b| / max(max |b|, 1e-30) */
function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  return maxAbsDiff(actual, expected) / Math.max(scale, 1e-30);
}

/**
 * Runs fused and reference on fresh copies of the same float64 inputs, contracts each output with
 * the same random weights, and compares outputs and every input gradient.
 */
function expectSameAsComposed(fused: (...xs: Tensor[]) => Tensor, reference: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = 1e-12): void {
  const run = (fn: (...xs: Tensor[]) => Tensor): { y: Float64Array; grads: Float64Array[] } => {
    const xs = inputs.map((t) => F.tensor(Float64Array.from(t.dataSync()), t.shape, { dtype: 'float64', requiresGrad: true }));
    const y = fn(...xs);
    const w = F.randn(y.shape, new Rng(777), { dtype: 'float64' });
    F.sum(F.mul(y, w)).backward();
    return { y: Float64Array.from(y.dataSync()), grads: xs.map((x) => Float64Array.from(x.grad!.dataSync())) };
  };
  const a = run(fused);
  const b = run(reference);
  expect(maxAbsDiff(a.y, b.y)).toBeLessThan(tol);
  for (let i = 0; i < inputs.length; i++) expect(maxAbsDiff(a.grads[i], b.grads[i])).toBeLessThan(tol);
}

// ---- gradient checks (float64, cpu) ---------------------------------------------------------------

describe('fused ops: finite-difference gradient checks (float64)', () => {
  it('relu: gradient check away from 0, the old x·[x > 0] value, and 0 gradient at x = 0', () => {
    gradcheck((t) => F.relu(t), [randInput([3, 7], 41, 2, 0.05)]);
    const x = randInput([4, 5], 42, 2);
    const fused = F.relu(x);
    const composed = F.mul(x, F.gt(x, 0));
    // equal up to the sign of zero (x·0 is −0 for negative x; relu gives +0, as PyTorch does)
    expect(Array.from(fused.dataSync(), (v) => v + 0)).toEqual(Array.from(composed.dataSync(), (v) => v + 0));
    const z = F.tensor(new Float64Array([0, -0, 2, -3]), [4]);
    z.requiresGrad = true;
    F.sum(F.relu(z)).backward();
    expect(Array.from(z.grad!.dataSync())).toEqual([0, 0, 1, 0]);
  });

  it('softmax over the last axis, another axis, and a rank-3 middle axis', () => {
    gradcheck((t) => F.softmax(t), [randInput([3, 7], 1, 3)]);
    gradcheck((t) => F.softmax(t, 0), [randInput([3, 7], 2, 3)]);
    gradcheck((t) => F.softmax(t, 1), [randInput([2, 3, 5], 3, 3)]);
    gradcheck((t) => F.softmax(t), [randInput([4, 1], 4)]);
  });
  it('causal softmax over [.., T, T] blocks (T = 5)', () => {
    gradcheck(F.causalSoftmax, [randInput([2, 5, 5], 5, 3)]);
    gradcheck(F.causalSoftmax, [randInput([1, 2, 5, 5], 6, 2)]);
  });
  it('logSoftmax over the last axis and another axis', () => {
    gradcheck((t) => F.logSoftmax(t), [randInput([3, 7], 7, 3)]);
    gradcheck((t) => F.logSoftmax(t, 0), [randInput([3, 7], 8, 3)]);
    gradcheck((t) => F.logSoftmax(t, -2), [randInput([2, 3, 5], 9, 3)]);
  });
  it('crossEntropy through the fused logSoftmax, with label smoothing', () => {
    gradcheck((t) => F.crossEntropy(t, [1, 0, 6]), [randInput([3, 7], 10)]);
    gradcheck((t) => F.crossEntropy(t, [1, 0, 6], { labelSmoothing: 0.2, normalizer: 5 }), [randInput([3, 7], 11)]);
  });
  it('layerNorm with weight and bias, weight only, bias only, neither', () => {
    gradcheck((x, w, b) => layerNorm(x, w, b), [randInput([3, 7], 12, 2, 1), randInput([7], 13, 0.5, 1), randInput([7], 14)]);
    gradcheck((x, w) => layerNorm(x, w, null), [randInput([2, 3, 7], 15), randInput([7], 16, 0.5, 1)]);
    gradcheck((x, b) => layerNorm(x, null, b), [randInput([3, 7], 17), randInput([7], 18)]);
    gradcheck((x) => layerNorm(x, null, null, 1e-3), [randInput([3, 7], 19)]);
  });
  it('layerNorm: only the requested gradients, rows with a large mean, and a single column', () => {
    gradcheck((x, w, b) => layerNorm(x, w, b), [randInput([3, 7], 20, 1, 1000), randInput([7], 21), randInput([7], 22)], { check: [0] });
    gradcheck((x, w, b) => layerNorm(x, w, b), [randInput([5, 1], 23), randInput([1], 24), randInput([1], 25)]);
  });
  it('gelu (erf) and geluTanh', () => {
    gradcheck(F.gelu, [randInput([3, 7], 26, 2)]);
    gradcheck(F.geluTanh, [randInput([3, 7], 27, 2)]);
  });
});

// ---- the fused ops equal the composed formulas (float64) ----------------------------------------------

describe('fused ops equal the composed formulas they replaced (float64)', () => {
  it('softmax and logSoftmax on each axis', () => {
    for (const axis of [-1, 0, 1]) {
      expectSameAsComposed((t) => F.softmax(t, axis), (t) => composedSoftmax(t, axis), [randInput([3, 7, 5], 30, 4)]);
      expectSameAsComposed((t) => F.logSoftmax(t, axis), (t) => composedLogSoftmax(t, axis), [randInput([3, 7, 5], 31, 4)]);
    }
  });
  it('causal softmax equals where(mask, x, −1e9) then softmax, with masked entries exactly 0', () => {
    const x = randInput([2, 3, 5, 5], 32, 3);
    expectSameAsComposed(F.causalSoftmax, composedCausalSoftmax, [x]);
    const p = F.causalSoftmax(x).dataSync();
    for (let r = 0; r < 30; r++) for (let j = (r % 5) + 1; j < 5; j++) expect(p[r * 5 + j]).toBe(0);
  });
  it('crossEntropy gives the same loss and gradient as with the composed logSoftmax', () => {
    const targets = [3, 0, 6, 2];
    const composedCe = (t: Tensor): Tensor => {
      const q = new Float64Array(28).fill(0.1 / 7);
      targets.forEach((c, i) => (q[i * 7 + c] += 0.9));
      return F.neg(F.mul(F.sum(F.mul(F.tensor(q, [4, 7], { dtype: 'float64' }), composedLogSoftmax(t))), 1 / 4));
    };
    expectSameAsComposed((t) => F.crossEntropy(t, targets, { labelSmoothing: 0.1 }), composedCe, [randInput([4, 7], 33, 3)]);
  });
  it('layerNorm, with and without affine parameters', () => {
    const x = randInput([2, 3, 7], 34, 2, 0.5);
    const w = randInput([7], 35, 0.5, 1);
    const b = randInput([7], 36);
    expectSameAsComposed((a, c, d) => layerNorm(a, c, d), (a, c, d) => composedLayerNorm(a, c, d), [x, w, b]);
    expectSameAsComposed((a) => layerNorm(a, null, null), (a) => composedLayerNorm(a, null, null), [x]);
    expectSameAsComposed((a, c) => layerNorm(a, c, null, 1e-3), (a, c) => composedLayerNorm(a, c, null, 1e-3), [x, w]);
  });
  it('gelu and geluTanh', () => {
    expectSameAsComposed(F.gelu, composedGelu, [randInput([3, 7], 37, 3)]);
    expectSameAsComposed(F.geluTanh, composedGeluTanh, [randInput([3, 7], 38, 3)]);
  });
});

// ---- numerical traps -----------------------------------------------------------------------------------

describe('fused ops: numerical traps', () => {
  it('softmax / logSoftmax stay finite for huge logits (float32)', () => {
    const x = F.tensor([1e4, 1e4 + 1, -1e4, 0, 88, 89], [2, 3]);
    const p = F.softmax(x).dataSync();
    expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 6);
    expect(p[2]).toBe(0);
    const lp = F.logSoftmax(x).dataSync();
    expect([...lp].every(Number.isFinite)).toBe(true);
    expect(lp[2]).toBeCloseTo(-2e4 - 1 - Math.log1p(Math.exp(-1)), 0);
  });
  it('causal softmax never reads masked scores (NaN / +∞ there do not leak)', () => {
    const x = F.tensor([1, NaN, Infinity, 2, 3, NaN, 0, 0, 0], [3, 3], { dtype: 'float64' });
    const p = F.causalSoftmax(x).dataSync();
    expect([...p].every(Number.isFinite)).toBe(true);
    expect(p[0]).toBe(1);
    expect(p[1]).toBe(0);
    expect(p[5]).toBe(0);
    expect(p[3] + p[4]).toBeCloseTo(1, 15);
  });
  it('layerNorm: a constant row gives 0, a huge mean does not cancel', () => {
    const x = F.tensor([5, 5, 5, 1e8, 1e8 + 1, 1e8 + 2], [2, 3], { dtype: 'float64' });
    const y = layerNorm(x, null, null, 0).dataSync();
    expect([...y].slice(0, 3)).toEqual([NaN, NaN, NaN]); // eps = 0: 0/0, as the textbook formula
    const ye = layerNorm(x, null, null, 1e-5).dataSync();
    expect([...ye].slice(0, 3)).toEqual([0, 0, 0]);
    const s = Math.sqrt(2 / 3 + 1e-5);
    expect(ye[3]).toBeCloseTo(-1 / s, 9);
    expect(ye[5]).toBeCloseTo(1 / s, 9);
  });
  it('geluTanh: the gradient stays finite where x² overflows', () => {
    const x = F.tensor([1e200, -1e200, 30, -30], [4], { dtype: 'float64', requiresGrad: true });
    F.sum(F.geluTanh(x)).backward();
    expect([...x.grad!.dataSync()]).toEqual([1, 0, 1, 0]);
    const g = F.tensor([40, -40], [2], { requiresGrad: true });
    F.sum(F.gelu(g)).backward();
    expect([...g.grad!.dataSync()]).toEqual([1, 0]);
  });
});

// ---- wasm (float32) against the cpu reference kernels ----------------------------------------------------

describe('wasm fused kernels match the cpu reference (float32)', () => {
  let wasm: WasmBackend;
  beforeAll(async () => {
    wasm = await WasmBackend.create();
  });
  afterAll(async () => {
    await wasm.close();
  });

  const randomData = (rng: Rng, n: number, scale = 2, offset = 0): Float32Array => Float32Array.from({ length: n }, () => offset + scale * rng.normal());
  const read = (b: Backend, x: DeviceBuffer): Float32Array => Float32Array.from(b.readSync(x)!);
  /** The same float32 data on both backends. */
  const both = (data: Float32Array): [DeviceBuffer, DeviceBuffer] => [cpu.upload(Float32Array.from(data)), wasm.upload(data)];
  const check = (what: string, actual: DeviceBuffer, expected: DeviceBuffer): void => {
    const err = maxRelError(read(wasm, actual), read(cpu, expected));
    if (!(err < 1e-5)) expect.fail(`${what}: relative error ${err}`);
  };

  const shapes = (rng: Rng): Array<[number, number]> => {
    const out: Array<[number, number]> = [
      [1, 1],
      [5, 1],
      [1, 9],
      [3, 7],
      [13, 33],
    ];
    for (let i = 0; i < 8; i++) out.push([1 + rng.int(40), 1 + rng.int(70)]);
    return out;
  };

  it('softmax, logSoftmax and their backward', () => {
    const rng = new Rng(41);
    for (const [rows, cols] of shapes(rng)) {
      const tag = `[${rows}, ${cols}]`;
      const [xc, xw] = both(randomData(rng, rows * cols, 3));
      const [gc, gw] = both(randomData(rng, rows * cols));
      const yc = cpu.softmax(xc, rows, cols, false);
      const yw = wasm.softmax(xw, rows, cols, false);
      check(`softmax ${tag}`, yw, yc);
      check(`softmaxBackward ${tag}`, wasm.softmaxBackward(yw, gw, rows, cols), cpu.softmaxBackward(yc, gc, rows, cols));
      const lc = cpu.logSoftmax(xc, rows, cols);
      const lw = wasm.logSoftmax(xw, rows, cols);
      check(`logSoftmax ${tag}`, lw, lc);
      check(`logSoftmaxBackward ${tag}`, wasm.logSoftmaxBackward(lw, gw, rows, cols), cpu.logSoftmaxBackward(lc, gc, rows, cols));
    }
  });

  it('causal softmax on [blocks·T, T], T = 1, odd and larger, masked entries exactly 0 in recycled memory', () => {
    const rng = new Rng(42);
    for (const [blocks, t] of [[1, 1], [3, 1], [2, 5], [6, 7], [1, 33]] as const) {
      const rows = blocks * t;
      const n = rows * t;
      // Leave NaN-filled blocks on the free list, so the outputs below land in stale memory.
      wasm.scope(() => {
        wasm.fill('float32', n, NaN);
        wasm.fill('float32', n, NaN);
      });
      const [xc, xw] = both(randomData(rng, n, 3));
      const [gc, gw] = both(randomData(rng, n));
      const yc = cpu.softmax(xc, rows, t, true);
      const yw = wasm.softmax(xw, rows, t, true);
      check(`causal softmax ${blocks}x[${t}, ${t}]`, yw, yc);
      const p = read(wasm, yw);
      for (let r = 0; r < rows; r++) for (let j = (r % t) + 1; j < t; j++) expect(p[r * t + j]).toBe(0);
      check(`causal softmaxBackward ${blocks}x[${t}, ${t}]`, wasm.softmaxBackward(yw, gw, rows, t), cpu.softmaxBackward(yc, gc, rows, t));
    }
  });

  it('layerNorm and its backward, with every combination of weight and bias', () => {
    const rng = new Rng(43);
    for (const [rows, cols] of shapes(rng)) {
      for (const [hasW, hasB] of [[true, true], [true, false], [false, true], [false, false]] as const) {
        const tag = `[${rows}, ${cols}] weight=${hasW} bias=${hasB}`;
        const [xc, xw] = both(randomData(rng, rows * cols, 2, 3));
        const [gc, gw] = both(randomData(rng, rows * cols));
        const [wc, ww] = hasW ? both(randomData(rng, cols, 0.5, 1)) : [null, null];
        const [bc, bw] = hasB ? both(randomData(rng, cols)) : [null, null];
        const fc = cpu.layerNorm(xc, wc, bc, rows, cols, 1e-5);
        const fw = wasm.layerNorm(xw, ww, bw, rows, cols, 1e-5);
        check(`layerNorm y ${tag}`, fw.y, fc.y);
        check(`layerNorm mean ${tag}`, fw.mean, fc.mean);
        check(`layerNorm rstd ${tag}`, fw.rstd, fc.rstd);
        const grads = { weight: hasW, bias: hasB };
        const rc = cpu.layerNormBackward(gc, xc, fc.mean, fc.rstd, wc, rows, cols, grads);
        const rw = wasm.layerNormBackward(gw, xw, fw.mean, fw.rstd, ww, rows, cols, grads);
        // gx of a single column is 0 up to rounding of ĝ − mean(ĝ): compare absolutely there.
        if (cols === 1) expect(maxAbsDiff(read(wasm, rw.gx), read(cpu, rc.gx))).toBeLessThan(1e-5);
        else check(`layerNormBackward gx ${tag}`, rw.gx, rc.gx);
        expect(rw.gWeight === null).toBe(!hasW);
        expect(rw.gBias === null).toBe(!hasB);
        if (rw.gWeight && rc.gWeight) check(`layerNormBackward gWeight ${tag}`, rw.gWeight, rc.gWeight);
        if (rw.gBias && rc.gBias) check(`layerNormBackward gBias ${tag}`, rw.gBias, rc.gBias);
      }
    }
  });

  it('gelu (both forms) and its backward', () => {
    const rng = new Rng(44);
    for (const [rows, cols] of shapes(rng)) {
      const [xc, xw] = both(randomData(rng, rows * cols, 3));
      const [gc, gw] = both(randomData(rng, rows * cols));
      for (const approximate of ['none', 'tanh'] as GeluApproximation[]) {
        const tag = `[${rows}, ${cols}] ${approximate}`;
        check(`gelu ${tag}`, wasm.gelu(xw, approximate), cpu.gelu(xc, approximate));
        check(`geluBackward ${tag}`, wasm.geluBackward(xw, gw, approximate), cpu.geluBackward(xc, gc, approximate));
      }
    }
  });

  it('the ops with autograd inside a scope give the cpu gradients', () => {
    const rng = new Rng(45);
    const x = F.randn([4, 3, 5, 5], rng);
    const w = F.randn([5], rng, { mean: 1, std: 0.3 });
    const b = F.randn([5], rng);
    const run = (backend: Backend): Float32Array[] =>
      backend.scope(() => {
        const [xs, ws, bs] = [x, w, b].map((t) => F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend, requiresGrad: true }));
        const h = F.gelu(layerNorm(xs, ws, bs));
        const loss = F.add(F.sum(F.mul(F.causalSoftmax(h), h)), F.crossEntropy(F.reshape(F.geluTanh(h), [-1, 5]), Array.from({ length: 60 }, (_, i) => i % 5)));
        loss.backward();
        return [loss, xs.grad!, ws.grad!, bs.grad!].map((t) => Float32Array.from(t.dataSync()));
      });
    const expected = run(cpu);
    const actual = run(wasm);
    for (let i = 0; i < expected.length; i++) expect(maxRelError(actual[i], expected[i])).toBeLessThan(1e-5);
  });
});

// The wasm backend against the reference CPU kernels: matmul on random shapes (odd sizes that do
// not fit the 4x8 tiles, every transpose, batches), every small m, n, k, batches with a broadcast
// operand, with one and two threads (one pool that splits every op, into batch members, rows or
// columns) and both kernel builds; the window kernels on odd sizes, strides and paddings, split
// across threads bit for bit; the other ops through a whole training step; scopes and memory reuse.
// The gemm kernel's own contract (accumulate, orientations, pieces, bounds) is in wasm-gemm.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import * as F from '../../shared/ops/index.js';
import { buildModel, PRESETS } from '../../shared/nn/index.js';
import { Rng } from '../../shared/util/random.js';
import { windowSpec } from '../../shared/backend/conv-spec.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import type { DeviceBuffer } from '../../shared/backend/backend.js';
import { Adam, AdamW } from '../../shared/optim/index.js';
import type { VectorOps } from '../../shared/optim/vector-ops.js';

const backends: Array<[string, WasmBackend]> = [];
beforeAll(async () => {
  backends.push(['simd, 1 thread', await WasmBackend.create({ flavour: 'simd' })]);
  backends.push(['relaxed-simd, 1 thread', await WasmBackend.create({ flavour: 'relaxed-simd' })]);
  backends.push(['default, 2 threads', await WasmBackend.create({ threads: 2 })]);
  backends.push(['default, 2 threads, every op split', await WasmBackend.create({ threads: 2, parallelMinMacs: 0 })]);
});
afterAll(async () => {
  for (const [, b] of backends) await b.close();
});

function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  return err / Math.max(scale, 1e-30);
}

/** max_i |actual[i] − expected[i]| / |expected[i]| (0 where both are equal, even both zero). */
function elementRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Object.is(actual[i], expected[i])) continue;
    err = Math.max(err, Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]));
  }
  return err;
}

function on(backend: WasmBackend, t: Tensor): Tensor {
  return F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend });
}

/** The first index where two float32 arrays differ in their bits, or -1 (a length mismatch: 0). */
function firstBitDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  const fa = Float32Array.from(a);
  const fb = Float32Array.from(b);
  const ua = new Uint32Array(fa.buffer);
  const ub = new Uint32Array(fb.buffer);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

describe('wasm matmul matches the reference kernel', () => {
  it('on random shapes, all transposes, odd sizes', () => {
    const rng = new Rng(11);
    for (const [name, backend] of backends) {
      for (let trial = 0; trial < 60; trial++) {
        const m = 1 + rng.int(trial < 30 ? 13 : 150);
        const k = 1 + rng.int(trial < 30 ? 20 : 600);
        const n = 1 + rng.int(trial < 30 ? 21 : 300);
        const ta = rng.int(2) === 1;
        const tb = rng.int(2) === 1;
        const a = F.randn(ta ? [k, m] : [m, k], rng, { backend: cpu });
        const b = F.randn(tb ? [n, k] : [k, n], rng, { backend: cpu });
        const expected = F.matmulT(a, b, ta, tb).dataSync();
        const actual = F.matmulT(on(backend, a), on(backend, b), ta, tb).dataSync();
        const err = maxRelError(actual, expected);
        if (!(err < 1e-5)) expect.fail(`${name}: ${m}x${k}x${n} transA=${ta} transB=${tb}: relative error ${err}`);
      }
    }
  });
  it('batched, with a broadcast operand, and with k = 0', () => {
    const rng = new Rng(5);
    for (const [, backend] of backends) {
      const a = F.randn([3, 17, 33], rng, { backend: cpu });
      const b = F.randn([33, 29], rng, { backend: cpu });
      expect(maxRelError(F.matmul(on(backend, a), on(backend, b)).dataSync(), F.matmul(a, b).dataSync())).toBeLessThan(1e-5);
      const z = F.matmul(F.zeros([4, 0], { backend }), F.zeros([0, 9], { backend }));
      expect([...z.dataSync()].every((v) => v === 0)).toBe(true);
    }
  });
  it('a large product split across threads equals the single-threaded one, bit for bit', () => {
    const rng = new Rng(9);
    const a = F.randn([200, 300], rng, { backend: cpu });
    const b = F.randn([300, 130], rng, { backend: cpu });
    const one = F.matmul(on(backends[1][1], a), on(backends[1][1], b)).dataSync();
    const two = F.matmul(on(backends[2][1], a), on(backends[2][1], b)).dataSync();
    expect(backends[2][1].threads).toBe(2);
    expect(firstBitDifference(two, one)).toBe(-1);
  });
  it('every small shape: m = 1..13, n = 1..17, k = 1..9, each with a random transpose pair', () => {
    const rng = new Rng(12);
    for (let m = 1; m <= 13; m++) {
      for (let n = 1; n <= 17; n++) {
        for (let k = 1; k <= 9; k++) {
          const ta = rng.int(2) === 1;
          const tb = rng.int(2) === 1;
          const a = F.randn(ta ? [k, m] : [m, k], rng, { backend: cpu });
          const b = F.randn(tb ? [n, k] : [k, n], rng, { backend: cpu });
          const expected = F.matmulT(a, b, ta, tb).dataSync();
          for (const [name, backend] of backends) {
            const actual = backend.scope(() => Float32Array.from(F.matmulT(on(backend, a), on(backend, b), ta, tb).dataSync()));
            const err = maxRelError(actual, expected);
            if (!(err < 1e-5)) expect.fail(`${name}: ${m}x${k}x${n} transA=${ta} transB=${tb}: relative error ${err}`);
          }
        }
      }
    }
  });
  it('batched products with either operand broadcast, split into members, rows or columns, give the one-thread bits', () => {
    // Shapes chosen so that the splitting pool cuts each way: many members; one member with many
    // columns; one member with few columns and many rows; and products whose batch broadcasts one
    // side (packed once per piece) — the profile's convolution and attention shapes, scaled down.
    const rng = new Rng(13);
    const split = backends[3][1];
    const one = backends.find(([, b]) => b.threads === 1 && b.flavour === split.flavour)![1];
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[9, 17, 33], [9, 33, 29], false, false],
      [[9, 17, 33], [33, 29], false, false],
      [[13, 9], [6, 21, 9], false, true],
      [[6, 20, 13], [20, 37], true, false],
      [[7, 16, 12], [7, 16, 12], false, true],
      [[7, 16, 16], [7, 16, 12], true, false],
      [[3, 5, 200], [3, 200, 9], false, false],
      [[1, 61, 70], [1, 70, 130], false, false],
      [[1, 300, 40], [1, 40, 10], false, false],
      [[1, 40, 300], [1, 10, 40], true, true],
      [[2, 83, 64], [2, 83, 50], true, false],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const a = F.randn(sa, rng, { backend: cpu });
      const b = F.randn(sb, rng, { backend: cpu });
      const what = `[${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`;
      const expected = F.matmulT(a, b, ta, tb).dataSync();
      const single = one.scope(() => Float32Array.from(F.matmulT(on(one, a), on(one, b), ta, tb).dataSync()));
      const many = split.scope(() => Float32Array.from(F.matmulT(on(split, a), on(split, b), ta, tb).dataSync()));
      expect(maxRelError(single, expected), what).toBeLessThan(1e-5);
      const at = firstBitDifference(many, single);
      if (at >= 0) expect.fail(`${what}: element ${at} is ${many[at]} split across threads, ${single[at]} on one`);
    }
  });
});

describe('wasm window kernels, split across threads', () => {
  // [N, C, H, W], kernel, stride, padding, dilation: the 3x3 "same" convolution and 2x2 pooling
  // fast paths on odd sizes, and the general loops.
  const cases: Array<[number[], number, number, number, number]> = [
    [[5, 3, 7, 9], 3, 1, 1, 1],
    [[4, 2, 5, 4], 3, 1, 1, 1],
    [[3, 1, 3, 3], 3, 1, 1, 1],
    [[6, 3, 9, 11], 2, 2, 0, 1],
    [[5, 2, 8, 7], 2, 2, 0, 1],
    [[4, 2, 11, 9], 3, 2, 0, 1],
    [[3, 4, 10, 8], 3, 2, 1, 2],
    [[7, 2, 6, 5], 2, 1, 1, 1],
  ];
  it.each(cases)('%j, kernel %i, stride %i, padding %i, dilation %i: im2col, col2im, maxPool2d and its backward', (shape, kernel, stride, padding, dilation) => {
    const rng = new Rng(shape.reduce((x, y) => x * 31 + y, kernel));
    const spec = windowSpec(shape[2], shape[3], [kernel, kernel], [stride, stride], [padding, padding], [dilation, dilation]);
    const [n, c] = shape;
    const x = F.randn(shape, rng, { backend: cpu }).dataSync() as Float32Array;
    const cols = F.randn([n * spec.oh * spec.ow, c * kernel * kernel], rng, { backend: cpu }).dataSync() as Float32Array;
    const grad = F.randn([n, c, spec.oh, spec.ow], rng, { backend: cpu }).dataSync() as Float32Array;
    const reference = {
      im2col: cpu.readSync(cpu.im2col(cpu.upload(Float32Array.from(x)), shape, spec))!,
      col2im: cpu.readSync(cpu.col2im(cpu.upload(Float32Array.from(cols)), shape, spec))!,
      maxPool2d: cpu.readSync(cpu.maxPool2d(cpu.upload(Float32Array.from(x)), shape, spec))!,
      maxPool2dBackward: cpu.readSync(cpu.maxPool2dBackward(cpu.upload(Float32Array.from(x)), shape, cpu.upload(Float32Array.from(grad)), spec))!,
    };
    const runAll = (b: WasmBackend): Record<keyof typeof reference, Float32Array> =>
      b.scope(() => {
        const X = b.upload(Float32Array.from(x));
        const read = (buf: ReturnType<WasmBackend['upload']>): Float32Array => Float32Array.from(b.readSync(buf));
        return {
          im2col: read(b.im2col(X, shape, spec)),
          col2im: read(b.col2im(b.upload(Float32Array.from(cols)), shape, spec)),
          maxPool2d: read(b.maxPool2d(X, shape, spec)),
          maxPool2dBackward: read(b.maxPool2dBackward(X, shape, b.upload(Float32Array.from(grad)), spec)),
        };
      });
    const splitting = backends[3][1];
    const single = runAll(backends.find(([, b]) => b.threads === 1 && b.flavour === splitting.flavour)![1]);
    const split = runAll(splitting);
    for (const op of Object.keys(reference) as Array<keyof typeof reference>) {
      expect(maxRelError(single[op], reference[op]), op).toBeLessThan(1e-6);
      const at = firstBitDifference(split[op], single[op]);
      if (at >= 0) expect.fail(`${op}: element ${at} is ${split[op][at]} split across threads, ${single[op][at]} on one`);
    }
  });
});

describe('wasm elementwise, reduction and window kernels match the reference', () => {
  const shapes: Array<[number[], number[]]> = [
    [[7, 13], [7, 13]],
    [[7, 13], []],
    [[], [5, 3]],
    [[9, 6], [6]],
    [[9, 6], [9, 1]],
    [[3, 5, 7], [5, 1]],
    [[3, 5, 7], [3, 1, 7]],
    [[4, 1], [1, 6]],
  ];
  it('binary ops over every broadcasting pattern (SIMD fast paths and fallbacks)', () => {
    const rng = new Rng(3);
    const backend = backends[0][1];
    for (const [sa, sb] of shapes) {
      for (const op of [F.add, F.sub, F.mul, F.div, F.gt, F.ge, F.eq] as const) {
        const a = F.randn(sa, rng, { backend: cpu });
        const b = op === F.div ? F.add(F.abs(F.randn(sb, rng, { backend: cpu })), 0.5) : F.randn(sb, rng, { backend: cpu });
        const expected = op(a, b).dataSync();
        const actual = op(on(backend, a), on(backend, b)).dataSync();
        expect(maxRelError(actual, expected)).toBeLessThan(1e-6);
      }
    }
    const x = F.tensor([1, 2, 2, 3], [4]);
    expect([...F.eq(on(backend, x), 2).dataSync()]).toEqual([0, 1, 1, 0]);
  });
  it('unary ops and sums over contiguous and split axes', () => {
    const rng = new Rng(4);
    const backend = backends[0][1];
    const a = F.randn([6, 7, 9], rng, { backend: cpu });
    for (const op of [F.neg, F.abs, (t: Tensor) => F.sqrt(F.abs(t)), F.exp, F.tanh] as const) {
      expect(maxRelError(op(on(backend, a)).dataSync(), op(a).dataSync())).toBeLessThan(1e-6);
    }
    for (const axes of [0, 1, 2, [0, 1], [1, 2], [0, 2], undefined] as const) {
      expect(maxRelError(F.sum(on(backend, a), axes).dataSync(), F.sum(a, axes).dataSync())).toBeLessThan(1e-6);
      expect(maxRelError(F.max(on(backend, a), axes).dataSync(), F.max(a, axes).dataSync())).toBe(0);
    }
  });
  it('elementwise and row kernels split across threads give the one-thread bits, on odd sizes', () => {
    // The "every op split" backend cuts each of these into pieces of 64 elements or whole rows
    // (whole [T, T] blocks for the causal softmax) across its pool threads.
    const one = backends[1][1];
    const split = backends[3][1];
    expect(split.flavour).toBe(one.flavour);
    const rng = new Rng(23);
    const run = (b: WasmBackend, f: (b: WasmBackend, up: (x: Float32Array) => DeviceBuffer) => DeviceBuffer): Float32Array => Float32Array.from(b.readSync(f(b, (x) => b.upload(x))) ?? []);
    const same = (what: string, f: (b: WasmBackend, up: (x: Float32Array) => DeviceBuffer) => DeviceBuffer): void => {
      const i = firstBitDifference(run(split, f), run(one, f));
      if (i !== -1) expect.fail(`${what}: first differing element ${i}`);
    };
    for (const n of [1, 3, 63, 64, 65, 127, 129, 1000, 4099, 70_001]) {
      const x = Float32Array.from({ length: n }, () => 4 * rng.normal());
      const g = Float32Array.from({ length: n }, () => rng.normal());
      const s = Float32Array.of(rng.normal());
      for (const op of ['neg', 'abs', 'exp', 'tanh', 'sigmoid'] as const) same(`${op} n=${n}`, (b, up) => b.unary(op, up(x)));
      same(`relu n=${n}`, (b, up) => b.relu(up(x)));
      same(`reluBackward n=${n}`, (b, up) => b.reluBackward(up(x), up(g)));
      for (const approx of ['none', 'tanh'] as const) {
        same(`gelu(${approx}) n=${n}`, (b, up) => b.gelu(up(x), approx));
        same(`geluBackward(${approx}) n=${n}`, (b, up) => b.geluBackward(up(x), up(g), approx));
      }
      same(`add n=${n}`, (b, up) => b.binary('add', up(x), [n], up(g), [n], [n]));
      same(`mul by a scalar n=${n}`, (b, up) => b.binary('mul', up(x), [n], up(s), [1], [n]));
      same(`scalar minus n=${n}`, (b, up) => b.binary('sub', up(s), [1], up(x), [n], [n]));
    }
    for (const [rows, cols] of [[1, 1], [3, 7], [129, 5], [700, 33], [2048, 83]]) {
      const x = Float32Array.from({ length: rows * cols }, () => 3 * rng.normal());
      const bias = Float32Array.from({ length: cols }, () => rng.normal());
      same(`bias rows ${rows}x${cols}`, (b, up) => b.binary('add', up(x), [rows, cols], up(bias), [cols], [rows, cols]));
      same(`softmax ${rows}x${cols}`, (b, up) => b.softmax(up(x), rows, cols, false));
      const perRow = Float32Array.from({ length: rows }, () => rng.normal());
      same(`one value per row ${rows}x${cols}`, (b, up) => b.binary('mul', up(x), [rows, cols], up(perRow), [rows, 1], [rows, cols]));
      same(`sum of rows ${rows}x${cols}`, (b, up) => b.reduce('sum', up(x), [rows, cols], [1]));
      same(`sum over rows ${rows}x${cols}`, (b, up) => b.reduce('sum', up(x), [rows, cols], [0]));
      same(`logSoftmax ${rows}x${cols}`, (b, up) => b.logSoftmax(up(x), rows, cols));
      same(`softmaxBackward ${rows}x${cols}`, (b, up) => b.softmaxBackward(up(x), up(x.map((v) => v * 0.5)), rows, cols));
      same(`logSoftmaxBackward ${rows}x${cols}`, (b, up) => b.logSoftmaxBackward(up(x), up(x.map((v) => -v)), rows, cols));
    }
    // A per-channel bias over [N, C, H·W] (period C rows), and a conv bias gradient (axes 0, 2, 3).
    for (const [n, c, hw] of [[1, 1, 1], [3, 5, 7], [16, 32, 196], [128, 3, 129]]) {
      const x = Float32Array.from({ length: n * c * hw }, () => rng.normal());
      const bias = Float32Array.from({ length: c }, () => rng.normal());
      same(`channel bias [${n}, ${c}, ${hw}]`, (b, up) => b.binary('add', up(x), [n, c, hw], up(bias), [1, c, 1], [n, c, hw]));
      same(`bias gradient [${n}, ${c}, ${hw}]`, (b, up) => b.reduce('sum', up(x), [n, c, hw], [0, 2]));
    }
    for (const [blocks, t] of [[1, 1], [5, 3], [37, 16], [128, 64]]) {
      const x = Float32Array.from({ length: blocks * t * t }, () => 3 * rng.normal());
      same(`causal softmax ${blocks}x[${t},${t}]`, (b, up) => b.softmax(up(x), blocks * t, t, true));
    }
  });
  it('sums over any set of axes on random shapes (odd sizes, size-1 and empty axes) match the reference', () => {
    // Split runs of axes (a conv bias gradient sums [0, 2, 3]) run as SIMD passes, one per run, in
    // the reference kernel's order of runs; float64 accumulators within a run.
    const rng = new Rng(41);
    const backend = backends[0][1];
    for (let trial = 0; trial < 60; trial++) {
      const rank = 2 + Math.floor(rng.uniform() * 4);
      const shape = Array.from({ length: rank }, () => (rng.uniform() < 0.1 ? (rng.uniform() < 0.3 ? 0 : 1) : 1 + Math.floor(rng.uniform() * 13)));
      const axes = shape.map((_, i) => i).filter(() => rng.uniform() < 0.5);
      if (axes.length === 0) axes.push(Math.floor(rng.uniform() * rank));
      const a = F.randn(shape, rng, { backend: cpu });
      const actual = F.sum(on(backend, a), axes).dataSync();
      const expected = F.sum(a, axes).dataSync();
      expect(actual.length, `[${shape}] over [${axes}]`).toBe(expected.length);
      expect(maxRelError(actual, expected), `[${shape}] over [${axes}]`).toBeLessThan(1e-6);
    }
  });
  it('conv2d and maxPool2d, forward and backward, with stride, padding and dilation', () => {
    const rng = new Rng(6);
    const backend = backends[2][1];
    for (const [stride, padding, dilation] of [[1, 1, 1], [2, 0, 1], [1, 2, 2]]) {
      const x = F.randn([3, 4, 11, 9], rng, { backend: cpu });
      const w = F.randn([5, 4, 3, 3], rng, { backend: cpu });
      const run = (xt: Tensor, wt: Tensor): Float32Array[] => {
        const xs = F.tensor(Float32Array.from(xt.dataSync()), xt.shape, { backend: xt.backend, requiresGrad: true });
        const ws = F.tensor(Float32Array.from(wt.dataSync()), wt.shape, { backend: wt.backend, requiresGrad: true });
        const y = F.maxPool2d(F.relu(F.conv2d(xs, ws, null, { stride, padding, dilation })), 2, { stride: 1, padding: 1 });
        F.sum(F.mul(y, y)).backward();
        return [Float32Array.from(y.dataSync()), Float32Array.from(xs.grad!.dataSync()), Float32Array.from(ws.grad!.dataSync())];
      };
      const expected = run(x, w);
      const actual = backend.scope(() => run(on(backend, x), on(backend, w)));
      expected.forEach((e, i) => expect(maxRelError(actual[i], e)).toBeLessThan(1e-5));
    }
  });
});

describe('a training step on the wasm backend', () => {
  it('gives the reference gradients for the MLP', () => {
    const backend = backends[2][1];
    const rng = new Rng(2);
    const x = F.randn([16, 1, 28, 28], rng, { backend: cpu });
    const y = Int32Array.from({ length: 16 }, (_, i) => i % 10);
    const grads = (b: typeof cpu | WasmBackend): Float32Array[] => {
      const { model } = buildModel(PRESETS.mlp, new Rng(1));
      const params = model.parameters();
      // Move the parameters to the backend under test.
      const moved = params.map((p) => F.tensor(Float32Array.from(p.dataSync()), p.shape, { backend: b, requiresGrad: true }));
      return b.scope(() => {
        let h = F.flatten(F.tensor(Float32Array.from(x.dataSync()), x.shape, { backend: b }));
        h = F.relu(F.linear(h, moved[0], moved[1]));
        h = F.relu(F.linear(h, moved[2], moved[3]));
        F.crossEntropy(F.linear(h, moved[4], moved[5]), y).backward();
        return moved.map((p) => Float32Array.from(p.grad!.dataSync()));
      });
    };
    const expected = grads(cpu);
    const actual = grads(backend);
    expected.forEach((g, i) => expect(maxRelError(actual[i], g)).toBeLessThan(1e-5));
  });
});

describe('vector ops', () => {
  it('the Adam kernel split across threads gives the one-thread bits', () => {
    // Pieces of 64 elements, the scalars passed as float32 bits (the kernel's own precision).
    const run = (backend: WasmBackend): Float32Array[] => {
      const local = new Rng(5);
      const ops = backend.vectorOps();
      const slots = [1, 63, 129, 5003].map((n, k) => ({ name: `p${k}`, value: ops.alloc(n), grad: ops.alloc(n) as Float32Array | null }));
      for (const slot of slots) for (let i = 0; i < slot.value.length; i++) slot.value[i] = local.normal();
      const opt = new AdamW(slots, { lr: 3e-3, weightDecay: 0.05, vectorOps: ops });
      for (let step = 0; step < 5; step++) {
        for (const slot of slots) for (let i = 0; i < slot.grad!.length; i++) slot.grad![i] = local.normal() * 10 ** (local.uniform() * 4 - 2);
        opt.step();
      }
      return slots.map((slot) => Float32Array.from(slot.value));
    };
    const one = run(backends[1][1]);
    const split = run(backends[3][1]);
    one.forEach((values, k) => expect(firstBitDifference(split[k], values), `slot ${k}`).toBe(-1));
  });
  it('the SIMD Adam and AdamW updates match the float64 reference: parameters and both moments', () => {
    // Several steps with beta2 close to 1 (where forming 1 − β2 in float32 puts exp_avg_sq 1.3e-5
    // off, relatively, and the parameters up to 1.2e-3), gradients spanning seven orders of
    // magnitude and some exact zeros, odd lengths that leave a scalar tail after the SIMD loop,
    // coupled and decoupled weight decay. The kernel computes in float32 with scalars formed in
    // float64, as PyTorch does: a few float32 roundings (~1e-7) from the reference, so the bounds
    // are 2e-6 — ten times under what the float32 1 − β2 gave. exp_avg_sq is a sum of squares (no
    // cancellation), so it is bounded element by element; exp_avg and p relative to their largest.
    const rng = new Rng(8);
    const lengths = [1, 3, 7, 1003];
    const configs = [
      { betas: [0.9, 0.999] as const, weightDecay: 0.1, lr: 1e-2, eps: 1e-8 },
      { betas: [0.8, 0.9999] as const, weightDecay: 0.03, lr: 3e-3, eps: 1e-6 },
    ];
    for (const [name, backend] of backends) {
      const inner = backend.vectorOps();
      let kernelCalls = 0;
      const ops: VectorOps = {
        ...inner,
        adam: (...args) => {
          const ran = inner.adam(...args);
          if (ran) kernelCalls++;
          return ran;
        },
      };
      for (const Kind of [Adam, AdamW]) {
        for (const config of configs) {
          const what = `${name}, ${Kind.name}, betas ${config.betas.join('/')}`;
          const fast = lengths.map((n, k) => ({ name: `p${k}`, value: ops.alloc(n), grad: ops.alloc(n) as Float32Array | null }));
          const slow = lengths.map((n, k) => ({ name: `p${k}`, value: new Float32Array(n), grad: new Float32Array(n) as Float32Array | null }));
          fast.forEach((slot, k) => {
            for (let i = 0; i < slot.value.length; i++) slot.value[i] = slow[k].value[i] = rng.normal() * 10 ** (rng.uniform() * 4 - 2);
          });
          const a = new Kind(fast, { ...config, vectorOps: ops });
          const b = new Kind(slow, config);
          for (let step = 0; step < 8; step++) {
            fast.forEach((slot, k) => {
              for (let i = 0; i < slot.grad!.length; i++) {
                slot.grad![i] = slow[k].grad![i] = (i + step) % 13 === 5 ? 0 : rng.normal() * 10 ** (rng.uniform() * 7 - 4);
              }
            });
            a.step();
            b.step();
          }
          expect(kernelCalls, `${what}: the kernel ran`).toBe(8 * lengths.length);
          kernelCalls = 0;
          const fastState = a.stateDict().buffers;
          const slowState = b.stateDict().buffers;
          lengths.forEach((_, k) => {
            expect(elementRelError(fastState[`${k}.exp_avg_sq`], slowState[`${k}.exp_avg_sq`]), `${what}: ${k}.exp_avg_sq`).toBeLessThan(2e-6);
            expect(maxRelError(fastState[`${k}.exp_avg`], slowState[`${k}.exp_avg`]), `${what}: ${k}.exp_avg`).toBeLessThan(2e-6);
            expect(maxRelError(fast[k].value, slow[k].value), `${what}: p${k}`).toBeLessThan(2e-6);
            expect(backend.addressOf(fast[k].value)).not.toBeNull();
          });
        }
      }
    }
  });
  it('sums gradient parts in float64, exactly as the reference', () => {
    const backend = backends[0][1];
    const ops = backend.vectorOps();
    const parts = [0, 1, 2].map(() => {
      const a = ops.alloc(1001);
      for (let i = 0; i < a.length; i++) a[i] = Math.fround(Math.sin(i * 7.3) * 10 ** ((i % 7) - 3));
      return a;
    });
    const out = ops.alloc(1001);
    expect(ops.sum(out, parts)).toBe(true);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe(Math.fround(parts[0][i] + parts[1][i] + parts[2][i]));
    expect(ops.sum(out, [new Float32Array(1001)])).toBe(false);
  });
});

describe('memory', () => {
  it('a scope releases what it allocated, and the next scope reuses it', () => {
    const backend = backends[0][1];
    const step = (): void => backend.scope(() => void F.sum(F.mul(F.ones([1000], { backend }), 2)).item());
    step();
    const after1 = backend.memoryStats();
    for (let i = 0; i < 20; i++) step();
    const after21 = backend.memoryStats();
    expect(after21.bytesReserved).toBe(after1.bytesReserved);
    expect(after21.bytesInUse).toBe(after1.bytesInUse);
  });
  it('using a tensor after its scope ended is an error', () => {
    const backend = backends[0][1];
    const escaped = backend.scope(() => F.ones([4], { backend }));
    expect(() => escaped.dataSync()).toThrow(/after the scope/);
  });
  it('holds float32 only', () => {
    expect(() => F.tensor(new Float64Array(2), [2], { backend: backends[0][1] })).toThrow(/float32 only/);
  });
});

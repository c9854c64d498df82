// The wasm backend against the reference CPU kernels: matmul on random shapes (odd sizes that do
// not fit the 4x8 tiles, every transpose, batches), with one and two threads and both kernel
// builds; the other ops through a whole training step; scopes and memory reuse.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import * as F from '../../shared/ops/index.js';
import { buildModel, PRESETS } from '../../shared/nn/index.js';
import { Rng } from '../../shared/util/random.js';
import type { Tensor } from '../../shared/tensor/tensor.js';

const backends: Array<[string, WasmBackend]> = [];
beforeAll(async () => {
  backends.push(['simd, 1 thread', await WasmBackend.create({ flavour: 'simd' })]);
  backends.push(['relaxed-simd, 1 thread', await WasmBackend.create({ flavour: 'relaxed-simd' })]);
  backends.push(['default, 2 threads', await WasmBackend.create({ threads: 2 })]);
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

function on(backend: WasmBackend, t: Tensor): Tensor {
  return F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend });
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
  it('a large product split across threads equals the single-threaded one', () => {
    const rng = new Rng(9);
    const a = F.randn([200, 300], rng, { backend: cpu });
    const b = F.randn([300, 130], rng, { backend: cpu });
    const one = F.matmul(on(backends[1][1], a), on(backends[1][1], b)).dataSync();
    const two = F.matmul(on(backends[2][1], a), on(backends[2][1], b)).dataSync();
    expect(backends[2][1].threads).toBe(2);
    expect(maxRelError(two, one)).toBeLessThan(1e-6);
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

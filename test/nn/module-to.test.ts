// Backend and dtype per model: Module.to / toAsync move every parameter, buffer and gradient in
// place (same tensor objects, names, order, requiresGrad) to another dtype or backend, and the
// moved model computes what it did before; every layer takes `dtype` and `backend` at
// construction; float64 requested on a backend that cannot hold it (wasm) is an error naming the
// backend, never a silent move to the CPU, while float64 without a backend still goes to the CPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { backendHolds, defaultBackend, resolveBackend } from '../../shared/backend/default.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import * as F from '../../shared/ops/index.js';
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Embedding,
  Flatten,
  GRU,
  LayerNorm,
  Linear,
  LSTM,
  Module,
  MultiHeadAttention,
  PositionalEmbedding,
  ReLU,
  RNN,
  Sequential,
  SinusoidalPositions,
  TransformerBlock,
  type LayerPlacement,
} from '../../shared/nn/index.js';
import type { Backend } from '../../shared/backend/backend.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { Rng } from '../../shared/util/random.js';

let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await WasmBackend.create();
});
afterAll(async () => {
  await wasm.close();
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** A copy of `t`'s values as a float32 / float64 tensor on `backend`. */
function on(t: Tensor, backend: Backend, dtype: 'float32' | 'float64' = 'float32'): Tensor {
  return F.tensor(dtype === 'float32' ? Float32Array.from(t.dataSync()) : Float64Array.from(t.dataSync()), t.shape, { backend, dtype });
}

/** An image classifier with a conv, batch norm (buffers, one integral) and two linears. */
function convNet(seed: number, placement: LayerPlacement = {}): Sequential {
  const rng = new Rng(seed);
  return new Sequential(
    new Conv2d(2, 3, 3, rng, { padding: 1, ...placement }),
    new BatchNorm2d(3, placement),
    new ReLU(),
    new Flatten(),
    new Linear(3 * 5 * 5, 7, rng, placement),
    new ReLU(),
    new Linear(7, 4, rng, placement),
  );
}

/** A token model: embedding, fixed positions, a transformer block, an LSTM and a layer norm. */
class SeqNet extends Module {
  readonly embed: Embedding;
  readonly positions: SinusoidalPositions;
  readonly block: TransformerBlock;
  readonly lstm: LSTM;
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(seed: number, placement: LayerPlacement = {}) {
    super();
    const rng = new Rng(seed);
    this.embed = this.registerModule('embed', new Embedding(11, 8, rng, placement));
    this.positions = this.registerModule('positions', new SinusoidalPositions(6, 8, placement));
    this.block = this.registerModule('block', new TransformerBlock(8, 2, rng, placement));
    this.lstm = this.registerModule('lstm', new LSTM(8, 5, rng, { numLayers: 2, ...placement }));
    this.norm = this.registerModule('norm', new LayerNorm(5, placement));
    this.head = this.registerModule('head', new Linear(5, 11, rng, placement));
  }
  forward(ids: Tensor): Tensor {
    const h = this.block.forward(this.positions.forward(this.embed.forward(ids)));
    return this.head.forward(this.norm.forward(this.lstm.forward(h)));
  }
}

const ids = (backend: Backend, dtype: 'float32' | 'float64' = 'float32'): Tensor =>
  F.tensor([1, 4, 2, 9, 0, 10, 3, 3, 7, 5, 8, 6], [2, 6], { backend, dtype });

describe('Module.to: dtype', () => {
  it('float32 → float64 keeps the tensor objects, names, order, requiresGrad and values; forward agrees', () => {
    const model = convNet(1);
    const before = model.stateDict();
    const values = new Map([...before].map(([k, t]) => [k, Float64Array.from(t.dataSync())]));
    const x = F.randn([3, 2, 5, 5], new Rng(2));
    const y32 = F.noGrad(() => model.eval().forward(x));

    expect(model.to({ dtype: 'float64' })).toBe(model);
    const after = model.stateDict();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [k, t] of after) {
      expect(t, k).toBe(before.get(k));
      expect(t.dtype, k).toBe('float64');
      expect(t.backend, k).toBe(cpu);
      expect([...t.dataSync()], k).toEqual([...values.get(k)!]);
    }
    for (const p of model.parameters()) expect(p.requiresGrad).toBe(true);
    for (const [, b] of model.namedBuffers()) expect(b.requiresGrad).toBe(false);
    expect([...model.integerBufferNames()]).toEqual(['1.num_batches_tracked']);
    const y64 = F.noGrad(() => model.forward(on(x, cpu, 'float64')));
    expect(y64.dtype).toBe('float64');
    expect(maxDiff(y64.dataSync(), y32.dataSync())).toBeLessThan(1e-5);

    model.to({ dtype: 'float32' });
    for (const [k, t] of model.stateDict()) expect([...t.dataSync()], k).toEqual([...values.get(k)!]);
  });

  it('a layer field follows the move (the same tensor), so training code holding it keeps working', () => {
    const fc = new Linear(3, 2, new Rng(3));
    const w = fc.weight;
    fc.to({ dtype: 'float64' });
    expect(fc.weight).toBe(w);
    expect(fc.weight.dtype).toBe('float64');
    const y = fc.forward(F.ones([1, 3], { dtype: 'float64' }));
    F.sum(y).backward();
    expect(fc.weight.grad!.dtype).toBe('float64');
  });

  it('moves gradients with the parameters', () => {
    const fc = new Linear(3, 2, new Rng(4));
    F.sum(fc.forward(F.ones([2, 3]))).backward();
    const g = Float64Array.from(fc.weight.grad!.dataSync());
    fc.to(wasm);
    expect(fc.weight.grad!.backend).toBe(wasm);
    expect([...fc.weight.grad!.dataSync()]).toEqual([...g]);
  });

  it('a recurrent layer reports the dtype it was moved to', () => {
    const gru = new GRU(3, 4, new Rng(5));
    gru.to({ dtype: 'float64' });
    expect(gru.dtype).toBe('float64');
    expect(gru.forward(F.ones([2, 3, 3], { dtype: 'float64' })).dtype).toBe('float64');
  });
});

describe('Module.to: backend', () => {
  it('a conv net on wasm computes the CPU forward within 1e-5, in training (batch statistics) and evaluation', () => {
    const ref = convNet(6);
    const model = convNet(6).to(wasm);
    for (const [k, t] of model.stateDict()) expect(t.backend, k).toBe(wasm);
    const x = F.randn([4, 2, 5, 5], new Rng(7));
    expect(maxDiff(F.noGrad(() => model.forward(on(x, wasm))).dataSync(), F.noGrad(() => ref.forward(x)).dataSync())).toBeLessThan(1e-5);
    // The running statistics moved with the model and were updated on wasm.
    const rm = (m: Sequential) => (m.layers[1] as BatchNorm2d).runningMean.dataSync();
    expect(maxDiff(rm(model), rm(ref))).toBeLessThan(1e-6);
    model.eval();
    ref.eval();
    expect(maxDiff(F.noGrad(() => model.forward(on(x, wasm))).dataSync(), F.noGrad(() => ref.forward(x)).dataSync())).toBeLessThan(1e-5);
  });

  it('a token model (embedding, sinusoidal positions, transformer, LSTM) on wasm: forward and gradients agree with the CPU', () => {
    const ref = new SeqNet(8);
    const model = new SeqNet(8).to(wasm);
    const y = model.forward(ids(wasm));
    const yRef = ref.forward(ids(cpu));
    expect(y.backend).toBe(wasm);
    expect(maxDiff(y.dataSync(), yRef.dataSync())).toBeLessThan(1e-5);
    F.sum(F.mul(y, y)).backward();
    F.sum(F.mul(yRef, yRef)).backward();
    const grads = new Map(ref.namedParameters());
    for (const [k, p] of model.namedParameters()) {
      const want = grads.get(k)!.grad!.dataSync();
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      expect(maxDiff(p.grad!.dataSync(), want) / scale, k).toBeLessThan(1e-4);
    }
  });

  it('back to the CPU with to(cpu), and with toAsync', async () => {
    const ref = new SeqNet(9);
    const model = new SeqNet(9).to(wasm).to(cpu);
    for (const [k, t] of model.stateDict()) expect(t.backend, k).toBe(cpu);
    expect(maxDiff(model.forward(ids(cpu)).dataSync(), ref.forward(ids(cpu)).dataSync())).toBe(0);
    const moved = await new SeqNet(9).toAsync({ backend: wasm });
    expect(moved.head.weight.backend).toBe(wasm);
    expect(maxDiff(moved.forward(ids(wasm)).dataSync(), ref.forward(ids(cpu)).dataSync())).toBeLessThan(1e-5);
    await moved.toAsync({ backend: cpu, dtype: 'float64' });
    expect(moved.head.weight.dtype).toBe('float64');
    expect(maxDiff(moved.forward(ids(cpu, 'float64')).dataSync(), ref.forward(ids(cpu)).dataSync())).toBeLessThan(1e-5);
  });

  it('state dict names and order are unchanged by moves', () => {
    const model = new SeqNet(10);
    const names = [...model.stateDict().keys()];
    const params = model.namedParameters().map(([k]) => k);
    model.to(wasm).to({ dtype: 'float32' }).to({ backend: cpu, dtype: 'float64' });
    expect([...model.stateDict().keys()]).toEqual(names);
    expect(model.namedParameters().map(([k]) => k)).toEqual(params);
  });
});

describe('float64 is never sent silently to another backend', () => {
  it('to({ backend: wasm, dtype: float64 }) throws naming the backend, and moves nothing', () => {
    const model = convNet(11);
    expect(() => model.to({ backend: wasm, dtype: 'float64' })).toThrow(/'wasm' backend cannot hold float64/);
    for (const [k, t] of model.stateDict()) {
      expect(t.backend, k).toBe(cpu);
      expect(t.dtype, k).toBe('float32');
    }
  });

  it('to({ dtype: float64 }) on a wasm model throws naming the backend (it stays on wasm)', () => {
    const model = convNet(12).to(wasm);
    expect(() => model.to({ dtype: 'float64' })).toThrow(/^Module\.to: '0\.weight': the 'wasm' backend cannot hold float64/);
    expect(model.parameters()[0].backend).toBe(wasm);
  });

  it('a float32-only backend is never given float64 at construction either', () => {
    const f64 = { backend: wasm, dtype: 'float64' as const };
    const rng = new Rng(13);
    expect(() => new Linear(2, 3, rng, f64)).toThrow(/Linear: the 'wasm' backend cannot hold float64/);
    expect(() => new LayerNorm(3, f64)).toThrow(/LayerNorm: the 'wasm' backend cannot hold float64/);
    expect(() => new BatchNorm1d(3, f64)).toThrow(/BatchNorm1d: the 'wasm' backend cannot hold float64/);
    expect(() => resolveBackend('float64', wasm, 'x')).toThrow(/x: the 'wasm' backend cannot hold float64/);
    expect(backendHolds(wasm, 'float64')).toBe(false);
    expect(backendHolds(wasm, 'float32')).toBe(true);
    expect(backendHolds(cpu, 'float64')).toBe(true);
  });

  it('without a named backend, float64 still goes to the CPU (the default)', () => {
    expect(defaultBackend('float64')).toBe(cpu);
    expect(resolveBackend('float64')).toBe(cpu);
    expect(new Linear(2, 3, new Rng(14), { dtype: 'float64' }).weight.backend).toBe(cpu);
  });
});

describe('every layer takes dtype and backend', () => {
  type Make = (rng: Rng, placement: LayerPlacement) => Module;
  const layers: Array<[string, Make]> = [
    ['Linear', (rng, p) => new Linear(4, 3, rng, p)],
    ['Conv2d', (rng, p) => new Conv2d(2, 3, [3, 2], rng, p)],
    ['BatchNorm1d', (_, p) => new BatchNorm1d(4, p)],
    ['BatchNorm2d', (_, p) => new BatchNorm2d(3, p)],
    ['LayerNorm', (_, p) => new LayerNorm(4, p)],
    ['Embedding', (rng, p) => new Embedding(7, 4, rng, p)],
    ['RNN', (rng, p) => new RNN(3, 4, rng, { numLayers: 2, ...p })],
    ['LSTM', (rng, p) => new LSTM(3, 4, rng, p)],
    ['GRU', (rng, p) => new GRU(3, 4, rng, p)],
    ['MultiHeadAttention', (rng, p) => new MultiHeadAttention(4, 2, rng, p)],
    ['TransformerBlock', (rng, p) => new TransformerBlock(4, 2, rng, p)],
    ['PositionalEmbedding', (rng, p) => new PositionalEmbedding(5, 4, rng, p)],
  ];
  for (const [name, make] of layers) {
    it(`${name}: float64 holds the float32 layer's values (same draws); backend places every tensor`, () => {
      const f32 = make(new Rng(15), {}).stateDict();
      const f64 = make(new Rng(15), { dtype: 'float64' }).stateDict();
      expect([...f64.keys()]).toEqual([...f32.keys()]);
      for (const [k, t] of f64) {
        expect(t.dtype, k).toBe('float64');
        expect(t.backend, k).toBe(cpu);
        expect([...t.dataSync()], k).toEqual([...f32.get(k)!.dataSync()]);
      }
      const onWasm = make(new Rng(15), { backend: wasm }).stateDict();
      for (const [k, t] of onWasm) {
        expect(t.backend, k).toBe(wasm);
        expect([...t.dataSync()], k).toEqual([...f32.get(k)!.dataSync()]);
      }
      const explicitCpu = make(new Rng(15), { backend: cpu, dtype: 'float64' }).stateDict();
      for (const [k, t] of explicitCpu) expect(t.dtype, k).toBe('float64');
    });
  }

  it('SinusoidalPositions builds its table where asked, and follows its input after a move', () => {
    const pe = new SinusoidalPositions(4, 6, { dtype: 'float64' });
    expect(pe.forward(F.zeros([1, 4, 6], { dtype: 'float64' })).dtype).toBe('float64');
    const y = pe.forward(F.zeros([1, 4, 6], { backend: wasm }));
    expect(y.backend).toBe(wasm);
    expect(maxDiff(y.dataSync(), pe.forward(F.zeros([1, 4, 6], { dtype: 'float64' })).dataSync())).toBeLessThan(1e-7);
  });
});

describe('the docs/library.md example ("Backend and dtype per model")', () => {
  it('runs as written there', async () => {
    // The example's code, line for line (imports aside); keep the two in step.
    const wasm = await WasmBackend.create({ threads: 2 });
    const make = (rng: Rng) => new Sequential(new Linear(4, 8, rng), new ReLU(), new Linear(8, 2, rng));

    const fast = make(new Rng(1)).to(wasm);
    const y = fast.forward(F.randn([3, 4], new Rng(2), { backend: wasm }));

    const exact = make(new Rng(1)).to({ dtype: 'float64' });
    const layer = new Linear(4, 8, new Rng(1), { dtype: 'float64', backend: cpu });

    expect(() => fast.to({ dtype: 'float64' })).toThrow(/^Module\.to: '0\.weight': the 'wasm' backend cannot hold float64 \(only the cpu backend holds float64\); /);
    await wasm.close();

    expect(y.backend).toBe(wasm);
    expect(y.shape).toEqual([3, 2]);
    expect(exact.parameters().every((p) => p.dtype === 'float64' && p.backend === cpu)).toBe(true);
    expect([...layer.weight.dataSync()]).toEqual([...exact.parameters()[0].dataSync()]);
  });
});

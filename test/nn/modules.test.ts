// Modules: PyTorch-style naming and layouts, state dicts, initialisation, gradient checks of layers.
import { describe, expect, it } from 'vitest';
import { Dropout, Linear, Sequential, ReLU, buildModel, parseModelSpec, PRESETS, kaimingNormal, xavierUniform } from '../../shared/nn/index.js';
import * as F from '../../shared/ops/index.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

function meanSquare(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s / a.length;
}

describe('Linear and Sequential', () => {
  it('names parameters like torch.nn.Sequential and stores weight as [out, in]', () => {
    const { model } = buildModel(PRESETS.mlp, new Rng(1));
    const names = model.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`);
    expect(names).toEqual(['1.weight:256x784', '1.bias:256', '3.weight:128x256', '3.bias:128', '5.weight:10x128', '5.bias:10']);
    expect(model.parameterCount()).toBe(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  });
  it('initialises like PyTorch: weights and biases in ±1/√in, seeded', () => {
    const a = new Linear(400, 50, new Rng(7));
    const b = new Linear(400, 50, new Rng(7));
    expect([...a.weight.dataSync()]).toEqual([...b.weight.dataSync()]);
    const bound = 1 / Math.sqrt(400);
    const w = a.weight.dataSync();
    expect(Math.max(...w)).toBeLessThanOrEqual(bound);
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-bound);
    // The variance of U(±b) is b²/3.
    const variance = meanSquare(w);
    expect(variance).toBeCloseTo((bound * bound) / 3, 4);
  });
  it('kaiming and xavier have their stated variances', () => {
    const k = kaimingNormal([200, 300], new Rng(1)).dataSync();
    expect(meanSquare(k)).toBeCloseTo(2 / 300, 3);
    const x = xavierUniform([200, 300], new Rng(2)).dataSync();
    expect(meanSquare(x)).toBeCloseTo(2 / 500, 3);
  });
  it('gradient-checks a Linear layer in float64', () => {
    const layer = new Linear(3, 4, new Rng(1));
    const w = F.tensor(Float64Array.from(layer.weight.dataSync()), [4, 3], { requiresGrad: true });
    const b = F.tensor(Float64Array.from(layer.bias!.dataSync()), [4], { requiresGrad: true });
    gradcheck((x, wt, bt) => F.relu(F.linear(x, wt, bt)), [randInput([5, 3], 2), w, b]);
  });
  it('stateDict round-trips into a fresh model and keeps storage identity', () => {
    const a = new Sequential(new Linear(3, 4, new Rng(1)), new ReLU(), new Linear(4, 2, new Rng(2)));
    const b = new Sequential(new Linear(3, 4, new Rng(3)), new ReLU(), new Linear(4, 2, new Rng(4)));
    const storage = b.parameters()[0].dataSync();
    b.loadStateDict(a.stateDict());
    expect(b.parameters()[0].dataSync()).toBe(storage);
    for (const [n, p] of a.stateDict()) expect([...b.stateDict().get(n)!.dataSync()]).toEqual([...p.dataSync()]);
  });
  it('loadStateDict names missing, unexpected and mismatched entries', () => {
    const m = new Sequential(new Linear(3, 4, new Rng(1)));
    const state = new Map([
      ['0.weight', { shape: [4, 2], value: new Float32Array(8) }],
      ['0.extra', { shape: [1], value: new Float32Array(1) }],
    ]);
    expect(() => m.loadStateDict(state)).toThrow(/missing 0\.bias; unexpected 0\.extra; shape mismatch 0\.weight: \[4, 2\] vs \[4, 3\]/);
  });
});

describe('Dropout', () => {
  it('zeroes about p of the activations in training, scales the rest, and is the identity in eval', () => {
    const d = new Dropout(0.25, new Rng(5));
    const x = F.ones([10000]);
    const y = d.forward(x).dataSync();
    const zeros = y.filter((v) => v === 0).length;
    expect(zeros / y.length).toBeGreaterThan(0.23);
    expect(zeros / y.length).toBeLessThan(0.27);
    expect(y.find((v) => v !== 0)).toBeCloseTo(1 / 0.75, 6);
    d.eval();
    expect(d.forward(x)).toBe(x);
  });
  it('passes the gradient through the kept units only', () => {
    const d = new Dropout(0.5, new Rng(9));
    const x = F.tensor(new Float32Array(100).fill(1), [100], { requiresGrad: true });
    const y = d.forward(x);
    F.sum(y).backward();
    expect([...x.grad!.dataSync()]).toEqual([...y.dataSync()]);
  });
});

describe('model specs', () => {
  it('rejects unknown layers and bad fields naming the path', () => {
    expect(() => parseModelSpec({ name: 'x', input: [4], layers: [{ type: 'conv9' }] })).toThrow(/layers\.0/);
    expect(() => parseModelSpec({ name: 'x', input: [4], layers: [{ type: 'linear', out: -3 }] })).toThrow(/layers\.0\.out/);
  });
  it('names an unknown key with the layer and the keys it allows, before any missing field', () => {
    expect(() => parseModelSpec({ name: 'x', input: [1, 28, 28], layers: [{ type: 'conv2d', out_channels: 8, kernel: 3 }] }, 'x.json')).toThrow(
      "x.json: layer 0 (conv2d): unknown key 'out_channels'; allowed keys: type, out, kernel, stride, padding, dilation, bias",
    );
    expect(() => parseModelSpec({ name: 'x', input: [4], layer: [] })).toThrow(/\(root\): unknown key 'layer'; allowed keys: name, input, layers, defaults/);
    expect(() => parseModelSpec({ name: 'x', input: [4], layers: [{ type: 'conv9' }] })).toThrow(/layers\.0\.type: unknown layer type "conv9"; known types: linear, /);
  });
  it('only the last linear layer may leave out its width; the output width must be the number of classes', () => {
    const hidden = { name: 'x', input: [4], layers: [{ type: 'linear' }, { type: 'relu' }, { type: 'linear', out: 3 }] };
    expect(() => parseModelSpec(hidden)).toThrow(/layer 0 \(linear\) has no 'out': only the last layer may leave it out/);
    // Presets and other unparsed specs are checked when built.
    expect(() => buildModel(hidden as never, new Rng(1), { numClasses: 3 })).toThrow(/layer 0 \(linear\) has no 'out'/);
    const narrow = parseModelSpec({ name: 'x', input: [4], layers: [{ type: 'linear', out: 8 }, { type: 'relu' }, { type: 'linear', out: 3 }] });
    expect(() => buildModel(narrow, new Rng(1), { numClasses: 10 })).toThrow(/layer 2 \(linear\) 'out' is 3 but the dataset has 10 classes/);
    expect(buildModel(narrow, new Rng(1), { numClasses: 3 }).outputShape).toEqual([3]);
    expect(buildModel(parseModelSpec({ ...narrow, layers: [{ type: 'linear', out: 8 }, { type: 'linear' }] }), new Rng(1), { numClasses: 10 }).outputShape).toEqual([10]);
  });
  it('fails before training when shapes do not fit, naming the layer and shape', () => {
    const spec = parseModelSpec({ name: 'x', input: [1, 28, 28], layers: [{ type: 'linear', out: 10 }] });
    expect(() => buildModel(spec, new Rng(1))).toThrow(/layer 0 \(linear\) needs a flat input, got \[1, 28, 28\]/);
  });
  it('builds the same parameters from the same seed', () => {
    const a = buildModel(PRESETS.mlp, new Rng(3)).model.parameters()[0].dataSync();
    const b = buildModel(PRESETS.mlp, new Rng(3)).model.parameters()[0].dataSync();
    const c = buildModel(PRESETS.mlp, new Rng(4)).model.parameters()[0].dataSync();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
  it('initialises embeddings and learned positions with the std the spec gives', () => {
    const stdOf = (v: Float32Array | Float64Array): number => {
      let sq = 0;
      for (const x of v) sq += x * x;
      return Math.sqrt(sq / v.length);
    };
    const spec = (std?: number) =>
      parseModelSpec({ name: 'e', input: [16], layers: [{ type: 'embedding', dim: 64, num: 50, ...(std === undefined ? {} : { std }) }, { type: 'positional', kind: 'learned', std: 0.5 }] });
    const named = (std?: number) => new Map(buildModel(spec(std), new Rng(2)).model.namedParameters());
    // 3,200 and 1,024 draws: the sample std is within ~2.5% and ~4.4% (two standard errors).
    expect(stdOf(named().get('0.weight')!.dataSync()) / 1).toBeCloseTo(1, 1); // torch.nn.Embedding's N(0, 1)
    expect(Math.abs(stdOf(named(0.02).get('0.weight')!.dataSync()) / 0.02 - 1)).toBeLessThan(0.05);
    expect(Math.abs(stdOf(named(0.02).get('1.weight')!.dataSync()) / 0.5 - 1)).toBeLessThan(0.08);
    expect(() => parseModelSpec({ name: 'e', input: [16], layers: [{ type: 'embedding', dim: 8, std: -1 }] })).toThrow(/layers\.0\.std/);
    // gpt-tiny starts its token embeddings at GPT-2's 0.02 (see presets.ts for why).
    expect(PRESETS['gpt-tiny'].layers[0]).toMatchObject({ type: 'embedding', std: 0.02 });
  });
});

// backward's onLeafReady: each leaf is reported once, as soon as its gradient is final, the last
// layers' first (what lets a worker send gradient buckets while backward goes on).
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../shared/nn/spec.js';
import { PRESETS } from '../../shared/nn/presets.js';
import { Rng } from '../../shared/util/random.js';
import { computeGradients } from '../../shared/train/classify.js';
import type { Tensor } from '../../shared/tensor/tensor.js';

describe('onLeafReady', () => {
  for (const preset of ['mlp', 'cnn'] as const) {
    it(`${preset}: every parameter once, its gradient already final, the last layer before the first`, () => {
      const { model } = buildModel(PRESETS[preset], new Rng(1), { numClasses: 10 });
      const rng = new Rng(2);
      const n = 5;
      const x = Float32Array.from({ length: n * 784 }, () => rng.uniform());
      const y = Int32Array.from({ length: n }, (_, i) => i % 10);
      const batch = { x, y, size: n, sampleShape: [1, 28, 28] };
      const params = model.namedParameters();
      const order: string[] = [];
      const atReady = new Map<string, Float32Array>();
      const names = new Map<Tensor, string>(params.map(([name, p]) => [p, name]));
      computeGradients(model, batch, 0, n, undefined, {
        onLeafReady: (leaf) => {
          const name = names.get(leaf);
          if (name === undefined) return;
          order.push(name);
          atReady.set(name, (leaf.grad!.dataSync() as Float32Array).slice());
        },
      });
      expect([...order].sort()).toEqual(params.map(([name]) => name).sort());
      for (const [name, p] of params) expect([...atReady.get(name)!], name).toEqual([...(p.grad!.dataSync() as Float32Array)]);
      const last = params.at(-1)![0];
      const first = params[0][0];
      expect(order.indexOf(last)).toBeLessThan(order.indexOf(first));
    });
  }
});

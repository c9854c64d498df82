// The optimizer on the device against the host optimizers: SGD (plain, momentum, Nesterov, weight
// decay), Adam and AdamW, several steps on random parameters and gradients, a parameter without a
// gradient (skipped, its step count not advanced), and gradient clipping by global norm on the
// device against clipGradNorm. Skipped, with the reason printed, where no WebGPU adapter exists.
import { describe, expect, it } from 'vitest';
import * as F from '../../shared/ops/index.js';
import { createOptimizer, type OptimizerName, type OptimizerOptions } from '../../shared/optim/factory.js';
import { DeviceOptimizer } from '../../shared/optim/device-optimizer.js';
import { clipGradNorm } from '../../shared/optim/clip.js';
import { clipGradNormOnDevice } from '../../shared/train/device-state.js';
import { gpuSkipReason, maxRelError, randomTensor, webgpu } from './webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;

suite('the optimizer on the device', () => {
  const shapes = [[7, 13], [1], [257]];
  const cases: Array<[OptimizerName, OptimizerOptions]> = [
    ['sgd', { lr: 0.1 }],
    ['sgd', { lr: 0.05, momentum: 0.9, weightDecay: 1e-2 }],
    ['sgd', { lr: 0.05, momentum: 0.9, nesterov: true }],
    ['adam', { lr: 1e-2 }],
    ['adam', { lr: 1e-2, weightDecay: 0.1, betas: [0.8, 0.99], eps: 1e-6 }],
    ['adamw', { lr: 1e-2, weightDecay: 0.1 }],
  ];
  for (const [name, options] of cases) {
    it(`${name} ${JSON.stringify(options)}: the host optimizer's parameters after 5 steps`, async () => {
      const g = webgpu();
      const hostValues = shapes.map((s, i) => Float32Array.from(randomTensor(s, 10 + i).dataSync()));
      const slots = hostValues.map((value, i) => ({ name: String(i), value, grad: null as Float32Array | null }));
      const host = createOptimizer(name, slots, options);
      const params = hostValues.map((v, i) => {
        const t = F.tensor(Float32Array.from(v), shapes[i], { backend: g });
        t.requiresGrad = true;
        return t;
      });
      const device = new DeviceOptimizer(name, params, options);
      for (let step = 0; step < 5; step++) {
        const grads = shapes.map((s, i) => Float32Array.from(randomTensor(s, 100 * step + i).dataSync()));
        // The last parameter has no gradient on odd steps: it is skipped, and Adam's t does not advance.
        g.scope(() => {
          params.forEach((p, i) => (p.grad = i === 2 && step % 2 === 1 ? null : F.tensor(grads[i], shapes[i], { backend: g })));
          device.lr = options.lr * (1 - 0.1 * step);
          device.step();
          params.forEach((p) => (p.grad = null));
        });
        slots.forEach((s, i) => (s.grad = i === 2 && step % 2 === 1 ? null : grads[i]));
        host.lr = options.lr * (1 - 0.1 * step);
        host.step();
      }
      for (const [i, p] of params.entries()) {
        const got = (await p.data()) as Float32Array;
        expect(maxRelError(got, slots[i].value), `parameter ${i}`).toBeLessThan(2e-6);
      }
      expect(device.stepCount).toBe(5);
    });
  }

  it('clips gradients by their global norm as clipGradNorm does, and leaves small ones alone', async () => {
    const g = webgpu();
    for (const maxNorm of [0.5, 1e6]) {
      const grads = [[30, 7], [13]].map((s, i) => Float32Array.from(randomTensor(s, 7 + i).dataSync()));
      const expected = grads.map((a) => a.slice());
      clipGradNorm(expected.map((grad) => ({ grad })), maxNorm);
      const params = grads.map((a, i) => {
        const t = F.tensor(new Float32Array(a.length), [a.length], { backend: g });
        t.grad = F.tensor(Float32Array.from(grads[i]), [a.length], { backend: g });
        return t;
      });
      clipGradNormOnDevice(params, maxNorm);
      for (const [i, p] of params.entries()) expect(maxRelError((await p.grad!.data()) as Float32Array, expected[i]), `max norm ${maxNorm}`).toBeLessThan(1e-6);
    }
  });
});

// BatchNorm and average pooling: gradient checks in float64, PyTorch's running-statistics rule,
// evaluation mode, names.
import { describe, expect, it } from 'vitest';
import { BatchNorm1d, BatchNorm2d, buildModel, parseModelSpec } from '../../shared/nn/index.js';
import * as F from '../../shared/ops/index.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

describe('BatchNorm', () => {
  it('gradient-checks in training mode (2d, 1d over [N, C] and [N, C, L]), including γ and β', () => {
    const bn2 = new BatchNorm2d(3, { dtype: 'float64' });
    const g = randInput([3], 7, 0.5, 1);
    const b = randInput([3], 8);
    const withAffine = (x: ReturnType<typeof randInput>, w: typeof g, bias: typeof b): ReturnType<typeof randInput> => {
      bn2.weight!.dataSync().set(w.dataSync());
      bn2.bias!.dataSync().set(bias.dataSync());
      return bn2.forward(x);
    };
    gradcheck((x) => withAffine(x, g, b), [randInput([4, 3, 2, 3], 1)]);
    gradcheck((x) => new BatchNorm1d(5, { dtype: 'float64' }).forward(x), [randInput([6, 5], 2)]);
    gradcheck((x) => new BatchNorm1d(2, { dtype: 'float64' }).forward(x), [randInput([3, 2, 4], 3)]);
    // γ and β get gradients like any parameter.
    const x = randInput([4, 3, 2, 2], 4);
    F.sum(F.mul(bn2.forward(x), randInput([4, 3, 2, 2], 5))).backward();
    expect(bn2.weight!.grad).not.toBeNull();
    expect(bn2.bias!.grad).not.toBeNull();
  });
  it('normalises each channel and updates running statistics as PyTorch (unbiased variance, momentum 0.1)', () => {
    const bn = new BatchNorm1d(2, { dtype: 'float64' });
    const x = F.tensor(Float64Array.from([1, 10, 3, 20, 5, 30, 7, 40]), [4, 2]);
    const y = bn.forward(x).dataSync();
    const col0 = [y[0], y[2], y[4], y[6]];
    expect(col0.reduce((s, v) => s + v, 0)).toBeCloseTo(0, 10);
    expect(col0.reduce((s, v) => s + v * v, 0) / 4).toBeCloseTo(1, 4);
    // batch mean of column 0 is 4, biased var 5, unbiased 20/3.
    expect(bn.runningMean.dataSync()[0]).toBeCloseTo(0.4, 12);
    expect(bn.runningVar.dataSync()[0]).toBeCloseTo(0.9 + 0.1 * (20 / 3), 12);
    expect(bn.numBatchesTracked.item()).toBe(1);
    bn.eval();
    const z = bn.forward(x).dataSync();
    expect(z[0]).toBeCloseTo((1 - 0.4) / Math.sqrt(0.9 + 0.1 * (20 / 3) + 1e-5), 10);
  });
  it('has PyTorch names, buffers in the state dict, and refuses the wrong shape', () => {
    const spec = parseModelSpec({ name: 'bn', input: [2, 4, 4], layers: [{ type: 'batchnorm2d' }, { type: 'avgpool2d', kernel: 2 }, { type: 'flatten' }, { type: 'linear', out: 3 }] });
    const { model, outputShape } = buildModel(spec, new Rng(1));
    expect(outputShape).toEqual([3]);
    expect([...model.stateDict().keys()]).toEqual(['0.weight', '0.bias', '3.weight', '3.bias', '0.running_mean', '0.running_var', '0.num_batches_tracked']);
    expect(() => new BatchNorm2d(3).forward(F.zeros([2, 4, 5, 5]))).toThrow(/\[2, 4, 5, 5\]/);
  });
});

describe('avgPool2d', () => {
  it('averages windows (padding counts as zero) and gradient-checks', () => {
    const x = F.tensor(Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), [1, 1, 4, 4]);
    expect([...F.avgPool2d(x, 2).dataSync()]).toEqual([3.5, 5.5, 11.5, 13.5]);
    expect(F.avgPool2d(x, 2, { stride: 2, padding: 1 }).dataSync()[0]).toBe(0.25);
    gradcheck((t) => F.avgPool2d(t, 3, { stride: 2, padding: 1 }), [randInput([2, 2, 5, 6], 3)]);
  });
});

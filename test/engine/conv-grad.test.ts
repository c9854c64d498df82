// Convolution and pooling: finite-difference gradient checks (float64) with stride, padding and
// dilation; forward values against a direct loop; Conv2d layout and the cnn preset's shapes.
import { describe, expect, it } from 'vitest';
import * as F from '../../shared/ops/index.js';
import { buildModel, Conv2d, PRESETS, parseModelSpec } from '../../shared/nn/index.js';
import { Rng } from '../../shared/util/random.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

function directConv(x: Float64Array, xs: number[], w: Float64Array, ws: number[], stride: number, pad: number, dil: number): { out: number[]; shape: number[] } {
  const [n, c, h, wd] = xs;
  const [o, , kh, kw] = ws;
  const oh = Math.floor((h + 2 * pad - dil * (kh - 1) - 1) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - dil * (kw - 1) - 1) / stride) + 1;
  const out: number[] = [];
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = 0;
          for (let ic = 0; ic < c; ic++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * stride - pad + ky * dil;
                const ix = xx * stride - pad + kx * dil;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd) s += x[((b * c + ic) * h + iy) * wd + ix] * w[((oc * c + ic) * kh + ky) * kw + kx];
              }
          out.push(s);
        }
  return { out, shape: [n, o, oh, ow] };
}

describe('conv2d', () => {
  for (const [stride, pad, dil] of [[1, 0, 1], [1, 1, 1], [2, 1, 1], [1, 2, 2], [3, 0, 1]]) {
    it(`matches a direct convolution and gradient-checks (stride ${stride}, padding ${pad}, dilation ${dil})`, () => {
      const x = randInput([2, 3, 7, 6], 1);
      const w = randInput([4, 3, 3, 2], 2);
      const b = randInput([4], 3);
      const y = F.conv2d(x, w, null, { stride, padding: pad, dilation: dil });
      const ref = directConv(x.dataSync() as Float64Array, [2, 3, 7, 6], w.dataSync() as Float64Array, [4, 3, 3, 2], stride, pad, dil);
      expect(y.shape).toEqual(ref.shape);
      const got = y.dataSync();
      ref.out.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 10));
      gradcheck((xi, wi, bi) => F.conv2d(xi, wi, bi, { stride, padding: pad, dilation: dil }), [x, w, b]);
    });
  }
  it('rejects a channel mismatch and a window that does not fit, naming the shapes', () => {
    expect(() => F.conv2d(F.zeros([1, 2, 5, 5]), F.zeros([3, 4, 3, 3]), null)).toThrow(/2 channels.*\[3, 4, 3, 3\] expects 4/);
    expect(() => F.conv2d(F.zeros([1, 1, 2, 2]), F.zeros([1, 1, 3, 3]), null)).toThrow(/does not fit a 2x2 input/);
  });
});

describe('maxPool2d', () => {
  it('takes window maxima and gradient-checks (no ties in random data), with stride and padding', () => {
    const x = F.tensor(Float64Array.from([1, 5, 2, 0, 3, 4, 8, 7, 6, -1, 9, 2, 0, 0, 1, 3]), [1, 1, 4, 4]);
    expect([...F.maxPool2d(x, 2).dataSync()]).toEqual([5, 8, 6, 9]);
    gradcheck((t) => F.maxPool2d(t, 2), [randInput([2, 3, 6, 6], 4)]);
    gradcheck((t) => F.maxPool2d(t, 3, { stride: 2, padding: 1 }), [randInput([1, 2, 7, 5], 5)]);
  });
  it('sends the gradient of a tied window to its first maximum, like PyTorch', () => {
    const x = F.tensor(Float64Array.from([2, 2, 2, 2]), [1, 1, 2, 2], { requiresGrad: true });
    F.sum(F.maxPool2d(x, 2)).backward();
    expect([...x.grad!.dataSync()]).toEqual([1, 0, 0, 0]);
  });
});

describe('convolutional models', () => {
  it('Conv2d stores weight [out, in, kh, kw] and bias [out], initialised in ±1/√fanIn', () => {
    const conv = new Conv2d(3, 8, [3, 5], new Rng(1));
    expect(conv.weight.shape).toEqual([8, 3, 3, 5]);
    expect(conv.bias!.shape).toEqual([8]);
    const bound = 1 / Math.sqrt(3 * 15);
    for (const v of conv.weight.dataSync()) expect(Math.abs(v)).toBeLessThanOrEqual(bound);
  });
  it('the cnn and lenet5 presets build with PyTorch names and produce 10 logits', () => {
    for (const name of ['cnn', 'lenet5']) {
      const { model, outputShape } = buildModel(PRESETS[name], new Rng(1));
      expect(outputShape).toEqual([10]);
      const y = F.noGrad(() => model.forward(F.zeros([2, 1, 28, 28])));
      expect(y.shape).toEqual([2, 10]);
    }
    const names = buildModel(PRESETS.cnn, new Rng(1)).model.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`);
    expect(names).toEqual(['0.weight:32x1x3x3', '0.bias:32', '3.weight:64x32x3x3', '3.bias:64', '7.weight:128x3136', '7.bias:128', '9.weight:10x128', '9.bias:10']);
  });
  it('a spec whose window does not fit fails before training, naming the layer', () => {
    const spec = parseModelSpec({ name: 'x', input: [1, 4, 4], layers: [{ type: 'conv2d', out: 2, kernel: 5 }] });
    expect(() => buildModel(spec, new Rng(1))).toThrow(/layer 0 \(conv2d\).*\[1, 4, 4\]/);
  });
});

// Finite-difference gradient checks (float64) for every primitive and composite op.
import { describe, it } from 'vitest';
import * as F from '../../shared/ops/index.js';
import { gradcheck, randInput } from '../helpers/gradcheck.js';

describe('elementwise primitives', () => {
  const shapes: Array<[string, number[], number[]]> = [
    ['same shape', [3, 4], [3, 4]],
    ['row broadcast', [3, 4], [4]],
    ['column broadcast', [3, 1], [1, 4]],
    ['scalar', [2, 3], []],
    ['rank-3 middle broadcast', [2, 1, 3], [4, 1]],
  ];
  for (const [name, sa, sb] of shapes) {
    it(`add/sub/mul/div with ${name}`, () => {
      gradcheck(F.add, [randInput(sa, 1), randInput(sb, 2)]);
      gradcheck(F.sub, [randInput(sa, 3), randInput(sb, 4)]);
      gradcheck(F.mul, [randInput(sa, 5), randInput(sb, 6)]);
      gradcheck(F.div, [randInput(sa, 7), randInput(sb, 8, 0.3, 2)]);
    });
  }
  it('pow, with tensor and constant exponents', () => {
    gradcheck(F.pow, [randInput([3, 4], 1, 0.2, 1.5), randInput([4], 2, 0.5)]);
    gradcheck((x) => F.pow(x, 3), [randInput([5], 3)]);
    gradcheck((x) => F.pow(x, 0.5), [randInput([5], 4, 0.1, 2)]);
  });
  it('neg, exp, log, sqrt, abs', () => {
    gradcheck(F.neg, [randInput([2, 3], 1)]);
    gradcheck(F.exp, [randInput([2, 3], 2)]);
    gradcheck(F.log, [randInput([2, 3], 3, 0.2, 2)]);
    gradcheck(F.sqrt, [randInput([2, 3], 4, 0.2, 2)]);
    gradcheck(F.abs, [randInput([2, 3], 5, 1, 0)]);
  });
  it('tanh, sigmoid, erf', () => {
    gradcheck(F.tanh, [randInput([3, 3], 1, 2)]);
    gradcheck(F.sigmoid, [randInput([3, 3], 2, 3)]);
    gradcheck(F.erf, [randInput([3, 3], 3, 2)]);
  });
  it('where routes the gradient to the chosen side, with broadcasting', () => {
    const cond = F.gt(randInput([3, 4], 9), 0);
    gradcheck((a, b) => F.where(cond, a, b), [randInput([3, 4], 1), randInput([4], 2)]);
  });
});

describe('reductions', () => {
  const x = (): ReturnType<typeof randInput> => randInput([2, 3, 4], 7);
  for (const axes of [undefined, 0, 1, 2, -1, [0, 2], [0, 1], [1, 2]] as const) {
    for (const keepDims of [false, true]) {
      it(`sum/mean/max over ${JSON.stringify(axes)} keepDims=${keepDims}`, () => {
        gradcheck((t) => F.sum(t, axes, { keepDims }), [x()]);
        gradcheck((t) => F.mean(t, axes, { keepDims }), [x()]);
        gradcheck((t) => F.max(t, axes, { keepDims }), [x()]);
      });
    }
  }
});

describe('matmul', () => {
  it('2-D', () => gradcheck(F.matmul, [randInput([3, 5], 1), randInput([5, 4], 2)]));
  it('batched', () => gradcheck(F.matmul, [randInput([2, 3, 5], 1), randInput([2, 5, 4], 2)]));
  it('batched times shared 2-D, and shared 2-D times batched', () => {
    gradcheck(F.matmul, [randInput([2, 3, 5], 1), randInput([5, 4], 2)]);
    gradcheck(F.matmul, [randInput([3, 5], 3), randInput([2, 2, 5, 4], 4)]);
  });
  for (const [ta, tb] of [[false, true], [true, false], [true, true]] as const) {
    it(`with transposed operands transA=${ta} transB=${tb}`, () => {
      const a = ta ? [6, 5] : [5, 6];
      const b = tb ? [7, 6] : [6, 7];
      gradcheck((x, y) => F.matmulT(x, y, ta, tb), [randInput(a, 1), randInput(b, 2)]);
    });
  }
  it('odd sizes that do not fill the 4x4 tiles', () => gradcheck(F.matmul, [randInput([7, 9], 1), randInput([9, 5], 2)]));
  it('linear, 2-D and 3-D input', () => {
    gradcheck(F.linear, [randInput([4, 3], 1), randInput([5, 3], 2), randInput([5], 3)]);
    gradcheck(F.linear, [randInput([2, 4, 3], 1), randInput([5, 3], 2), randInput([5], 3)]);
  });
});

describe('layout', () => {
  it('reshape, permute, transpose', () => {
    gradcheck((t) => F.reshape(t, [6, -1]), [randInput([2, 3, 4], 1)]);
    gradcheck((t) => F.permute(t, [2, 0, 1]), [randInput([2, 3, 4], 2)]);
    gradcheck((t) => F.transpose(t), [randInput([3, 5], 3)]);
  });
  it('slice and narrow', () => {
    gradcheck((t) => F.slice(t, [0, 1, 1], [2, 2, -1]), [randInput([2, 3, 4], 1)]);
    gradcheck((t) => F.narrow(t, 1, 1, 2), [randInput([2, 4], 2)]);
  });
  it('concat along each axis', () => {
    for (const axis of [0, 1, 2]) {
      const sa = [2, 3, 4];
      const sb = [2, 3, 4];
      sb[axis] = 1;
      gradcheck((a, b) => F.concat([a, b, a], axis), [randInput(sa, 1), randInput(sb, 2)]);
    }
  });
  it('gather with repeated indices accumulates', () => {
    gradcheck((t) => F.gather(t, 0, [2, 0, 2, 1]), [randInput([3, 4], 1)]);
    gradcheck((t) => F.gather(t, 1, [3, 3, 0]), [randInput([2, 4, 2], 2)]);
  });
  it('expand', () => gradcheck((t) => F.expand(t, [3, 2, 4]), [randInput([2, 1], 1)]));
});

describe('composites', () => {
  it('relu, leakyRelu (away from the kink)', () => {
    gradcheck(F.relu, [randInput([4, 5], 1)]);
    gradcheck((t) => F.leakyRelu(t, 0.1), [randInput([4, 5], 2)]);
  });
  it('gelu (erf and tanh forms)', () => {
    gradcheck(F.gelu, [randInput([4, 5], 3, 2)]);
    gradcheck(F.geluTanh, [randInput([4, 5], 4, 2)]);
  });
  it('softmax and logSoftmax over each axis', () => {
    for (const axis of [0, 1, -1]) {
      gradcheck((t) => F.softmax(t, axis), [randInput([3, 4], 5, 3)]);
      gradcheck((t) => F.logSoftmax(t, axis), [randInput([3, 4], 6, 3)]);
    }
  });
  it('crossEntropy, with and without label smoothing', () => {
    gradcheck((t) => F.crossEntropy(t, [1, 0, 3]), [randInput([3, 4], 7)]);
    gradcheck((t) => F.crossEntropy(t, [1, 0, 3], { labelSmoothing: 0.1 }), [randInput([3, 4], 8)]);
  });
  it('mse and bceWithLogits', () => {
    gradcheck(F.mse, [randInput([3, 4], 1), randInput([3, 4], 2)]);
    const target = F.tensor(new Float64Array([0, 1, 1, 0, 0.3, 0.7]), [2, 3]);
    gradcheck((t) => F.bceWithLogits(t, target), [randInput([2, 3], 3, 4)]);
  });
});

/** SGD behaviour beyond the PyTorch reference numbers: validation, zeroGrad, null grads, lr. */

import { describe, expect, it } from 'vitest';
import { SGD } from '../../shared/optim/index.js';
import { makeSlots } from './helpers.js';

describe('SGD', () => {
  it('rejects nesterov without momentum or with dampening', () => {
    const slots = makeSlots([[1, 2]]);
    expect(() => new SGD(slots, { lr: 0.1, nesterov: true })).toThrow(/nesterov requires momentum > 0 and dampening 0, got momentum 0/);
    expect(() => new SGD(slots, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(RangeError);
    expect(() => new SGD(slots, { lr: 0.1, momentum: 0.9, nesterov: true })).not.toThrow();
  });

  it('rejects a grad of the wrong length at construction', () => {
    const slots = makeSlots([[1, 2]]);
    slots[0].grad = new Float32Array(1);
    expect(() => new SGD(slots, { lr: 0.1 })).toThrow(/parameter 0 \(0.weight\) grad has 1 elements but the value has 2/);
  });

  it('rejects bad hyperparameters, naming them', () => {
    const slots = makeSlots([[1]]);
    expect(() => new SGD(slots, { lr: -1 })).toThrow(/lr must be >= 0, got -1/);
    expect(() => new SGD(slots, { lr: Number.NaN })).toThrow(/lr must be a finite number, got NaN/);
    expect(() => new SGD(slots, { lr: 0.1, momentum: -0.5 })).toThrow(/momentum must be >= 0, got -0.5/);
    expect(() => new SGD(slots, { lr: 0.1, weightDecay: -1 })).toThrow(/weightDecay/);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/non-empty/);
    expect(() => new SGD([...slots, ...makeSlots([[2]])], { lr: 0.1 })).toThrow(/'0.weight' appears twice \(indices 0 and 1\)/);
    const opt = new SGD(slots, { lr: 0.1 });
    expect(() => (opt.lr = -0.1)).toThrow(/lr must be >= 0, got -0.1/);
    expect(opt.lr).toBe(0.1);
  });

  it('zeroGrad fills grads with 0 in place and keeps null grads null', () => {
    const slots = makeSlots([[1, 2, 3], [4]]);
    const grad = slots[0].grad;
    grad?.set([5, 6, 7]);
    slots[1].grad = null;
    const opt = new SGD(slots, { lr: 0.1, momentum: 0.9 });
    opt.zeroGrad();
    expect(slots[0].grad).toBe(grad);
    expect([...(slots[0].grad ?? [])]).toEqual([0, 0, 0]);
    expect(slots[1].grad).toBeNull();
  });

  it('skips slots with a null grad, creating no momentum buffer for them', () => {
    const slots = makeSlots([[1, 2], [3, 4]]);
    slots[0].grad?.set([1, 1]);
    slots[1].grad = null;
    const opt = new SGD(slots, { lr: 0.5, momentum: 0.9 });
    opt.step();
    expect([...slots[0].value]).toEqual([0.5, 1.5]);
    expect([...slots[1].value]).toEqual([3, 4]);
    expect(Object.keys(opt.stateDict().buffers)).toEqual(['0.momentum_buffer']);
    expect(opt.stateDict().step).toBe(1);
  });

  it('uses lr as set before each step', () => {
    const slots = makeSlots([[0]]);
    slots[0].grad?.set([1]);
    const opt = new SGD(slots, { lr: 1 });
    opt.step();
    opt.lr = 0.25;
    opt.step();
    expect(slots[0].value[0]).toBe(-1.25);
  });

  it('rejects a grad of the wrong length before changing any parameter', () => {
    const slots = makeSlots([[1, 2], [3, 4]]);
    slots[0].grad?.set([1, 1]);
    const opt = new SGD(slots, { lr: 0.5 });
    slots[1].grad = new Float32Array(3);
    expect(() => opt.step()).toThrow(/parameter 1 \(1.weight\) grad has 3 elements but the value has 2/);
    expect([...slots[0].value]).toEqual([1, 2]);
  });

  it('sees grads replaced on the slot after construction', () => {
    const slots = makeSlots([[1]]);
    const opt = new SGD(slots, { lr: 1 });
    slots[0].grad = Float32Array.of(2);
    opt.step();
    expect(slots[0].value[0]).toBe(-1);
  });
});

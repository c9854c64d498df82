/** stateDict/loadStateDict: bit-identical resumption, copying, and the validation errors. */

import { describe, expect, it } from 'vitest';
import { Adam, AdamW, SGD, type Optimizer, type OptimizerStateDict, type ParamSlot } from '../../shared/optim/index.js';
import { expectBitIdentical, makeSlots, syntheticGrad } from './helpers.js';

const INIT = [
  [0.3, -0.7, 1.2, 0.05, -2, 0.9],
  [1.5, -0.25, 0.6],
  [0.1, 0.2],
];

type Make = (slots: ParamSlot[]) => Optimizer;

const MAKERS: Record<string, Make> = {
  'sgd plain': (s) => new SGD(s, { lr: 0.05 }),
  'sgd momentum + wd': (s) => new SGD(s, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 }),
  'sgd nesterov': (s) => new SGD(s, { lr: 0.05, momentum: 0.9, nesterov: true }),
  adam: (s) => new Adam(s, { lr: 0.01, weightDecay: 0.02 }),
  adamw: (s) => new AdamW(s, { lr: 0.01, betas: [0.8, 0.99] }),
};

/** Grads for step s; parameter 2 has no grad on even steps, so the per-parameter state differs. */
function feed(slots: ParamSlot[], s: number): void {
  slots.forEach((slot, k) => {
    slot.grad = k === 2 && s % 2 === 0 ? null : syntheticGrad(s, k, slot.value.length);
  });
}

/** A JSON round trip of everything but the buffers, as a checkpoint does. */
function throughJson(state: OptimizerStateDict): OptimizerStateDict {
  const { buffers, ...rest } = state;
  return { ...(JSON.parse(JSON.stringify(rest)) as Omit<OptimizerStateDict, 'buffers'>), buffers };
}

describe('resuming from a state dict', () => {
  for (const [name, make] of Object.entries(MAKERS)) {
    it(`${name}: continues bit-identically to an uninterrupted run`, () => {
      const straight = makeSlots(INIT);
      const a = make(straight);
      for (let s = 0; s < 7; s++) {
        feed(straight, s);
        a.step();
      }

      const first = makeSlots(INIT);
      const b = make(first);
      for (let s = 0; s < 3; s++) {
        feed(first, s);
        b.step();
      }
      const state = throughJson(b.stateDict());
      // A fresh optimizer on copies of the parameters, as after loading a checkpoint.
      const resumed = makeSlots(first.map((p) => [...p.value]));
      const c = make(resumed);
      c.loadStateDict(state);
      for (let s = 3; s < 7; s++) {
        feed(resumed, s);
        c.step();
      }
      straight.forEach((p, k) => expectBitIdentical(resumed[k].value, p.value, `${name} param ${k}`));
      expect(c.stateDict().step).toBe(7);
    });
  }

  it('restores hyperparameters, including lr', () => {
    const a = new Adam(makeSlots(INIT), { lr: 0.5, betas: [0.7, 0.9], eps: 1e-4 });
    const b = new Adam(makeSlots(INIT), { lr: 0.001 });
    b.loadStateDict(a.stateDict());
    expect(b.lr).toBe(0.5);
    expect(b.stateDict().hyper).toEqual({ lr: 0.5, beta1: 0.7, beta2: 0.9, eps: 1e-4, weightDecay: 0 });
  });

  it('stateDict returns copies, and loadStateDict copies what it is given', () => {
    const slots = makeSlots(INIT);
    const opt = new SGD(slots, { lr: 0.1, momentum: 0.9 });
    feed(slots, 1);
    opt.step();
    const state = opt.stateDict();
    const saved = state.buffers['0.momentum_buffer'][0];
    state.buffers['0.momentum_buffer'][0] = 1234;
    expect(opt.stateDict().buffers['0.momentum_buffer'][0]).toBe(saved);
    opt.loadStateDict(state);
    state.buffers['0.momentum_buffer'][0] = 5678;
    expect(opt.stateDict().buffers['0.momentum_buffer'][0]).toBe(1234);
  });

  it('a fresh optimizer has no buffers and step 0', () => {
    expect(new AdamW(makeSlots(INIT), { lr: 1 }).stateDict()).toEqual({
      kind: 'adamw',
      step: 0,
      hyper: { lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
      buffers: {},
    });
  });
});

describe('loadStateDict errors', () => {
  function adamState(): { opt: Adam; state: OptimizerStateDict } {
    const slots = makeSlots(INIT);
    const opt = new Adam(slots, { lr: 0.01 });
    feed(slots, 1);
    opt.step();
    return { opt, state: opt.stateDict() };
  }

  function expectRejected(change: (s: OptimizerStateDict) => OptimizerStateDict, message: RegExp): void {
    const { opt, state } = adamState();
    const before = opt.stateDict();
    expect(() => opt.loadStateDict(change(state))).toThrow(message);
    // A rejected dict leaves the optimizer as it was.
    expect(opt.stateDict()).toEqual(before);
  }

  it('names a wrong kind', () => {
    expectRejected((s) => ({ ...s, kind: 'sgd' }), /state dict is for optimizer kind 'sgd', expected 'adam'/);
    const { state } = adamState();
    expect(() => new AdamW(makeSlots(INIT), { lr: 1 }).loadStateDict(state)).toThrow(/AdamW: .*kind 'adam', expected 'adamw'/);
  });

  it('names an unknown buffer name', () => {
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '0.momentum_buffer': new Float32Array(6) } }), /'0.momentum_buffer' has unknown name 'momentum_buffer' \(known: exp_avg, exp_avg_sq, step\)/);
  });

  it('names a malformed buffer key', () => {
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, exp_avg: new Float32Array(6) } }), /buffer key 'exp_avg' is not of the form/);
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '01.exp_avg': new Float32Array(6) } }), /'01.exp_avg'/);
  });

  it('names a buffer of the wrong length', () => {
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '1.exp_avg_sq': new Float32Array(4) } }), /'1.exp_avg_sq' has 4 elements, expected 3/);
  });

  it('names a buffer for a parameter that does not exist', () => {
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '7.exp_avg': new Float32Array(3) } }), /'7.exp_avg' refers to parameter 7, but the optimizer has 3/);
  });

  it('names missing companion buffers', () => {
    expectRejected((s) => {
      const buffers = { ...s.buffers };
      delete buffers['0.exp_avg_sq'];
      return { ...s, buffers };
    }, /buffers for parameter 0 but lacks 0.exp_avg_sq/);
  });

  it('names a buffer that is not a Float32Array', () => {
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '0.exp_avg': new Float64Array(6) as unknown as Float32Array } }), /'0.exp_avg' must be a Float32Array/);
  });

  it('names a bad step count', () => {
    expectRejected((s) => ({ ...s, step: -1 }), /step must be a non-negative integer, got -1/);
    expectRejected((s) => ({ ...s, buffers: { ...s.buffers, '0.step': Float32Array.of(1.5) } }), /'0.step' must be a non-negative integer, got 1.5/);
  });

  it('names missing, unknown, mistyped or out-of-range hyperparameters', () => {
    expectRejected((s) => {
      const hyper = { ...s.hyper };
      delete hyper.eps;
      return { ...s, hyper };
    }, /hyper lacks 'eps'/);
    expectRejected((s) => ({ ...s, hyper: { ...s.hyper, momentum: 0.9 } }), /unknown key 'momentum'/);
    expectRejected((s) => ({ ...s, hyper: { ...s.hyper, lr: true } }), /hyper 'lr' must be a number, got true/);
    expectRejected((s) => ({ ...s, hyper: { ...s.hyper, beta2: 1 } }), /beta2 must be < 1, got 1/);
  });

  it('SGD checks nesterov consistency of loaded hyperparameters', () => {
    const opt = new SGD(makeSlots(INIT), { lr: 0.1, momentum: 0.9, nesterov: true });
    const state = opt.stateDict();
    expect(() => opt.loadStateDict({ ...state, hyper: { ...state.hyper, momentum: 0 } })).toThrow(/nesterov requires momentum > 0/);
  });
});

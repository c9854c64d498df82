/** Adam and AdamW behaviour beyond the PyTorch reference numbers: defaults, validation, skips, precision. */

import { describe, expect, it } from 'vitest';
import { Adam, AdamW } from '../../shared/optim/index.js';
import { makeSlots } from './helpers.js';

describe('Adam and AdamW', () => {
  it('have PyTorch defaults (AdamW weight decay 0.01, Adam 0)', () => {
    const adam = new Adam(makeSlots([[1]]), { lr: 1e-3 });
    const adamw = new AdamW(makeSlots([[1]]), { lr: 1e-3 });
    expect(adam.stateDict().hyper).toEqual({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(adamw.stateDict().hyper).toEqual({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(adam.stateDict().kind).toBe('adam');
    expect(adamw.stateDict().kind).toBe('adamw');
  });

  it('moves each element by about lr on the first step (m̂/√v̂ = ±1)', () => {
    const slots = makeSlots([[1, -1, 0.5]]);
    slots[0].grad?.set([0.3, -2, 1e-3]);
    new Adam(slots, { lr: 0.01 }).step();
    expect(slots[0].value[0]).toBeCloseTo(0.99, 6);
    expect(slots[0].value[1]).toBeCloseTo(-0.99, 6);
    expect(slots[0].value[2]).toBeCloseTo(0.49, 5);
  });

  it('keeps the bias correction accurate for beta2 near 1 (float64 bias corrections)', () => {
    // With beta2 = 0.99999, 1 − beta2^1 = 1e-5; in float32 it would be off by ~0.5%.
    const slots = makeSlots([[0]]);
    slots[0].grad?.set([1]);
    new Adam(slots, { lr: 1, betas: [0.9, 0.99999], eps: 0 }).step();
    expect(slots[0].value[0]).toBeCloseTo(-1, 6);
  });

  it('AdamW decays a parameter even when its gradient is zero, Adam without weight decay does not', () => {
    const a = makeSlots([[2]]);
    const w = makeSlots([[2]]);
    new Adam(a, { lr: 0.1 }).step();
    new AdamW(w, { lr: 0.1, weightDecay: 0.5 }).step();
    expect(a[0].value[0]).toBe(2);
    expect(w[0].value[0]).toBeCloseTo(2 * (1 - 0.05), 6);
  });

  it('skips null grads without advancing that parameter’s step', () => {
    const slots = makeSlots([[1], [1]]);
    const opt = new Adam(slots, { lr: 0.1 });
    slots[0].grad?.set([1]);
    slots[1].grad = null;
    opt.step();
    expect(slots[1].value[0]).toBe(1);
    slots[1].grad = Float32Array.of(1);
    opt.step();
    const state = opt.stateDict();
    expect(state.step).toBe(2);
    expect(state.buffers['0.step'][0]).toBe(2);
    expect(state.buffers['1.step'][0]).toBe(1);
    // Parameter 1's first update is a first step again: exactly lr.
    expect(slots[1].value[0]).toBeCloseTo(0.9, 6);
  });

  it('validates betas, eps and lr, naming the value', () => {
    const slots = makeSlots([[1]]);
    expect(() => new Adam(slots, { lr: 0.1, betas: [1, 0.999] })).toThrow(/beta1 must be < 1, got 1/);
    expect(() => new AdamW(slots, { lr: 0.1, betas: [0.9, -0.1] })).toThrow(/AdamW: beta2 must be >= 0, got -0.1/);
    expect(() => new Adam(slots, { lr: 0.1, eps: -1 })).toThrow(/eps must be >= 0, got -1/);
    expect(() => new Adam(slots, { lr: Infinity })).toThrow(/lr must be a finite number, got Infinity/);
  });

  it('zeroGrad zeroes grads and keeps the moments', () => {
    const slots = makeSlots([[1, 2]]);
    slots[0].grad?.set([1, 2]);
    const opt = new AdamW(slots, { lr: 0.1 });
    opt.step();
    opt.zeroGrad();
    expect([...(slots[0].grad ?? [])]).toEqual([0, 0]);
    expect(opt.stateDict().buffers['0.exp_avg'][1]).toBeCloseTo(0.2, 6);
  });
});

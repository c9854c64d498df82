/** createOptimizer and createSchedule: names, option routing, errors. */

import { describe, expect, it } from 'vitest';
import {
  Adam,
  AdamW,
  createOptimizer,
  createSchedule,
  parseOptimizerName,
  parseScheduleName,
  SGD,
  type OptimizerName,
  type ScheduleName,
} from '../../shared/optim/index.js';
import { makeSlots } from './helpers.js';

describe('createOptimizer', () => {
  it('builds each optimizer with the given options', () => {
    const sgd = createOptimizer('sgd', makeSlots([[1]]), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    expect(sgd).toBeInstanceOf(SGD);
    expect(sgd.stateDict().hyper).toEqual({ lr: 0.1, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 1e-4 });
    const adam = createOptimizer('adam', makeSlots([[1]]), { lr: 1e-3, betas: [0.8, 0.9], eps: 1e-6 });
    expect(adam).toBeInstanceOf(Adam);
    expect(adam.stateDict().hyper).toEqual({ lr: 1e-3, beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0 });
    const adamw = createOptimizer('adamw', makeSlots([[1]]), { lr: 1e-3 });
    expect(adamw).toBeInstanceOf(AdamW);
    expect(adamw.stateDict().hyper.weightDecay).toBe(0.01);
  });

  it('rejects unknown names, listing the known ones', () => {
    expect(() => createOptimizer('rmsprop' as OptimizerName, makeSlots([[1]]), { lr: 1 })).toThrow("unknown optimizer 'rmsprop' (known: sgd, adam, adamw)");
    expect(() => parseOptimizerName('Adam')).toThrow(/known: sgd, adam, adamw/);
    expect(parseOptimizerName('adamw')).toBe('adamw');
  });

  it('rejects options that do not apply to the optimizer', () => {
    expect(() => createOptimizer('adam', makeSlots([[1]]), { lr: 1, momentum: 0.9 })).toThrow("option momentum does not apply to optimizer 'adam'");
    expect(() => createOptimizer('sgd', makeSlots([[1]]), { lr: 1, betas: [0.9, 0.99], eps: 1e-8 })).toThrow("options betas, eps do not apply to optimizer 'sgd'");
    expect(() => createOptimizer('sgd', makeSlots([[1]]), { lr: 1, nesterov: true })).toThrow(/nesterov requires momentum > 0/);
  });
});

describe('createSchedule', () => {
  it('builds constant, step and cosine schedules', () => {
    expect(createSchedule('constant', { base: 0.1, totalSteps: 10 }).lrAt(7)).toBe(0.1);
    const step = createSchedule('step', { base: 1, totalSteps: 100, stepSize: 10 });
    expect(step.lrAt(10)).toBeCloseTo(0.1, 15);
    const cosine = createSchedule('cosine', { base: 1, totalSteps: 10, minLr: 0.1 });
    expect(cosine.lrAt(10)).toBeCloseTo(0.1, 15);
  });

  it('wraps the schedule in a linear warmup when warmupSteps > 0', () => {
    const s = createSchedule('cosine', { base: 1, totalSteps: 100, warmupSteps: 10 });
    expect(s.lrAt(0)).toBeCloseTo(0.1, 15);
    expect(s.lrAt(10)).toBeCloseTo((1 + Math.cos(Math.PI / 10)) / 2, 15);
    expect(createSchedule('constant', { base: 1, totalSteps: 5, warmupSteps: 0 }).lrAt(0)).toBe(1);
  });

  it('rejects unknown names, missing and misplaced options', () => {
    expect(() => createSchedule('linear' as ScheduleName, { base: 1, totalSteps: 1 })).toThrow("unknown learning-rate schedule 'linear' (known: constant, step, cosine)");
    expect(() => parseScheduleName('')).toThrow(/known: constant, step, cosine/);
    expect(() => createSchedule('step', { base: 1, totalSteps: 10 })).toThrow("schedule 'step' needs stepSize");
    expect(() => createSchedule('cosine', { base: 1, totalSteps: 10, gamma: 0.5 })).toThrow("option gamma does not apply to schedule 'cosine'");
    expect(() => createSchedule('constant', { base: 1, totalSteps: 10, warmupSteps: -2 })).toThrow(/warmupSteps must be an integer >= 0, got -2/);
  });
});

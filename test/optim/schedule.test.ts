/** Learning-rate schedules: values at chosen steps and argument validation. */

import { describe, expect, it } from 'vitest';
import { constantLr, cosineLr, linearWarmup, stepLr } from '../../shared/optim/index.js';

describe('schedules', () => {
  it('constantLr', () => {
    const s = constantLr(0.3);
    expect([0, 1, 1000].map((t) => s.lrAt(t))).toEqual([0.3, 0.3, 0.3]);
  });

  it('stepLr decays by gamma every stepSize steps', () => {
    const s = stepLr(1, 10, 0.1);
    expect(s.lrAt(0)).toBe(1);
    expect(s.lrAt(9)).toBe(1);
    expect(s.lrAt(10)).toBeCloseTo(0.1, 15);
    expect(s.lrAt(25)).toBeCloseTo(0.01, 15);
  });

  it('cosineLr goes from base through the midpoint to minLr, then stays there', () => {
    const s = cosineLr(0.2, 100, 0.02);
    expect(s.lrAt(0)).toBe(0.2);
    expect(s.lrAt(50)).toBeCloseTo(0.11, 15);
    expect(s.lrAt(100)).toBeCloseTo(0.02, 15);
    expect(s.lrAt(150)).toBeCloseTo(0.02, 15);
    expect(cosineLr(1, 4).lrAt(1)).toBeCloseTo((1 + Math.SQRT1_2) / 2, 15);
  });

  it('linearWarmup starts at base/warmupSteps by default and reaches the inner schedule at warmupSteps', () => {
    const s = linearWarmup(4, constantLr(1));
    expect(s.lrAt(0)).toBe(0.25);
    expect(s.lrAt(2)).toBeCloseTo(0.25 + 0.75 * 0.5, 15);
    expect(s.lrAt(4)).toBe(1);
    expect(s.lrAt(9)).toBe(1);
  });

  it('linearWarmup multiplies the inner schedule at the same step', () => {
    const inner = stepLr(1, 2, 0.5);
    const s = linearWarmup(4, inner, 0.5);
    expect(s.lrAt(3)).toBeCloseTo(inner.lrAt(3) * (0.5 + 0.5 * 0.75), 15);
    expect(s.lrAt(6)).toBe(inner.lrAt(6));
  });

  it('reject bad arguments with RangeErrors naming the value', () => {
    expect(() => constantLr(-1)).toThrow(/constantLr: lr must be a finite number >= 0, got -1/);
    expect(() => stepLr(1, 0, 0.1)).toThrow(/stepSize must be an integer >= 1, got 0/);
    expect(() => stepLr(1, 2.5, 0.1)).toThrow(/got 2.5/);
    expect(() => stepLr(1, 2, Number.NaN)).toThrow(/gamma .* got NaN/);
    expect(() => cosineLr(1, 0)).toThrow(/totalSteps must be an integer >= 1, got 0/);
    expect(() => cosineLr(0.1, 10, 0.2)).toThrow(/minLr 0.2 is above base 0.1/);
    expect(() => linearWarmup(0, constantLr(1))).toThrow(/warmupSteps must be an integer >= 1, got 0/);
    expect(() => linearWarmup(3, constantLr(1), 0)).toThrow(/startFactor must be in \(0, 1\], got 0/);
    expect(() => constantLr(1).lrAt(-1)).toThrow(RangeError);
    expect(() => cosineLr(1, 10).lrAt(0.5)).toThrow(/step must be a non-negative integer, got 0.5/);
    for (const bad of [Number.NaN, Infinity]) expect(() => constantLr(bad)).toThrow(RangeError);
  });
});

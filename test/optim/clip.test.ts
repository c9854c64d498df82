/** clipGradNorm edge cases (the PyTorch comparison is in torch-reference.test.ts). */

import { describe, expect, it } from 'vitest';
import { clipGradNorm } from '../../shared/optim/index.js';

describe('clipGradNorm', () => {
  it('returns the global norm and scales all grads by maxNorm/(norm + 1e-6)', () => {
    const a = { grad: Float32Array.of(3, 0) };
    const b = { grad: Float32Array.of(0, 4) };
    expect(clipGradNorm([a, b], 1)).toBe(5);
    const scale = 1 / (5 + 1e-6);
    expect(a.grad[0]).toBe(Math.fround(3 * scale));
    expect(b.grad[1]).toBe(Math.fround(4 * scale));
  });

  it('leaves grads alone when the norm is within maxNorm, and ignores null grads', () => {
    const a = { grad: Float32Array.of(3, 4) };
    expect(clipGradNorm([a, { grad: null }], 5.01)).toBe(5);
    expect([...a.grad]).toEqual([3, 4]);
  });

  it('accumulates in float64: no overflow for grads whose squares exceed float32', () => {
    const a = { grad: Float32Array.of(3e30, 4e30) };
    const norm = clipGradNorm([a], 1);
    expect(norm / 5e30).toBeCloseTo(1, 6);
    expect(Math.hypot(a.grad[0], a.grad[1])).toBeCloseTo(1, 5);
  });

  it('returns a non-finite norm and leaves grads untouched', () => {
    const a = { grad: Float32Array.of(1, Number.NaN) };
    const b = { grad: Float32Array.of(1e3) };
    expect(clipGradNorm([a, b], 1)).toBeNaN();
    expect(b.grad[0]).toBe(1e3);
    const c = { grad: Float32Array.of(Infinity, 1) };
    expect(clipGradNorm([c], 1)).toBe(Infinity);
    expect(c.grad[1]).toBe(1);
  });

  it('clips a norm equal to maxNorm slightly, as PyTorch does (the 1e-6 makes the scale just below 1)', () => {
    const a = { grad: Float32Array.of(3, 4) };
    clipGradNorm([a], 5);
    expect(a.grad[0]).toBeLessThan(3);
    expect(a.grad[0]).toBeCloseTo(3, 5);
  });

  it('returns 0 for no grads', () => {
    expect(clipGradNorm([], 1)).toBe(0);
    expect(clipGradNorm([{ grad: null }], 1)).toBe(0);
  });

  it('rejects a maxNorm that is not positive and finite', () => {
    expect(() => clipGradNorm([], 0)).toThrow(/maxNorm must be a positive finite number, got 0/);
    expect(() => clipGradNorm([], Number.NaN)).toThrow(/got NaN/);
    expect(() => clipGradNorm([], Infinity)).toThrow(/got Infinity/);
  });
});

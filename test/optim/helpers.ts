/** Helpers shared by the optimizer tests: parameter slots from plain numbers and float comparisons. */

import { expect } from 'vitest';
import type { ParamSlot } from '../../shared/optim/index.js';

export function makeSlots(values: readonly (readonly number[])[], names?: readonly string[]): ParamSlot[] {
  return values.map((v, i) => ({ name: names?.[i] ?? `${i}.weight`, value: Float32Array.from(v), grad: new Float32Array(v.length) }));
}

/** Sets each slot's grad from `grads` (null: no grad), reusing the existing array where there is one. */
export function setGrads(slots: ParamSlot[], grads: readonly (readonly number[] | null)[]): void {
  slots.forEach((slot, i) => {
    const g = grads[i];
    if (g === null) slot.grad = null;
    else if (slot.grad === null) slot.grad = Float32Array.from(g);
    else slot.grad.set(g);
  });
}

/** |actual − expected| ≤ tol·max(1, |expected|) elementwise, with the failing index in the message. */
export function expectClose(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol * Math.max(1, Math.abs(expected[i])))) {
      expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${err}, tolerance ${tol})`);
    }
  }
}

/** Bitwise equality of two float32 arrays (distinguishes -0 from 0 and NaN payloads). */
export function expectBitIdentical(a: Float32Array, b: Float32Array, what: string): void {
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), what).toBe(true);
}

/** A deterministic pseudo-gradient for step s, parameter k, element j. */
export function syntheticGrad(s: number, k: number, length: number): Float32Array {
  const g = new Float32Array(length);
  for (let j = 0; j < length; j++) g[j] = Math.sin(0.9 * s + 1.7 * k + 0.61 * j) * (j % 3 === 0 ? 2.5 : 0.3);
  return g;
}

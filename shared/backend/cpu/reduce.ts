/**
 * CPU reductions (sum, max) over any set of axes. The input is viewed as [outer, r, inner] for each
 * contiguous run of reduced axes; non-adjacent runs are reduced one after another, last first.
 * Sums accumulate in float64 — a float32 running sum over thousands of terms drifts visibly.
 */

import type { ReduceOp } from '../backend.js';
import { allocArray, dtypeOf, type FloatArray } from '../../tensor/dtype.js';
import { shapeSize, type Shape } from '../../tensor/shape.js';

function reduceBlock(op: ReduceOp, a: FloatArray, outer: number, r: number, inner: number, into?: FloatArray): FloatArray {
  const out = into ?? allocArray(dtypeOf(a), outer * inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * r;
      if (op === 'sum') {
        let s = 0;
        for (let i = 0; i < r; i++) s += a[base + i];
        out[o] = s;
      } else {
        let m = -Infinity;
        for (let i = 0; i < r; i++) {
          const v = a[base + i];
          if (v > m || Number.isNaN(v)) m = v;
          if (Number.isNaN(m)) break;
        }
        out[o] = m;
      }
    }
    return out;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * r * inner;
    if (op === 'sum') {
      acc.fill(0);
      for (let i = 0; i < r; i++) {
        const row = base + i * inner;
        for (let j = 0; j < inner; j++) acc[j] += a[row + j];
      }
    } else {
      acc.fill(-Infinity);
      for (let i = 0; i < r; i++) {
        const row = base + i * inner;
        for (let j = 0; j < inner; j++) {
          const v = a[row + j];
          if (v > acc[j] || Number.isNaN(v)) acc[j] = v;
        }
      }
    }
    out.set(acc, o * inner);
  }
  return out;
}

/** Reduces `axes`; the result goes to `into` when given (it must have the reduced size). */
export function reduceKernel(op: ReduceOp, a: FloatArray, shape: Shape, axes: readonly number[], into?: FloatArray): FloatArray {
  if (axes.length === 0) {
    if (!into) return a.slice();
    into.set(a);
    return into;
  }
  // Group the sorted axes into runs of adjacent axes.
  const runs: Array<[number, number]> = [];
  for (const ax of axes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === ax) last[1] = ax + 1;
    else runs.push([ax, ax + 1]);
  }
  let current = a;
  let curShape = [...shape];
  for (let k = runs.length - 1; k >= 0; k--) {
    const [from, to] = runs[k];
    const outer = shapeSize(curShape.slice(0, from));
    const r = shapeSize(curShape.slice(from, to));
    const inner = shapeSize(curShape.slice(to));
    if (r === 0 && op === 'max') throw new RangeError(`max over an empty axis of shape [${shape.join(', ')}]`);
    current = reduceBlock(op, current, outer, r, inner, k === 0 ? into : undefined);
    curShape = [...curShape.slice(0, from), ...curShape.slice(to)];
  }
  return current;
}

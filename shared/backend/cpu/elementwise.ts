/**
 * CPU elementwise kernels: unary maps, broadcasting binary ops and `where`.
 *
 * Broadcasting is done by "rows": the output is walked as a list of contiguous rows (its last,
 * merged dimension) and each input is read with its own stride along that row (1, or 0 when it is
 * broadcast). Adjacent dimensions that are contiguous for every operand are merged first, so the
 * common cases — same shape, scalar operand, bias added to every row — are a single tight loop.
 * The op switch sits outside each row loop so the inner loop stays monomorphic.
 */

import type { BinaryOp, UnaryOp } from '../backend.js';
import { allocArray, dtypeOf, type FloatArray } from '../../tensor/dtype.js';
import { broadcastStrides, shapeSize, type Shape } from '../../tensor/shape.js';
import { erf32, erf64 } from './erf.js';

export function unaryKernel(op: UnaryOp, a: FloatArray, into?: FloatArray): FloatArray {
  const out = into ?? allocArray(dtypeOf(a), a.length);
  const n = a.length;
  switch (op) {
    case 'neg':
      for (let i = 0; i < n; i++) out[i] = -a[i];
      break;
    case 'exp':
      for (let i = 0; i < n; i++) out[i] = Math.exp(a[i]);
      break;
    case 'log':
      for (let i = 0; i < n; i++) out[i] = Math.log(a[i]);
      break;
    case 'sqrt':
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(a[i]);
      break;
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = Math.tanh(a[i]);
      break;
    case 'sigmoid':
      // Written so that exp never overflows: for x < 0 use e^x / (1 + e^x) with e^x <= 1.
      for (let i = 0; i < n; i++) {
        const x = a[i];
        if (x >= 0) out[i] = 1 / (1 + Math.exp(-x));
        else {
          const e = Math.exp(x);
          out[i] = e / (1 + e);
        }
      }
      break;
    case 'erf':
      if (out instanceof Float32Array) for (let i = 0; i < n; i++) out[i] = erf32(a[i]);
      else for (let i = 0; i < n; i++) out[i] = erf64(a[i]);
      break;
    case 'abs':
      for (let i = 0; i < n; i++) out[i] = Math.abs(a[i]);
      break;
    case 'sign':
      for (let i = 0; i < n; i++) out[i] = Math.sign(a[i]);
      break;
  }
  return out;
}

function binaryRow(op: BinaryOp, out: FloatArray, o: number, a: FloatArray, ai: number, sa: number, b: FloatArray, bi: number, sb: number, n: number): void {
  switch (op) {
    case 'add':
      if (sa === 1 && sb === 1) for (let j = 0; j < n; j++) out[o + j] = a[ai + j] + b[bi + j];
      else for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] + b[bi + j * sb];
      return;
    case 'sub':
      if (sa === 1 && sb === 1) for (let j = 0; j < n; j++) out[o + j] = a[ai + j] - b[bi + j];
      else for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] - b[bi + j * sb];
      return;
    case 'mul':
      if (sa === 1 && sb === 1) for (let j = 0; j < n; j++) out[o + j] = a[ai + j] * b[bi + j];
      else for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] * b[bi + j * sb];
      return;
    case 'div':
      for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] / b[bi + j * sb];
      return;
    case 'pow':
      for (let j = 0; j < n; j++) out[o + j] = Math.pow(a[ai + j * sa], b[bi + j * sb]);
      return;
    case 'gt':
      for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] > b[bi + j * sb] ? 1 : 0;
      return;
    case 'ge':
      for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] >= b[bi + j * sb] ? 1 : 0;
      return;
    case 'eq':
      for (let j = 0; j < n; j++) out[o + j] = a[ai + j * sa] === b[bi + j * sb] ? 1 : 0;
      return;
  }
}

/**
 * Merges adjacent output dimensions that every operand walks contiguously (or broadcasts
 * entirely), so that the row loop is as long as possible. Returns the merged shape and strides.
 */
export function mergeDims(outShape: Shape, strides: number[][]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const merged: number[][] = strides.map(() => []);
  for (let d = 0; d < outShape.length; d++) {
    const size = outShape[d];
    if (size === 1) continue; // a dimension of 1 carries no iteration
    const last = shape.length - 1;
    const canMerge = last >= 0 && strides.every((s, t) => merged[t][last] === s[d] * size);
    if (canMerge) {
      shape[last] *= size;
      strides.forEach((s, t) => (merged[t][last] = s[d]));
    } else {
      shape.push(size);
      strides.forEach((s, t) => merged[t].push(s[d]));
    }
  }
  if (shape.length === 0) {
    shape.push(1);
    merged.forEach((m) => m.push(0));
  }
  return { shape, strides: merged };
}

/** Calls `row(outOffset, offsets…, rowLength, rowStrides…)` for every row of the merged iteration space. */
function forEachRow(outShape: Shape, inputShapes: readonly Shape[], row: (o: number, offsets: number[], n: number, rowStrides: number[]) => void): void {
  const { shape, strides } = mergeDims(outShape, inputShapes.map((s) => broadcastStrides(s, outShape)));
  const rank = shape.length;
  const n = shape[rank - 1];
  const rowStrides = strides.map((s) => s[rank - 1]);
  const rows = shapeSize(shape) / n;
  const idx = new Array<number>(rank - 1).fill(0);
  const offsets = strides.map(() => 0);
  for (let r = 0; r < rows; r++) {
    row(r * n, offsets, n, rowStrides);
    // Odometer increment over the outer dimensions.
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      for (let t = 0; t < offsets.length; t++) offsets[t] += strides[t][d];
      if (idx[d] < shape[d]) break;
      for (let t = 0; t < offsets.length; t++) offsets[t] -= strides[t][d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function binaryKernel(op: BinaryOp, a: FloatArray, aShape: Shape, b: FloatArray, bShape: Shape, outShape: Shape, into?: FloatArray): FloatArray {
  const out = into ?? allocArray(dtypeOf(a), shapeSize(outShape));
  if (out.length === 0) return out;
  forEachRow(outShape, [aShape, bShape], (o, [ai, bi], n, [sa, sb]) => binaryRow(op, out, o, a, ai, sa, b, bi, sb, n));
  return out;
}

export function whereKernel(cond: FloatArray, condShape: Shape, a: FloatArray, aShape: Shape, b: FloatArray, bShape: Shape, outShape: Shape, into?: FloatArray): FloatArray {
  const out = into ?? allocArray(dtypeOf(a), shapeSize(outShape));
  if (out.length === 0) return out;
  forEachRow(outShape, [condShape, aShape, bShape], (o, [ci, ai, bi], n, [sc, sa, sb]) => {
    for (let j = 0; j < n; j++) out[o + j] = cond[ci + j * sc] !== 0 ? a[ai + j * sa] : b[bi + j * sb];
  });
  return out;
}

/**
 * CPU data-movement kernels: permute, slice and its adjoint pad, concat, gather and its adjoint
 * scatterAdd. Each copies whole contiguous runs where the layout allows and walks the rest with an
 * odometer over the outer dimensions.
 */

import { allocArray, dtypeOf, type FloatArray } from '../../tensor/dtype.js';
import { shapeSize, stridesOf, type Shape } from '../../tensor/shape.js';

export function permuteKernel(a: FloatArray, shape: Shape, perm: readonly number[], into?: FloatArray): FloatArray {
  const rank = shape.length;
  const out = into ?? allocArray(dtypeOf(a), a.length);
  if (a.length === 0) return out;
  const inStrides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]);
  const src = perm.map((p) => inStrides[p]); // input stride along each output dimension
  if (rank === 2 && perm[0] === 1) {
    // Plain 2-D transpose, in 32x32 blocks so that both sides stay in cache.
    const [rows, cols] = outShape;
    const B = 32;
    for (let i0 = 0; i0 < rows; i0 += B) {
      for (let j0 = 0; j0 < cols; j0 += B) {
        const i1 = Math.min(rows, i0 + B);
        const j1 = Math.min(cols, j0 + B);
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[i * cols + j] = a[i + j * rows];
      }
    }
    return out;
  }
  const last = rank - 1;
  const n = outShape[last];
  const sLast = src[last];
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let o = 0; o < out.length; o += n) {
    for (let j = 0; j < n; j++) out[o + j] = a[off + j * sLast];
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      off += src[d];
      if (idx[d] < outShape[d]) break;
      off -= src[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Copies the block [begin, begin + size) between a dense `big` array and a dense `small` one. */
function copyBlock(big: FloatArray, bigShape: Shape, small: FloatArray, size: readonly number[], begin: readonly number[], toSmall: boolean): void {
  const rank = bigShape.length;
  if (small.length === 0) return;
  if (rank === 0) {
    if (toSmall) small[0] = big[0];
    else big[0] = small[0];
    return;
  }
  const bigStrides = stridesOf(bigShape);
  const last = rank - 1;
  const n = size[last];
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let d = 0; d < rank; d++) off += begin[d] * bigStrides[d];
  for (let o = 0; o < small.length; o += n) {
    if (toSmall) small.set(big.subarray(off, off + n), o);
    else big.set(small.subarray(o, o + n), off);
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      off += bigStrides[d];
      if (idx[d] < size[d]) break;
      off -= bigStrides[d] * size[d];
      idx[d] = 0;
    }
  }
}

export function sliceKernel(a: FloatArray, shape: Shape, begin: readonly number[], size: readonly number[], into?: FloatArray): FloatArray {
  const out = into ?? allocArray(dtypeOf(a), shapeSize(size));
  copyBlock(a, shape, out, size, begin, true);
  return out;
}

export function padKernel(a: FloatArray, shape: Shape, outShape: Shape, begin: readonly number[], into?: FloatArray): FloatArray {
  const out = into ? into.fill(0) : allocArray(dtypeOf(a), shapeSize(outShape));
  copyBlock(out, outShape, a, shape, begin, false);
  return out;
}

export function concatKernel(inputs: readonly FloatArray[], shapes: readonly Shape[], axis: number, into?: FloatArray): FloatArray {
  const outer = shapeSize(shapes[0].slice(0, axis));
  const chunks = shapes.map((s) => shapeSize(s.slice(axis)));
  const rowLen = chunks.reduce((x, y) => x + y, 0);
  const out = into ?? allocArray(dtypeOf(inputs[0]), outer * rowLen);
  for (let o = 0; o < outer; o++) {
    let pos = o * rowLen;
    for (let t = 0; t < inputs.length; t++) {
      const c = chunks[t];
      out.set(inputs[t].subarray(o * c, o * c + c), pos);
      pos += c;
    }
  }
  return out;
}

export function gatherKernel(a: FloatArray, shape: Shape, axis: number, indices: Int32Array, into?: FloatArray): FloatArray {
  const outer = shapeSize(shape.slice(0, axis));
  const dim = shape[axis];
  const inner = shapeSize(shape.slice(axis + 1));
  const out = into ?? allocArray(dtypeOf(a), outer * indices.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < indices.length; t++) {
      const src = (o * dim + indices[t]) * inner;
      out.set(a.subarray(src, src + inner), (o * indices.length + t) * inner);
    }
  }
  return out;
}

export function scatterAddKernel(a: FloatArray, shape: Shape, axis: number, indices: Int32Array, outShape: Shape, into?: FloatArray): FloatArray {
  const outer = shapeSize(shape.slice(0, axis));
  const dim = outShape[axis];
  const inner = shapeSize(shape.slice(axis + 1));
  const out = into ? into.fill(0) : allocArray(dtypeOf(a), shapeSize(outShape));
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < indices.length; t++) {
      const dst = (o * dim + indices[t]) * inner;
      const src = (o * indices.length + t) * inner;
      for (let j = 0; j < inner; j++) out[dst + j] += a[src + j];
    }
  }
  return out;
}

/**
 * Shape and data-movement primitives: reshape, expand, permute/transpose, slice, concat, gather
 * (index select). Their backward rules only move gradients back to where the values came from.
 */

import { broadcastShapes, formatShape, normalizeAxis, sameShape, shapeSize, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { checkCompatible, record } from './record.js';
import { sumTo } from './reduce.js';

/** Same data, new shape (one dimension may be -1). Shares the buffer: tensors are dense. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const target = [...shape];
  const unknown = target.indexOf(-1);
  if (unknown >= 0) {
    const known = target.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    if (known === 0 || x.size % known !== 0) throw new RangeError(`reshape: cannot infer -1 in ${formatShape(shape)} for ${x.size} elements`);
    target[unknown] = x.size / known;
  }
  if (shapeSize(target) !== x.size || target.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`reshape: cannot reshape ${formatShape(x.shape)} (${x.size} elements) to ${formatShape(shape)}`);
  }
  if (sameShape(target, x.shape)) return x;
  const inShape = x.shape;
  return record('reshape', [x], x.buffer, target, (g) => [reshape(g, inShape)]);
}

/** Broadcasts `x` to `shape`; backward sums the gradient over the broadcast dimensions. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes(x.shape, shape);
  if (!sameShape(out, shape)) throw new RangeError(`expand: ${formatShape(x.shape)} does not broadcast to ${formatShape(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const zero = x.backend.fill(x.dtype, 1, 0);
  const buffer = x.backend.binary('add', x.buffer, x.shape, zero, [], out);
  const inShape = x.shape;
  return record('expand', [x], buffer, out, (g) => [sumTo(g, inShape)]);
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const rank = x.rank;
  const p = perm.map((a) => normalizeAxis(a, rank));
  if (p.length !== rank || new Set(p).size !== rank) throw new RangeError(`permute: ${formatShape(perm)} is not a permutation of ${rank} axes`);
  if (p.every((a, i) => a === i)) return x;
  const outShape = p.map((a) => x.shape[a]);
  const inverse = new Array<number>(rank);
  p.forEach((a, i) => (inverse[a] = i));
  return record('permute', [x], x.backend.permute(x.buffer, x.shape, p), outShape, (g) => [permute(g, inverse)]);
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  const a = normalizeAxis(axis0, x.rank);
  const b = normalizeAxis(axis1, x.rank);
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** The block starting at `begin` with extent `size` (-1: to the end). */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  if (begin.length !== x.rank || size.length !== x.rank) throw new RangeError(`slice: begin ${formatShape(begin)} and size ${formatShape(size)} must both have rank ${x.rank}`);
  const sz = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  for (let i = 0; i < x.rank; i++) {
    if (!Number.isInteger(begin[i]) || !Number.isInteger(sz[i]) || begin[i] < 0 || sz[i] < 0 || begin[i] + sz[i] > x.shape[i]) {
      throw new RangeError(`slice: begin ${formatShape(begin)} size ${formatShape(size)} is out of bounds for shape ${formatShape(x.shape)}`);
    }
  }
  const inShape = x.shape;
  return record('slice', [x], x.backend.slice(x.buffer, x.shape, begin, sz), sz, (g) => [
    new Tensor(g.backend, g.backend.pad(g.buffer, g.shape, inShape, begin), inShape),
  ]);
}

/** `length` entries of `axis` starting at `start`. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis(axis, x.rank);
  const begin = x.shape.map((_, i) => (i === a ? start : 0));
  const size = x.shape.map((d, i) => (i === a ? length : d));
  return slice(x, begin, size);
}

export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new RangeError('concat: no tensors given');
  checkCompatible('concat', tensors);
  const first = tensors[0];
  const a = normalizeAxis(axis, first.rank);
  for (const t of tensors) {
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new RangeError(`concat: shapes ${tensors.map((x) => formatShape(x.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const outShape = [...first.shape];
  outShape[a] = tensors.reduce((s, t) => s + t.shape[a], 0);
  const buffer = first.backend.concat(tensors.map((t) => t.buffer), tensors.map((t) => t.shape), a);
  const extents = tensors.map((t) => t.shape[a]);
  return record('concat', tensors, buffer, outShape, (g, needed) => {
    let offset = 0;
    return extents.map((len, i) => {
      const part = needed[i] ? narrow(g, a, offset, len) : null;
      offset += len;
      return part;
    });
  });
}

/** Index select: the entries `indices` of `axis` (repeats allowed). Backward scatters-adds. */
export function gather(x: Tensor, axis: number, indices: Int32Array | readonly number[]): Tensor {
  const a = normalizeAxis(axis, x.rank);
  const idx = indices instanceof Int32Array ? indices : Int32Array.from(indices);
  const dim = x.shape[a];
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] < 0 || idx[i] >= dim) throw new RangeError(`gather: index ${idx[i]} (position ${i}) is out of range for axis ${a} of size ${dim}`);
  }
  const outShape = [...x.shape];
  outShape[a] = idx.length;
  const inShape = x.shape;
  return record('gather', [x], x.backend.gather(x.buffer, x.shape, a, idx), outShape, (g) => [
    new Tensor(g.backend, g.backend.scatterAdd(g.buffer, g.shape, a, idx, inShape), inShape),
  ]);
}

/** Removes the dimensions of size 1 at `axis`, or all of them. */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normalizeAxis(axis, x.rank);
  if (x.shape[a] !== 1) throw new RangeError(`squeeze: axis ${a} of ${formatShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis(axis, x.rank + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** Collapses dimensions `startAxis`..end into one (PyTorch's flatten(start_dim)). */
export function flatten(x: Tensor, startAxis = 1): Tensor {
  const a = normalizeAxis(startAxis, x.rank);
  return reshape(x, [...x.shape.slice(0, a), shapeSize(x.shape.slice(a))]);
}

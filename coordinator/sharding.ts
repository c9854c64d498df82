/**
 * Splitting a step's batch between workers: contiguous pieces of the batch's index list, sized in
 * proportion to each worker's weight (its measured throughput, or 1 each) by the largest-remainder
 * method, so the sizes add up exactly and the split is deterministic for given weights.
 */

export function splitSizes(total: number, weights: readonly number[]): number[] {
  if (weights.length === 0) throw new RangeError('cannot split a batch between no workers');
  const sane = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
  const sum = sane.reduce((a, b) => a + b, 0);
  const norm = sum > 0 ? sane.map((w) => w / sum) : sane.map(() => 1 / sane.length);
  const exact = norm.map((w) => w * total);
  const sizes = exact.map(Math.floor);
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) sizes[order[k].i]++;
  return sizes;
}

/** Cuts `indices` into contiguous pieces of the given sizes. */
export function splitIndices(indices: Int32Array, sizes: readonly number[]): Int32Array[] {
  const pieces: Int32Array[] = [];
  let at = 0;
  for (const n of sizes) {
    pieces.push(indices.slice(at, at + n));
    at += n;
  }
  if (at !== indices.length) throw new RangeError(`split sizes add up to ${at}, the batch has ${indices.length} samples`);
  return pieces;
}

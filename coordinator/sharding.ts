/**
 * Splitting a step's batch between workers: contiguous pieces of the batch's index list, sized in
 * proportion to each worker's weight (its measured throughput, or 1 each) by the largest-remainder
 * method, so the sizes add up exactly and the split is a pure function of the total and the
 * weights (ties go to the earlier worker).
 *
 * Every worker gets at least one sample whenever there are at least as many samples as workers:
 * a worker whose weight would round to nothing still gets a piece, so it keeps being measured
 * and a single slow measurement cannot idle it for the rest of the run. With fewer samples than
 * workers, the heaviest workers (the earlier ones among equals) get one sample each.
 */

export function splitSizes(total: number, weights: readonly number[]): number[] {
  const n = weights.length;
  if (n === 0) throw new RangeError('cannot split a batch between no workers');
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`cannot split ${total} samples`);
  let sane = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
  if (sane.every((w) => w === 0)) sane = sane.map(() => 1);
  const sizes = new Array<number>(n).fill(0);

  if (total < n) {
    const heaviest = sane.map((w, i) => ({ w, i })).sort((a, b) => b.w - a.w || a.i - b.i);
    for (let k = 0; k < total; k++) sizes[heaviest[k].i] = 1;
    return sizes;
  }

  // Workers whose proportional quota is below one sample are held at one, and the rest of the
  // batch is shared among the others in proportion to their weights; holding some at one lowers
  // the others' quotas, so repeat until every remaining quota is at least one. (The remaining
  // quotas add up to the remaining samples, at least one per remaining worker, so the largest is
  // at least one: the heaviest remaining worker is never held, whatever the float rounding.)
  const atOne = new Array<boolean>(n).fill(false);
  let quotas: number[] = [];
  for (;;) {
    const left = total - atOne.filter(Boolean).length;
    const weight = sane.reduce((s, w, i) => (atOne[i] ? s : s + w), 0);
    quotas = sane.map((w, i) => (atOne[i] ? 1 : (w * left) / weight));
    let heaviest = -1;
    for (let i = 0; i < n; i++) if (!atOne[i] && (heaviest < 0 || quotas[i] > quotas[heaviest])) heaviest = i;
    const below = quotas.map((q, i) => !atOne[i] && i !== heaviest && q < 1);
    if (!below.includes(true)) break;
    below.forEach((b, i) => b && (atOne[i] = true));
  }

  // Largest remainder over the workers not held at one.
  for (let i = 0; i < n; i++) sizes[i] = atOne[i] ? 1 : Math.max(1, Math.floor(quotas[i]));
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const order = quotas
    .map((q, i) => ({ i, r: q - Math.floor(q) }))
    .filter(({ i }) => !atOne[i])
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) sizes[order[k].i]++;
  // Only float rounding at the edge of a quota of one could overshoot; take it back from the end.
  for (let k = order.length - 1; left < 0; k = (k - 1 + order.length) % order.length) {
    if (sizes[order[k].i] > 1) {
      sizes[order[k].i]--;
      left++;
    }
  }
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

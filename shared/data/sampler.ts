/**
 * Epoch ordering for training: seeded per-epoch permutations, the split of an epoch into
 * batch index ranges, and a small sampler that yields each batch's sample indices.
 */

import { Rng } from '../util/random.js';

/** murmur3's 32-bit finaliser: a bijective scramble of a 32-bit value. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkCount(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
}

/** The Rng seed for one epoch of a run seeded with `seed`; mixes both so that nearby pairs give unrelated streams. */
export function epochSeed(seed: number, epoch: number): number {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  checkCount('epoch', epoch);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return mix32(mix32(mix32(lo) ^ hi) ^ mix32(epoch + 0x5bd1e995));
}

/** The sample order of `epoch`: a permutation of 0..size-1, the same for the same (seed, epoch). */
export function epochPermutation(size: number, seed: number, epoch: number): Int32Array {
  checkCount('size', size);
  return new Rng(epochSeed(seed, epoch)).permutation(size);
}

/** Splits 0..size-1 into [start, end) ranges of batchSize; the short last range is dropped when dropLast. */
export function batchRanges(size: number, batchSize: number, dropLast: boolean): Array<[number, number]> {
  checkCount('size', size);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < size; start += batchSize) {
    const end = Math.min(start + batchSize, size);
    if (dropLast && end - start < batchSize) break;
    ranges.push([start, end]);
  }
  return ranges;
}

export interface BatchSamplerOptions {
  readonly size: number;
  readonly batchSize: number;
  /** Shuffle each epoch with epochPermutation (default true); otherwise samples come in order. */
  readonly shuffle?: boolean;
  /** Skip the last batch when it is short (default false). */
  readonly dropLast?: boolean;
  readonly seed: number;
}

/** Yields the sample indices of each batch of an epoch. */
export class BatchSampler {
  readonly size: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  private readonly ranges: Array<[number, number]>;

  constructor(opts: BatchSamplerOptions) {
    this.size = opts.size;
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.seed = opts.seed;
    this.ranges = batchRanges(opts.size, opts.batchSize, this.dropLast);
    if (this.shuffle) epochSeed(opts.seed, 0); // validates the seed up front
  }

  /** Batches per epoch. */
  get numBatches(): number {
    return this.ranges.length;
  }

  /**
   * The batches of `epoch`, starting at batch `startBatch` (to resume mid-epoch). Each yielded
   * array is a view into the epoch's order; copy it to keep it past the epoch.
   */
  epoch(epoch: number, startBatch = 0): IterableIterator<Int32Array> {
    checkCount('epoch', epoch);
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > this.ranges.length) {
      throw new RangeError(`startBatch must be an integer in [0, ${this.ranges.length}], got ${startBatch}`);
    }
    const order = this.shuffle ? epochPermutation(this.size, this.seed, epoch) : identity(this.size);
    return this.batchesOf(order, startBatch);
  }

  private *batchesOf(order: Int32Array, startBatch: number): Generator<Int32Array, void, undefined> {
    for (let b = startBatch; b < this.ranges.length; b++) {
      const [start, end] = this.ranges[b];
      yield order.subarray(start, end);
    }
  }
}

function identity(n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

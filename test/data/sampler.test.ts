/**
 * Tests for epoch ordering: seeded permutations, batch ranges and the batch sampler.
 */

import { describe, expect, it } from 'vitest';
import { BatchSampler, batchRanges, epochPermutation } from '../../shared/data/sampler.js';

function isPermutation(p: Int32Array, n: number): boolean {
  const seen = new Uint8Array(n);
  for (const v of p) {
    if (v < 0 || v >= n || seen[v]) return false;
    seen[v] = 1;
  }
  return p.length === n;
}

describe('epochPermutation', () => {
  it('is a permutation, the same for the same seed and epoch', () => {
    const a = epochPermutation(1000, 42, 3);
    expect(isPermutation(a, 1000)).toBe(true);
    expect(Array.from(epochPermutation(1000, 42, 3))).toEqual(Array.from(a));
  });

  it('differs across epochs and across seeds', () => {
    const e0 = Array.from(epochPermutation(1000, 42, 0));
    expect(Array.from(epochPermutation(1000, 42, 1))).not.toEqual(e0);
    expect(Array.from(epochPermutation(1000, 43, 0))).not.toEqual(e0);
    // seed*K + epoch style collisions must not happen for neighbouring pairs.
    expect(Array.from(epochPermutation(1000, 0, 1))).not.toEqual(Array.from(epochPermutation(1000, 1, 0)));
  });

  it('rejects a bad epoch or size', () => {
    expect(() => epochPermutation(10, 1, -1)).toThrow('epoch must be a non-negative integer, got -1');
    expect(() => epochPermutation(2.5, 1, 0)).toThrow(RangeError);
  });
});

describe('batchRanges', () => {
  it('splits with and without the short last batch', () => {
    expect(batchRanges(10, 4, false)).toEqual([[0, 4], [4, 8], [8, 10]]);
    expect(batchRanges(10, 4, true)).toEqual([[0, 4], [4, 8]]);
    expect(batchRanges(8, 4, true)).toEqual([[0, 4], [4, 8]]);
    expect(batchRanges(0, 4, false)).toEqual([]);
    expect(() => batchRanges(10, 0, false)).toThrow('batchSize must be a positive integer, got 0');
  });
});

describe('BatchSampler', () => {
  it('covers a shuffled epoch exactly once, deterministically', () => {
    const s = new BatchSampler({ size: 103, batchSize: 10, seed: 5 });
    expect(s.numBatches).toBe(11);
    const batches = [...s.epoch(2)].map((b) => Array.from(b));
    expect(batches.map((b) => b.length)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    const flat = batches.flat();
    expect(isPermutation(Int32Array.from(flat), 103)).toBe(true);
    expect(flat).toEqual(Array.from(epochPermutation(103, 5, 2)));
    expect([...s.epoch(3)].map((b) => Array.from(b)).flat()).not.toEqual(flat);
  });

  it('keeps order without shuffle, drops the last short batch, and resumes mid-epoch', () => {
    const s = new BatchSampler({ size: 7, batchSize: 3, shuffle: false, dropLast: true, seed: 0 });
    expect([...s.epoch(0)].map((b) => Array.from(b))).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect([...s.epoch(0, 1)].map((b) => Array.from(b))).toEqual([[3, 4, 5]]);
    expect(() => s.epoch(0, 3)).toThrow('startBatch must be an integer in [0, 2], got 3');
  });
});

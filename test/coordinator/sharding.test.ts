// Apportioning a batch between workers: exact sums, proportional shares by the largest-remainder
// method, at least one sample for every worker, and throughput estimates that one slow shard
// cannot sink.
import { describe, expect, it } from 'vitest';
import { splitIndices, splitSizes } from '../../coordinator/sharding.js';
import { StepRound } from '../../coordinator/step-round.js';
import { THROUGHPUT_EMA, WorkerLink } from '../../coordinator/worker-link.js';
import type { Connection } from '../../coordinator/transport.js';
import { Rng } from '../../shared/util/random.js';

const sum = (a: readonly number[]): number => a.reduce((s, x) => s + x, 0);

/** Hamilton's method without the lower bound, for comparison. */
function plainLargestRemainder(total: number, weights: readonly number[]): number[] {
  const w = sum(weights);
  const q = weights.map((x) => (x * total) / w);
  const sizes = q.map(Math.floor);
  const order = q.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0, left = total - sum(sizes); left > 0; k++, left--) sizes[order[k].i]++;
  return sizes;
}

describe('splitSizes', () => {
  it('is the largest-remainder apportionment when every quota is at least one sample', () => {
    expect(splitSizes(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(splitSizes(100, [3, 1])).toEqual([75, 25]);
    // quotas 14.29, 28.57, 57.14: floors 14 + 28 + 57 = 99, the one left goes to the largest remainder (.57)
    expect(splitSizes(100, [1, 2, 4])).toEqual([14, 29, 57]);
    expect(splitSizes(128, [5, 3, 2, 2])).toEqual(plainLargestRemainder(128, [5, 3, 2, 2]));
  });

  it('gives equal weights equal shares, the earlier workers taking the odd samples', () => {
    expect(splitSizes(101, [1, 1])).toEqual([51, 50]);
    expect(splitSizes(35, Array(16).fill(1))).toEqual([3, 3, 3, ...Array(13).fill(2)]);
    expect(splitSizes(35, Array(16).fill(0.37))).toEqual(splitSizes(35, Array(16).fill(1)));
  });

  it('never rounds a worker down to nothing while the batch has a sample for every worker', () => {
    // The reported run: 32 workers, one batch of 128, most measured 100x slower than the rest.
    const weights = Array.from({ length: 32 }, (_, i) => (i < 11 ? 100 : 1));
    expect(plainLargestRemainder(128, weights).filter((n) => n === 0)).toHaveLength(21);
    const sizes = splitSizes(128, weights);
    expect(sum(sizes)).toBe(128);
    expect(sizes.slice(11)).toEqual(Array(21).fill(1));
    // The fast eleven share the other 107 samples evenly: 10 each, three of them 11.
    expect(sizes.slice(0, 11)).toEqual([...Array(8).fill(10), ...Array(3).fill(9)]);
  });

  it('holds a worker at one sample and apportions the rest among the others in proportion', () => {
    // quota of the light worker 64 * 0.001 / 3.001 < 1; the others share 63 as 2 : 1 = 42 : 21
    expect(splitSizes(64, [2, 1, 0.001])).toEqual([42, 21, 1]);
    // Holding one at one lowers the others' quotas below one in turn: they are held too.
    expect(splitSizes(4, [100, 1, 1, 1])).toEqual([1, 1, 1, 1]);
    expect(splitSizes(5, [100, 1, 1, 1])).toEqual([2, 1, 1, 1]);
  });

  it('treats zero, negative and non-finite weights as the lightest, and all of them as equal', () => {
    expect(splitSizes(7, [0, 0])).toEqual([4, 3]);
    expect(splitSizes(10, [NaN, 1, -3, Infinity])).toEqual([1, 7, 1, 1]);
    expect(splitSizes(6, [NaN, NaN, NaN])).toEqual([2, 2, 2]);
  });

  it('with fewer samples than workers, gives one each to the heaviest (the earlier among equals)', () => {
    expect(splitSizes(2, [1, 1, 1])).toEqual([1, 1, 0]);
    expect(splitSizes(2, [1, 3, 2])).toEqual([0, 1, 1]);
    expect(splitSizes(0, [1, 2])).toEqual([0, 0]);
  });

  it('refuses no workers and impossible totals', () => {
    expect(() => splitSizes(3, [])).toThrow(RangeError);
    expect(() => splitSizes(-1, [1])).toThrow(RangeError);
    expect(() => splitSizes(2.5, [1])).toThrow(RangeError);
  });

  it('random weights: the sizes add up, everyone gets one, and each share is within one sample of its quota', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 1000; trial++) {
      const n = 1 + Math.floor(rng.uniform() * 40);
      const total = n + Math.floor(rng.uniform() * 300);
      // Throughputs spread over four orders of magnitude, some exactly equal.
      const weights = Array.from({ length: n }, () => (rng.uniform() < 0.2 ? 1 : 10 ** (4 * rng.uniform() - 2)));
      const sizes = splitSizes(total, weights);
      expect(sum(sizes)).toBe(total);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
      expect(splitSizes(total, weights)).toEqual(sizes); // a pure function of its inputs
      // The workers held at one: those whose quota of what the held ones leave is below one.
      const held = weights.map(() => false);
      for (let changed = true; changed; ) {
        changed = false;
        const left = total - held.filter(Boolean).length;
        const free = sum(weights.filter((_, i) => !held[i]));
        weights.forEach((w, i) => {
          if (!held[i] && (w * left) / free < 1) held[i] = changed = true;
        });
      }
      const left = total - held.filter(Boolean).length;
      const free = sum(weights.filter((_, i) => !held[i]));
      weights.forEach((w, i) => {
        if (held[i]) expect(sizes[i]).toBe(1);
        else expect(Math.abs(sizes[i] - (w * left) / free)).toBeLessThan(1);
      });
      // A heavier worker never gets fewer samples than a lighter one.
      const byWeight = weights.map((w, i) => ({ w, s: sizes[i] })).sort((a, b) => a.w - b.w);
      expect(byWeight.every((x, k) => k === 0 || x.w === byWeight[k - 1].w || x.s >= byWeight[k - 1].s)).toBe(true);
    }
  });

  it('splitIndices cuts contiguous pieces in order and checks the sizes', () => {
    const idx = Int32Array.from([5, 6, 7, 8, 9]);
    expect(splitIndices(idx, [2, 0, 3]).map((p) => [...p])).toEqual([[5, 6], [], [7, 8, 9]]);
    expect(() => splitIndices(idx, [2, 2])).toThrow(RangeError);
  });
});

function link(id: number): WorkerLink {
  return new WorkerLink({ id } as unknown as Connection, '', false, 1);
}

describe('WorkerLink throughput', () => {
  it('ignores the first shard (warm-up), then keeps an exponential moving average', () => {
    const w = link(1);
    w.recordThroughput(64, 6400); // dataset load and kernel compilation: not counted
    expect(w.throughput).toBe(0);
    w.recordThroughput(64, 32);
    expect(w.throughput).toBe(2);
    w.recordThroughput(64, 16);
    expect(w.throughput).toBeCloseTo((1 - THROUGHPUT_EMA) * 2 + THROUGHPUT_EMA * 4, 12);
  });

  it('one very slow shard lowers the estimate by at most the EMA weight', () => {
    const w = link(1);
    w.recordThroughput(10, 1);
    for (let i = 0; i < 5; i++) w.recordThroughput(10, 10);
    expect(w.throughput).toBeCloseTo(1, 12);
    w.recordThroughput(10, 100_000);
    expect(w.throughput).toBeGreaterThan(1 - THROUGHPUT_EMA);
  });
});

describe('throughput balancing over many steps (simulated workers)', () => {
  it('keeps every worker measured, so a worker measured slow once gets its share back', () => {
    // 16 workers, the last four twice as fast; worker 3 has one step 200x slower than it is.
    const speeds = Array.from({ length: 16 }, (_, i) => (i >= 12 ? 2 : 1)); // samples per ms
    const workers = speeds.map((_, i) => link(i + 1));
    const batch = Int32Array.from({ length: 160 }, (_, i) => i);
    const history: number[][] = [];
    for (let step = 0; step < 60; step++) {
      const measured = workers.filter((w) => w.throughput > 0);
      const mean = measured.length ? sum(measured.map((w) => w.throughput)) / measured.length : 1;
      const round = new StepRound(step, step, batch);
      const shards = round.dispatch(workers.map((w) => ({ id: w.id, weight: w.throughput > 0 ? w.throughput : mean })), 0);
      const sizes = workers.map((w) => sum(shards.filter((s) => s.workerId === w.id).map((s) => s.indices.length)));
      history.push(sizes);
      expect(shards).toHaveLength(16); // every worker computes a shard, every step
      expect(sum(sizes)).toBe(160);
      for (const s of shards) {
        const k = s.workerId! - 1;
        const ms = s.indices.length / speeds[k];
        workers[k].recordThroughput(s.indices.length, step === 5 && k === 3 ? 200 * ms : ms);
      }
    }
    expect(Math.min(...history[6])).toBeGreaterThanOrEqual(1);
    expect(history[6][3]).toBeLessThan(history[4][3]); // the slow measurement cost it samples...
    // ...and ten-odd steps later the shares are back in proportion to speed: 8 and 16 of 160.
    expect(history[59]).toEqual([...Array(12).fill(8), ...Array(4).fill(16)]);
  });
});

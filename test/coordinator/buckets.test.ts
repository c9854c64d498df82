// Gradient buckets: the plan (from the last parameter back, capped), and a round's per-bucket
// accounting: each group of samples counts a bucket once, copies and redone pieces included.
import { describe, expect, it } from 'vitest';
import { RoundBuckets } from '../../coordinator/buckets.js';
import { StepRound } from '../../coordinator/step-round.js';
import { bucketRange, planBuckets, validBucketPlan } from '../../shared/protocol/buckets.js';

describe('planBuckets', () => {
  it('grows each bucket backwards until the next parameter would pass the cap', () => {
    // The mlp preset's gradients in bytes: 1.weight, 1.bias, 3.weight, 3.bias, 5.weight, 5.bias.
    const mlp = [802_816, 1024, 131_072, 512, 5120, 40];
    expect(planBuckets(mlp, 256 * 1024)).toEqual([0, 1]);
    expect(planBuckets(mlp, 64 * 1024)).toEqual([0, 1, 2, 3]);
    expect(planBuckets(mlp, 0)).toEqual([0]);
    expect(planBuckets(mlp, 10 * 1024 * 1024)).toEqual([0]);
    expect(planBuckets([], 1024)).toEqual([0]);
    // A parameter larger than the cap is a bucket of its own.
    expect(planBuckets([10, 5000, 10], 100)).toEqual([0, 1, 2]);
    expect(bucketRange([0, 1, 2, 3], 6, 3)).toEqual({ start: 3, end: 6 });
  });
  it('a plan from a welcome is checked against the model', () => {
    expect(validBucketPlan([0, 2, 4], 6)).toBeNull();
    expect(validBucketPlan([1, 2], 6)).toMatch(/start at parameter 0/);
    expect(validBucketPlan([0, 3, 3], 6)).toMatch(/ascend/);
    expect(validBucketPlan([0, 6], 6)).toMatch(/the model has 6/);
  });
});

describe('RoundBuckets', () => {
  const g = (v: number): Float32Array[] => [new Float32Array([v])];
  it('completes a bucket when the samples that delivered it add up to the batch; copies and redone pieces do not count twice', () => {
    const round = new StepRound(0, 0, Int32Array.from({ length: 6 }, (_, i) => i));
    const rb = new RoundBuckets(round, 2);
    const [a, b] = round.dispatch([{ id: 1, weight: 1 }, { id: 2, weight: 1 }], 0);
    expect(rb.add(a, 1, g(1))).toBe('added');
    const copy = round.speculate(a, 3, 1);
    expect(rb.add(copy, 1, g(9))).toBe('duplicate');
    // b's worker delivers bucket 1, then fails: its samples are redone by new pieces, which
    // must not count bucket 1 again, but deliver bucket 0.
    expect(rb.add(b, 1, g(2))).toBe('complete');
    expect(rb.complete).toEqual([false, true]);
    round.release(2);
    const pieces = round.dispatch([{ id: 1, weight: 1 }, { id: 3, weight: 1 }], 2);
    expect(pieces.map((p) => p.parent)).toEqual([b.id, b.id]);
    expect(rb.add(pieces[0], 1, g(5))).toBe('duplicate');
    expect(rb.add(copy, 0, g(3))).toBe('added');
    expect(rb.add(a, 0, g(8))).toBe('duplicate');
    expect(rb.add(pieces[0], 0, g(4))).toBe('added');
    expect(rb.add(pieces[1], 0, g(6))).toBe('complete');
    expect(rb.allComplete).toBe(true);
    // Summed in group order: a's group, b's group, then the pieces'.
    expect(rb.contributions(1).map((x) => x[0][0])).toEqual([1, 2]);
    expect(rb.contributions(0).map((x) => x[0][0])).toEqual([3, 4, 6]);
  });
});

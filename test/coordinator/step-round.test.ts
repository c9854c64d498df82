// Sharding and the step round: every sample of a batch contributes exactly once, whatever fails.
import { describe, expect, it } from 'vitest';
import { splitSizes } from '../../coordinator/sharding.js';
import { StepRound } from '../../coordinator/step-round.js';
import { averageBuffers, sumInto } from '../../coordinator/aggregate.js';

describe('splitSizes', () => {
  it('splits in proportion to weights and adds up exactly', () => {
    expect(splitSizes(101, [1, 1])).toEqual([51, 50]);
    expect(splitSizes(100, [3, 1])).toEqual([75, 25]);
    expect(splitSizes(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(splitSizes(2, [1, 1, 1])).toEqual([1, 1, 0]);
    expect(splitSizes(7, [0, 0])).toEqual([4, 3]);
  });
});

describe('StepRound', () => {
  it('redistributes a failed worker’s shard so each sample is covered exactly once', () => {
    const indices = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
    const round = new StepRound(0, 0, indices);
    const first = round.dispatch([{ id: 1, weight: 1 }, { id: 2, weight: 1 }], 0);
    expect(first.map((s) => s.indices.length)).toEqual([5, 5]);
    expect(round.release(2)).toBe(1);
    const redo = round.dispatch([{ id: 1, weight: 1 }], 0);
    expect(redo).toHaveLength(1);
    for (const s of [...first.slice(0, 1), ...redo]) {
      s.status = 'done';
      s.result = { samples: s.indices.length, computeMs: 1, grads: [], loss: 0, correct: 0 };
    }
    expect(round.complete).toBe(true);
    const used = round.shards.filter((s) => s.status === 'done').flatMap((s) => [...s.indices]).sort();
    expect(used).toEqual([...indices]);
  });
  it('copies a late shard: the first result of the pair is used, the other discarded, each sample counted once', () => {
    const indices = Int32Array.from({ length: 9 }, (_, i) => i);
    const result = (n: number, loss: number) => ({ samples: n, computeMs: 1, grads: [], loss, correct: 0 });
    for (const winner of ['copy', 'original'] as const) {
      const round = new StepRound(0, 0, indices);
      const [a, b, c] = round.dispatch([{ id: 1, weight: 1 }, { id: 2, weight: 1 }, { id: 3, weight: 1 }], 0);
      round.finish(a, result(3, 1));
      round.finish(b, result(3, 2));
      expect(round.hasCopy(c)).toBe(false);
      const copy = round.speculate(c, 1, 10);
      expect(copy).toMatchObject({ group: c.group, speculative: true, workerId: 1, status: 'assigned' });
      expect([...copy.indices]).toEqual([...c.indices]);
      expect(round.hasCopy(c)).toBe(true);
      expect(round.hasCopy(copy)).toBe(true);
      expect(round.complete).toBe(false);
      const [won, lost] = winner === 'copy' ? [copy, c] : [c, copy];
      expect(round.finish(won, result(3, 3)).discarded).toEqual([lost]);
      expect(lost.status).toBe('discarded');
      expect(round.complete).toBe(true);
      // Summed in group order, whichever member won: a, b, then c's group.
      expect(round.contributions().map((r) => r.loss)).toEqual([1, 2, 3]);
      expect(round.completed().flatMap((s) => [...s.indices]).sort((x, y) => x - y)).toEqual([...indices]);
    }
  });
  it('a released shard whose copy still runs is discarded, not redone; released again with no copy, it is redone', () => {
    const round = new StepRound(0, 0, Int32Array.from({ length: 4 }, (_, i) => i));
    const [a, b] = round.dispatch([{ id: 1, weight: 1 }, { id: 2, weight: 1 }], 0);
    round.finish(a, { samples: 2, computeMs: 1, grads: [], loss: 0, correct: 0 });
    const copy = round.speculate(b, 1, 5);
    expect(round.release(2)).toBe(1);
    expect(b.status).toBe('discarded');
    expect(round.pending()).toHaveLength(0);
    // Now the copy's worker goes too: nothing covers the samples, so they are redone.
    expect(round.release(1)).toBe(1);
    expect(copy.status).toBe('pending');
    const redo = round.dispatch([{ id: 3, weight: 1 }], 6);
    expect(redo.map((s) => [...s.indices])).toEqual([[...b.indices]]);
    round.finish(redo[0], { samples: 2, computeMs: 1, grads: [], loss: 0, correct: 0 });
    expect(round.complete).toBe(true);
    expect(round.completed().flatMap((s) => [...s.indices]).sort()).toEqual([0, 1, 2, 3]);
    expect(() => round.speculate(b, 3, 7)).toThrow(/discarded, not assigned/);
  });
  it('reports overdue shards', () => {
    const round = new StepRound(0, 0, new Int32Array([1, 2]));
    round.dispatch([{ id: 1, weight: 1 }], 1000);
    expect(round.overdue(1500, 1000)).toHaveLength(0);
    expect(round.overdue(2500, 1000)).toHaveLength(1);
  });
});

describe('sumInto', () => {
  it('sums the shards’ contributions (each already scaled by 1/N) in shard order', () => {
    const slots = [{ name: 'w', value: new Float32Array(2), grad: null }];
    sumInto(slots, [
      { samples: 3, computeMs: 1, grads: [new Float32Array([0.75, 1.5])] },
      { samples: 1, computeMs: 1, grads: [new Float32Array([1.25, 1.5])] },
    ]);
    expect([...slots[0].grad!]).toEqual([2, 3]);
  });
});

describe('averageBuffers', () => {
  it('averages the workers\u2019 buffers weighted by their samples', () => {
    const target = [new Float32Array([0, 0])];
    averageBuffers(target, [
      { samples: 3, computeMs: 1, grads: [], buffers: [new Float32Array([1, 10])] },
      { samples: 1, computeMs: 1, grads: [], buffers: [new Float32Array([5, 2])] },
    ]);
    expect([...target[0]]).toEqual([2, 8]);
  });
});

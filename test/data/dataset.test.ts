/**
 * Tests for the in-memory image dataset, subset views, trainValSplit and buffer reuse in batch().
 */

import { describe, expect, it } from 'vitest';
import { ImageClassificationDataset, SubsetDataset, trainValSplit, type Dataset } from '../../shared/data/dataset.js';

/** n samples of shape [1, 2, 2]; sample i has all pixels equal to i*10 and label i % 3. */
function tiny(n: number): ImageClassificationDataset {
  const pixels = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) pixels.fill((i * 10) % 256, i * 4, i * 4 + 4);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return new ImageClassificationDataset({ name: 'tiny', pixels, labels, sampleShape: [1, 2, 2], numClasses: 3 });
}

function pixelOf(ds: Dataset, index: number): number {
  return ds.batch([index]).x[0];
}

describe('ImageClassificationDataset', () => {
  it('gathers samples and scales pixels to [0, 1]', () => {
    const ds = tiny(26);
    const b = ds.batch([25, 0, 3]);
    expect(b.size).toBe(3);
    expect(b.sampleShape).toEqual([1, 2, 2]);
    expect(b.x.length).toBe(12);
    expect(Array.from(b.y)).toEqual([1, 0, 0]);
    expect(b.x[0]).toBeCloseTo(250 / 255, 6);
    expect(b.x[4]).toBe(0);
    expect(b.x[8]).toBeCloseTo(30 / 255, 6);
  });

  it('reuses the provided buffers and returns views of exactly the batch size', () => {
    const ds = tiny(10);
    const out = { x: new Float32Array(40), y: new Int32Array(10) };
    const bx = out.x;
    const by = out.y;
    const b = ds.batch([1, 2, 3], out);
    expect(b.x.buffer).toBe(bx.buffer);
    expect(b.y.buffer).toBe(by.buffer);
    expect(b.x.length).toBe(12);
    expect(b.y.length).toBe(3);
    const full = ds.batch([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], out);
    expect(full.x).toBe(bx);
    expect(full.y).toBe(by);
    expect(out.x).toBe(bx);
  });

  it('grows buffers that are too small and stores them back into out', () => {
    const ds = tiny(10);
    const out = { x: new Float32Array(4), y: new Int32Array(1) };
    const b = ds.batch([0, 1, 2], out);
    expect(out.x.length).toBeGreaterThanOrEqual(12);
    expect(out.y.length).toBeGreaterThanOrEqual(3);
    expect(b.x.buffer).toBe(out.x.buffer);
  });

  it('throws a RangeError naming an out-of-range index', () => {
    const ds = tiny(5);
    expect(() => ds.batch([0, 5])).toThrow(RangeError);
    expect(() => ds.batch([0, 5])).toThrow('sample index 5 out of range [0, 5)');
    expect(() => ds.batch([-1])).toThrow('sample index -1');
    expect(() => ds.batch([1.5])).toThrow('sample index 1.5');
  });

  it('rejects pixel/label length mismatches and out-of-range labels', () => {
    expect(
      () => new ImageClassificationDataset({ name: 'bad', pixels: new Uint8Array(7), labels: new Uint8Array(2), sampleShape: [1, 2, 2], numClasses: 3 }),
    ).toThrow(/bad: 7 pixels/);
    expect(
      () => new ImageClassificationDataset({ name: 'bad', pixels: new Uint8Array(8), labels: new Uint8Array([0, 3]), sampleShape: [1, 2, 2], numClasses: 3 }),
    ).toThrow('label at index 1 is 3');
  });
});

describe('SubsetDataset', () => {
  it('maps indices through to the base dataset', () => {
    const sub = new SubsetDataset(tiny(10), [7, 2, 9], 'sub');
    expect(sub.size).toBe(3);
    expect(sub.name).toBe('sub');
    expect(sub.numClasses).toBe(3);
    const b = sub.batch([2, 0]);
    expect(b.x[0]).toBeCloseTo(90 / 255, 6);
    expect(b.x[4]).toBeCloseTo(70 / 255, 6);
    expect(Array.from(b.y)).toEqual([0, 1]);
    expect(() => sub.batch([3])).toThrow('sub: sample index 3 out of range [0, 3)');
  });

  it('rejects indices outside the base', () => {
    expect(() => new SubsetDataset(tiny(4), [0, 4])).toThrow(RangeError);
  });
});

describe('trainValSplit', () => {
  const ds = tiny(101);

  function baseIndices(part: Dataset): number[] {
    return Array.from({ length: part.size }, (_, i) => (part as SubsetDataset).baseIndex(i));
  }

  it('gives disjoint, covering subsets with round(size*valFraction) validation samples', () => {
    const { train, val } = trainValSplit(ds, 0.2, 7);
    expect(val.size).toBe(20);
    expect(train.size).toBe(81);
    const all = [...baseIndices(train), ...baseIndices(val)].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 101 }, (_, i) => i));
    // Batches really come from the base samples.
    const v0 = baseIndices(val)[0];
    expect(pixelOf(val, 0)).toBeCloseTo(((v0 * 10) % 256) / 255, 6);
  });

  it('is deterministic for a seed and varies across seeds', () => {
    const a = baseIndices(trainValSplit(ds, 0.3, 1).val);
    const b = baseIndices(trainValSplit(ds, 0.3, 1).val);
    const c = baseIndices(trainValSplit(ds, 0.3, 2).val);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('gives an empty validation set for fraction 0', () => {
    const { train, val } = trainValSplit(ds, 0, 1);
    expect(val.size).toBe(0);
    expect(train.size).toBe(101);
    expect(val.batch([]).size).toBe(0);
  });

  it('rejects an out-of-range fraction, naming it', () => {
    expect(() => trainValSplit(ds, 1.5, 1)).toThrow(RangeError);
    expect(() => trainValSplit(ds, -0.1, 1)).toThrow('got -0.1');
    expect(() => trainValSplit(ds, Number.NaN, 1)).toThrow('got NaN');
  });
});

/**
 * The Dataset abstraction the trainer consumes: a fixed-size, indexable collection of labelled
 * samples that gathers arbitrary index lists into float32 batches. Also the in-memory image
 * implementation, index-subset views and a seeded train/validation split.
 */

import { Rng } from '../util/random.js';

export interface Batch {
  /** size * prod(sampleShape) values, sample-major. */
  readonly x: Float32Array;
  /** size class labels (regression datasets: zeros, their targets being in `targets`). */
  readonly y: Int32Array;
  /** Regression datasets: size * numClasses float targets, sample-major (absent for classification). */
  readonly targets?: Float32Array;
  readonly size: number;
  readonly sampleShape: readonly number[];
}

/** Caller-owned buffers that `Dataset.batch` fills; replaced by larger ones when too small. */
export interface BatchBuffers {
  x: Float32Array;
  y: Int32Array;
  /** Regression datasets' targets (made on first use). */
  targets?: Float32Array;
}

/**
 * What a dataset's samples are for: class labels to predict (cross-entropy, accuracy), or float
 * targets to regress on (mean squared error or Huber, RMSE). A regression dataset's `numClasses`
 * is its number of targets per sample: the width of the model's output.
 */
export type DatasetTask = 'classification' | 'regression';

export interface Dataset {
  readonly name: string;
  readonly size: number;
  /** The shape of one sample, e.g. [1, 28, 28]. */
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  /** Labels per sample: 1 for classification (default), T for a language model's windows. */
  readonly labelsPerSample?: number;
  /** Default 'classification'; 'regression': batches carry `targets`, numClasses of them per sample. */
  readonly task?: DatasetTask;
  /**
   * Gathers the samples at `indices` into a batch; reuses `out`'s buffers when they are large
   * enough (hot path: no allocation per step). When they are too small, larger buffers are
   * allocated and stored back into `out`. The returned arrays are views of exactly the batch's
   * length and are overwritten by the next call with the same `out`.
   */
  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch;
}

/** The number of values in one sample of the given shape. */
export function sampleSizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Returns buffers of at least the batch's size, taken from `out` when large enough. */
export function ensureBatchBuffers(out: BatchBuffers | undefined, batchSize: number, sampleSize: number): BatchBuffers {
  const xLength = batchSize * sampleSize;
  if (out === undefined) return { x: new Float32Array(xLength), y: new Int32Array(batchSize) };
  if (out.x.length < xLength) out.x = new Float32Array(xLength);
  if (out.y.length < batchSize) out.y = new Int32Array(batchSize);
  return out;
}

function checkIndex(name: string, size: number, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new RangeError(`${name}: sample index ${index} out of range [0, ${size})`);
  }
}

/** Pixel byte -> float in [0, 1]. */
const BYTE_TO_UNIT = (() => {
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = v / 255;
  return table;
})();

export interface ImageClassificationDatasetInit {
  readonly name: string;
  /** n * prod(sampleShape) uint8 pixels, sample-major. */
  readonly pixels: Uint8Array;
  /** n labels in [0, numClasses). */
  readonly labels: Uint8Array | Int32Array;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
}

/** Images kept as uint8 in memory and scaled to float32 in [0, 1] only when batched. */
export class ImageClassificationDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  private readonly pixels: Uint8Array;
  private readonly labels: Uint8Array | Int32Array;
  private readonly sampleSize: number;

  constructor(init: ImageClassificationDatasetInit) {
    this.name = init.name;
    this.sampleShape = Object.freeze([...init.sampleShape]);
    this.sampleSize = sampleSizeOf(init.sampleShape);
    this.numClasses = init.numClasses;
    this.size = init.labels.length;
    if (init.pixels.length !== this.size * this.sampleSize) {
      throw new RangeError(
        `${init.name}: ${init.pixels.length} pixels do not make ${this.size} samples of shape [${init.sampleShape.join(', ')}] (need ${this.size * this.sampleSize})`,
      );
    }
    for (let i = 0; i < this.size; i++) {
      const label = init.labels[i];
      if (label < 0 || label >= init.numClasses) {
        throw new RangeError(`${init.name}: label at index ${i} is ${label}, expected 0..${init.numClasses - 1}`);
      }
    }
    this.pixels = init.pixels;
    this.labels = init.labels;
  }

  /** The label of sample `index`. */
  label(index: number): number {
    checkIndex(this.name, this.size, index);
    return this.labels[index];
  }

  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch {
    const n = indices.length;
    const ss = this.sampleSize;
    const buffers = ensureBatchBuffers(out, n, ss);
    const x = buffers.x;
    const y = buffers.y;
    const pixels = this.pixels;
    for (let b = 0; b < n; b++) {
      const index = indices[b];
      checkIndex(this.name, this.size, index);
      y[b] = this.labels[index];
      const src = index * ss;
      const dst = b * ss;
      for (let k = 0; k < ss; k++) x[dst + k] = BYTE_TO_UNIT[pixels[src + k]];
    }
    return {
      x: x.length === n * ss ? x : x.subarray(0, n * ss),
      y: y.length === n ? y : y.subarray(0, n),
      size: n,
      sampleShape: this.sampleShape,
    };
  }
}

/** A view of `base` restricted to (and reordered by) `indices`; sample i is base sample indices[i]. */
export class SubsetDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  readonly labelsPerSample?: number;
  readonly task?: DatasetTask;
  private readonly base: Dataset;
  private readonly indices: Int32Array;
  private scratch = new Int32Array(0);

  constructor(base: Dataset, indices: ArrayLike<number>, name = `${base.name}[subset]`) {
    for (let i = 0; i < indices.length; i++) checkIndex(base.name, base.size, indices[i]);
    const own = Int32Array.from(indices);
    this.base = base;
    this.indices = own;
    this.name = name;
    this.size = own.length;
    this.sampleShape = base.sampleShape;
    this.numClasses = base.numClasses;
    if (base.labelsPerSample !== undefined) this.labelsPerSample = base.labelsPerSample;
    if (base.task !== undefined) this.task = base.task;
  }

  /** The index in the base dataset of subset sample `index`. */
  baseIndex(index: number): number {
    checkIndex(this.name, this.size, index);
    return this.indices[index];
  }

  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch {
    const n = indices.length;
    if (this.scratch.length < n) this.scratch = new Int32Array(n);
    const mapped = this.scratch.length === n ? this.scratch : this.scratch.subarray(0, n);
    for (let b = 0; b < n; b++) {
      const index = indices[b];
      checkIndex(this.name, this.size, index);
      mapped[b] = this.indices[index];
    }
    return this.base.batch(mapped, out);
  }
}

/**
 * Splits `ds` into disjoint train and validation subsets that together cover it; the
 * validation set gets round(size * valFraction) samples chosen by a generator seeded with
 * `seed`. Both subsets list their base indices in increasing order.
 */
export function trainValSplit(ds: Dataset, valFraction: number, seed: number): { train: Dataset; val: Dataset } {
  if (!Number.isFinite(valFraction) || valFraction < 0 || valFraction >= 1) {
    throw new RangeError(`trainValSplit: valFraction must be in [0, 1), got ${valFraction}`);
  }
  const valSize = Math.round(ds.size * valFraction);
  const perm = new Rng(seed).permutation(ds.size);
  const val = perm.slice(0, valSize).sort();
  const train = perm.slice(valSize).sort();
  return {
    train: new SubsetDataset(ds, train, `${ds.name}:train`),
    val: new SubsetDataset(ds, val, `${ds.name}:val`),
  };
}

/** The first `n` samples of `ds` (all of it when n is undefined or not smaller). */
export function firstSamples(ds: Dataset, n: number | undefined): Dataset {
  if (n === undefined || n >= ds.size) return ds;
  return new SubsetDataset(ds, Int32Array.from({ length: n }, (_, i) => i), `${ds.name}[:${n}]`);
}

/** How datasets without a test split of their own (a CSV file, one pair of IDX files) hold one out: see holdOutIndices. */
export const HOLD_OUT = Object.freeze({ fraction: 0.2, seed: 0 });

/**
 * A held-out split of `size` samples: the samples are shuffled by a generator seeded with `seed`
 * and the last max(1, round(size * fraction)) of that order are held out (`test`); the rest are
 * `train`. Both list their indices in increasing order. Needs at least 2 samples.
 */
export function holdOutIndices(size: number, fraction: number, seed: number): { train: Int32Array; test: Int32Array } {
  if (!Number.isFinite(fraction) || fraction <= 0 || fraction >= 1) {
    throw new RangeError(`holdOutIndices: fraction must be in (0, 1), got ${fraction}`);
  }
  const testSize = Math.max(1, Math.round(size * fraction));
  const perm = new Rng(seed).permutation(size);
  return { train: perm.slice(0, size - testSize).sort(), test: perm.slice(size - testSize).sort() };
}

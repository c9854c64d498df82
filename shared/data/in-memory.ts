/**
 * A labelled dataset held in memory as float32 features and integer labels (classification) or
 * float targets (regression), built from typed arrays or plain arrays of rows: the quickest way to
 * train a model on the caller's own data.
 */

import { ensureBatchBuffers, sampleSizeOf, type Batch, type BatchBuffers, type Dataset, type DatasetTask } from './dataset.js';

export interface InMemoryDatasetInit {
  /** The features: one row per sample (each of prod(sampleShape) values), or all of them flat, sample-major. */
  readonly x: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
  /**
   * Classification: one class label per sample, integers in [0, numClasses). Regression
   * (`task: 'regression'`): the targets, numClasses per sample (default 1), flat or one row per sample.
   */
  readonly y: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
  /** Default 'classification'. */
  readonly task?: DatasetTask;
  /** The shape of one sample (default [features]: the row length, or x.length / y.length when flat). */
  readonly sampleShape?: readonly number[];
  /** The number of classes (default: the largest label + 1); for regression, the targets per sample (default: y's row length, else 1). */
  readonly numClasses?: number;
  readonly name?: string;
}

function isRows(x: InMemoryDatasetInit['x']): x is ReadonlyArray<ArrayLike<number>> {
  return x.length > 0 && typeof x[0] === 'object' && x[0] !== null;
}

/** Features and labels in memory; `batch` copies the requested rows (no scaling). */
export class InMemoryDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  readonly task: DatasetTask;
  private readonly features: Float32Array;
  private readonly labels: Int32Array;
  /** Regression: size * numClasses targets (null for classification). */
  private readonly targets: Float32Array | null;
  private readonly sampleSize: number;

  constructor(init: InMemoryDatasetInit) {
    this.name = init.name ?? 'in-memory';
    this.task = init.task ?? 'classification';
    if (this.task !== 'classification' && this.task !== 'regression') throw new RangeError(`${this.name}: task ${String(init.task)} is neither 'classification' nor 'regression'`);
    this.size = init.y.length;
    let flat: Float32Array;
    let rowLength: number;
    if (this.size === 0) {
      // An empty split (a tiny file's held-out part): its sample shape comes from the caller.
      if (init.x.length !== 0) throw new RangeError(`${this.name}: x holds values but y is empty`);
      flat = new Float32Array(0);
      rowLength = init.sampleShape ? sampleSizeOf(init.sampleShape) : 0;
    } else if (isRows(init.x)) {
      const rows = init.x;
      if (rows.length !== this.size) throw new RangeError(`${this.name}: ${rows.length} rows of x but ${this.size} labels`);
      rowLength = rows[0].length;
      flat = new Float32Array(this.size * rowLength);
      rows.forEach((row, i) => {
        if (row.length !== rowLength) throw new RangeError(`${this.name}: row ${i} has ${row.length} values, row 0 has ${rowLength}`);
        for (let k = 0; k < rowLength; k++) flat[i * rowLength + k] = row[k];
      });
    } else {
      flat = Float32Array.from(init.x as ArrayLike<number>);
      if (flat.length % this.size !== 0) throw new RangeError(`${this.name}: ${flat.length} values of x do not divide into ${this.size} samples`);
      rowLength = flat.length / this.size;
    }
    this.sampleShape = Object.freeze([...(init.sampleShape ?? [rowLength])]);
    this.sampleSize = sampleSizeOf(this.sampleShape);
    if (this.sampleSize !== rowLength) throw new RangeError(`${this.name}: sampleShape [${this.sampleShape.join(', ')}] holds ${this.sampleSize} values but each sample has ${rowLength}`);
    flat.forEach((v, i) => {
      if (!Number.isFinite(v)) throw new RangeError(`${this.name}: x holds ${v} at sample ${Math.floor(i / rowLength)}, value ${i % rowLength}`);
    });
    this.features = flat;
    this.labels = new Int32Array(this.size);
    if (this.task === 'regression') {
      const { targets, width } = regressionTargets(this.name, init.y, this.size, init.numClasses);
      this.targets = targets;
      this.numClasses = width;
      return;
    }
    this.targets = null;
    if (isRows(init.y)) throw new RangeError(`${this.name}: y holds rows, but a classification dataset takes one label per sample (task: 'regression' for several targets)`);
    const y = init.y;
    let maxLabel = 0;
    for (let i = 0; i < this.size; i++) {
      const label = y[i];
      if (!Number.isInteger(label) || label < 0) throw new RangeError(`${this.name}: label at index ${i} is ${label}, expected an integer >= 0`);
      this.labels[i] = label;
      maxLabel = Math.max(maxLabel, label);
    }
    this.numClasses = init.numClasses ?? maxLabel + 1;
    if (maxLabel >= this.numClasses) throw new RangeError(`${this.name}: label ${maxLabel} is out of range for numClasses ${this.numClasses}`);
  }

  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch {
    const n = indices.length;
    const ss = this.sampleSize;
    const buffers = ensureBatchBuffers(out, n, ss);
    for (let b = 0; b < n; b++) {
      const index = indices[b];
      if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`${this.name}: sample index ${index} out of range [0, ${this.size})`);
      buffers.y[b] = this.labels[index];
      buffers.x.set(this.features.subarray(index * ss, (index + 1) * ss), b * ss);
    }
    const batch = {
      x: buffers.x.length === n * ss ? buffers.x : buffers.x.subarray(0, n * ss),
      y: buffers.y.length === n ? buffers.y : buffers.y.subarray(0, n),
      size: n,
      sampleShape: this.sampleShape,
    };
    if (this.targets === null) return batch;
    const w = this.numClasses;
    if (buffers.targets === undefined || buffers.targets.length < n * w) buffers.targets = new Float32Array(n * w);
    for (let b = 0; b < n; b++) buffers.targets.set(this.targets.subarray(indices[b] * w, (indices[b] + 1) * w), b * w);
    return { ...batch, targets: buffers.targets.length === n * w ? buffers.targets : buffers.targets.subarray(0, n * w) };
  }
}

/** Regression targets as float32, flat or one row per sample, each finite; `width` targets per sample. */
function regressionTargets(name: string, y: InMemoryDatasetInit['y'], size: number, numTargets: number | undefined): { targets: Float32Array; width: number } {
  let flat: Float32Array;
  let width: number;
  if (isRows(y)) {
    width = y[0].length;
    flat = new Float32Array(size * width);
    y.forEach((row, i) => {
      if (row.length !== width) throw new RangeError(`${name}: target row ${i} has ${row.length} values, row 0 has ${width}`);
      for (let k = 0; k < width; k++) flat[i * width + k] = row[k];
    });
  } else {
    flat = Float32Array.from(y as ArrayLike<number>);
    width = 1;
  }
  if (numTargets !== undefined && numTargets !== width) throw new RangeError(`${name}: numClasses ${numTargets} targets per sample, but y gives ${width}`);
  flat.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new RangeError(`${name}: target ${i % width} of sample ${Math.floor(i / width)} is ${v}, expected a finite number`);
  });
  return { targets: flat, width };
}

/** `new InMemoryDataset(init)`: a dataset over the caller's arrays. */
export function datasetFromArrays(init: InMemoryDatasetInit): InMemoryDataset {
  return new InMemoryDataset(init);
}

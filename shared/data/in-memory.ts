/**
 * A labelled dataset held in memory as float32 features and integer labels, built from typed
 * arrays or plain arrays of rows: the quickest way to train a model on the caller's own data.
 */

import { ensureBatchBuffers, sampleSizeOf, type Batch, type BatchBuffers, type Dataset } from './dataset.js';

export interface InMemoryDatasetInit {
  /** The features: one row per sample (each of prod(sampleShape) values), or all of them flat, sample-major. */
  readonly x: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
  /** One class label per sample, integers in [0, numClasses). */
  readonly y: ArrayLike<number>;
  /** The shape of one sample (default [features]: the row length, or x.length / y.length when flat). */
  readonly sampleShape?: readonly number[];
  /** The number of classes (default: the largest label + 1). */
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
  private readonly features: Float32Array;
  private readonly labels: Int32Array;
  private readonly sampleSize: number;

  constructor(init: InMemoryDatasetInit) {
    this.name = init.name ?? 'in-memory';
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
    this.labels = new Int32Array(this.size);
    let maxLabel = 0;
    for (let i = 0; i < this.size; i++) {
      const label = init.y[i];
      if (!Number.isInteger(label) || label < 0) throw new RangeError(`${this.name}: label at index ${i} is ${label}, expected an integer >= 0`);
      this.labels[i] = label;
      maxLabel = Math.max(maxLabel, label);
    }
    this.numClasses = init.numClasses ?? maxLabel + 1;
    if (maxLabel >= this.numClasses) throw new RangeError(`${this.name}: label ${maxLabel} is out of range for numClasses ${this.numClasses}`);
    this.features = flat;
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
    return {
      x: buffers.x.length === n * ss ? buffers.x : buffers.x.subarray(0, n * ss),
      y: buffers.y.length === n ? buffers.y : buffers.y.subarray(0, n),
      size: n,
      sampleShape: this.sampleShape,
    };
  }
}

/** `new InMemoryDataset(init)`: a dataset over the caller's arrays. */
export function datasetFromArrays(init: InMemoryDatasetInit): InMemoryDataset {
  return new InMemoryDataset(init);
}

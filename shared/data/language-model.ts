/**
 * Next-token prediction over a token stream: the stream is cut into non-overlapping windows of
 * the context length T, and each window's labels are the same window shifted by one token.
 */

import type { Batch, BatchBuffers, Dataset } from './dataset.js';
import type { CharVocabulary } from './text.js';

export interface LanguageModelDatasetInit {
  readonly name: string;
  /** The token ids, each in [0, vocabulary.size). Kept by reference, not copied. */
  readonly tokens: Int32Array;
  /** T, the number of tokens per sample. */
  readonly contextLength: number;
  readonly vocabulary: CharVocabulary;
}

/**
 * Sample i is the window `tokens[i*T .. i*T + T)` as inputs (token ids stored as float32
 * values, sampleShape [T]) and `tokens[i*T + 1 .. i*T + T + 1)` as labels, so label t of a
 * sample is the token that follows input t; the last label of sample i is the first input of
 * sample i + 1. With n tokens there are floor((n - 1) / T) samples (0 when n <= T); the last
 * (n - 1) mod T tokens are the input of no sample.
 *
 * Unlike classification datasets, a sample has T labels: `batch` returns `Batch.y` with
 * `y.length === size * T` (sample-major, T labels per sample), alongside `x.length === size * T`.
 * `numClasses` is the vocabulary size.
 */
export class LanguageModelDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  /** T: inputs per sample, and labels per sample. */
  readonly contextLength: number;
  /** The number of labels each sample has in `Batch.y` (= contextLength). */
  readonly labelsPerSample: number;
  readonly vocabulary: CharVocabulary;
  /** The token stream the windows are cut from. */
  readonly tokens: Int32Array;

  constructor(init: LanguageModelDatasetInit) {
    const T = init.contextLength;
    if (!Number.isInteger(T) || T < 1) {
      throw new RangeError(`${init.name}: context length must be a positive integer, got ${T}`);
    }
    const vocabSize = init.vocabulary.size;
    const tokens = init.tokens;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      if (id < 0 || id >= vocabSize) {
        throw new RangeError(`${init.name}: token at index ${i} is ${id}, expected an id in [0, ${vocabSize})`);
      }
    }
    this.name = init.name;
    this.contextLength = T;
    this.labelsPerSample = T;
    this.vocabulary = init.vocabulary;
    this.tokens = tokens;
    this.numClasses = vocabSize;
    this.sampleShape = Object.freeze([T]);
    this.size = tokens.length > T ? Math.floor((tokens.length - 1) / T) : 0;
  }

  /** The index in `tokens` of the first input token of sample `index`. */
  windowStart(index: number): number {
    this.checkIndex(index);
    return index * this.contextLength;
  }

  /**
   * Gathers the windows at `indices`: x gets size * T float32 token ids and y size * T int32
   * next-token labels, both sample-major. Reuses `out`'s buffers when large enough, otherwise
   * allocates larger ones and stores them back into `out`.
   */
  batch(indices: ArrayLike<number>, out?: BatchBuffers): Batch {
    const n = indices.length;
    const T = this.contextLength;
    const length = n * T;
    let x: Float32Array;
    let y: Int32Array;
    if (out === undefined) {
      x = new Float32Array(length);
      y = new Int32Array(length);
    } else {
      if (out.x.length < length) out.x = new Float32Array(length);
      if (out.y.length < length) out.y = new Int32Array(length);
      x = out.x;
      y = out.y;
    }
    const tokens = this.tokens;
    for (let b = 0; b < n; b++) {
      const index = indices[b];
      this.checkIndex(index);
      const src = index * T;
      const dst = b * T;
      for (let t = 0; t < T; t++) {
        x[dst + t] = tokens[src + t];
        y[dst + t] = tokens[src + t + 1];
      }
    }
    return {
      x: x.length === length ? x : x.subarray(0, length),
      y: y.length === length ? y : y.subarray(0, length),
      size: n,
      sampleShape: this.sampleShape,
    };
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`${this.name}: sample index ${index} out of range [0, ${this.size})`);
    }
  }
}

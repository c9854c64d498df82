/**
 * Loads Moby-Dick (Herman Melville, 1851; public domain; 1,190,317 characters, bundled gzipped
 * in data/moby-dick/) as a character-level language-modelling dataset with contiguous
 * train/validation/test splits.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packageRoot } from '../util/paths.js';
import { DataFormatError } from './errors.js';
import { LanguageModelDataset } from './language-model.js';
import { CharVocabulary } from './text.js';

/** The file names looked for in the data directory, in order of preference. */
export const MOBY_DICK_FILES: readonly string[] = Object.freeze(['moby-dick.txt.gz', 'moby-dick.txt']);

export const MOBY_DICK_DEFAULT_CONTEXT_LENGTH = 64;

/** Fractions of the token stream: train, then the held-out test part, whose first half is also the validation set. */
export const MOBY_DICK_SPLIT = Object.freeze({ train: 0.9, val: 0.05, test: 0.1 });

export interface MobyDickOptions {
  /** The directory holding moby-dick.txt.gz or moby-dick.txt; default: data/moby-dick in the package. */
  readonly dataDir?: string;
  /** T, the tokens per sample; default 64. */
  readonly contextLength?: number;
}

export interface MobyDick {
  readonly train: LanguageModelDataset;
  readonly val: LanguageModelDataset;
  readonly test: LanguageModelDataset;
  /** Built from the whole text, so every split's characters have ids. */
  readonly vocabulary: CharVocabulary;
}

/** The bundled data directory. */
export function defaultMobyDickDir(): string {
  return join(packageRoot(), 'data', 'moby-dick');
}

/**
 * Reads the text and splits its token stream contiguously, without shuffling: the first 90% of
 * the tokens (floor(0.9 n)) are the training set and the last 10% are held out — the test set, on
 * which held-out cross-entropy is reported (as the reference figures are). The validation set,
 * for monitoring and early stopping, is the first half of that held-out part (up to
 * floor(0.95 n)): with a contiguous text, holding out a third range would shrink the training
 * text below the reference setup's 90%. Each range is cut into non-overlapping windows of
 * `contextLength` tokens on its own (see LanguageModelDataset), so no window or label crosses a
 * split boundary.
 */
export function loadMobyDick(opts: MobyDickOptions = {}): MobyDick {
  const contextLength = opts.contextLength ?? MOBY_DICK_DEFAULT_CONTEXT_LENGTH;
  if (!Number.isInteger(contextLength) || contextLength < 1) {
    throw new RangeError(`moby-dick: context length must be a positive integer, got ${contextLength}`);
  }
  const dir = resolve(opts.dataDir ?? defaultMobyDickDir());
  const file = MOBY_DICK_FILES.map((f) => join(dir, f)).find((p) => existsSync(p));
  if (file === undefined) {
    throw new Error(`Moby-Dick text not found: the directory ${dir} must hold ${MOBY_DICK_FILES.join(' or ')}`);
  }
  const text = readText(file);
  const vocabulary = CharVocabulary.fromText(text);
  const tokens = vocabulary.encode(text);
  const n = tokens.length;
  const trainEnd = Math.floor(n * MOBY_DICK_SPLIT.train);
  const valEnd = Math.floor(n * (MOBY_DICK_SPLIT.train + MOBY_DICK_SPLIT.val));
  const ranges = { train: [0, trainEnd], val: [trainEnd, valEnd], test: [trainEnd, n] } as const;
  const make = (split: keyof typeof ranges): LanguageModelDataset => {
    const [start, end] = ranges[split];
    const ds = new LanguageModelDataset({ name: `moby-dick/${split}`, tokens: tokens.subarray(start, end), contextLength, vocabulary });
    if (ds.size === 0) {
      throw new DataFormatError(
        file,
        `text of ${n} characters is too short for context length ${contextLength}: the ${split} split (characters ${start}..${end}) holds no window of ${contextLength + 1} characters`,
      );
    }
    return ds;
  };
  return { train: make('train'), val: make('val'), test: make('test'), vocabulary };
}

/** The file's text: gunzipped when it ends in .gz, decoded as strict UTF-8. */
function readText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read the Moby-Dick text: ${(e as Error).message}`, { cause: e });
  }
  if (file.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataFormatError(file, `not a valid gzip file (truncated or corrupt?): ${(e as Error).message}`, { cause: e });
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new DataFormatError(file, `not valid UTF-8 text: ${(e as Error).message}`, { cause: e });
  }
  if (text.length === 0) throw new DataFormatError(file, 'the text is empty');
  return text;
}

/**
 * Character-level language-modelling data from a text file: reading it (gzipped or not, strict
 * UTF-8) and cutting its token stream into contiguous train / validation / test splits. Moby-Dick
 * and `--dataset text:FILE` share it.
 */

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataFormatError } from './errors.js';
import { LanguageModelDataset } from './language-model.js';
import { CharVocabulary } from './text.js';

export const DEFAULT_CONTEXT_LENGTH = 64;

/** Fractions of the token stream: train, then the held-out test part, whose first half is also the validation set. */
export const TEXT_SPLIT = Object.freeze({ train: 0.9, val: 0.05, test: 0.1 });

export interface TextCorpus {
  readonly train: LanguageModelDataset;
  readonly val: LanguageModelDataset;
  readonly test: LanguageModelDataset;
  /** Built from the whole text, so every split's characters have ids. */
  readonly vocabulary: CharVocabulary;
}

/** The file's text: gunzipped when it ends in .gz, decoded as strict UTF-8; an empty text is refused. `what` names it ("the Moby-Dick text"). */
export function readTextFile(file: string, what: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read ${what}: ${(e as Error).message}`, { cause: e });
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

/**
 * Splits the token stream of `text` contiguously, without shuffling: the first 90% of the tokens
 * (floor(0.9 n)) are the training set and the last 10% are held out — the test set. The
 * validation set, for monitoring and early stopping, is the first half of that held-out part (up
 * to floor(0.95 n)): with a contiguous text, holding out a third range would shrink the training
 * text below 90%. Each range is cut into non-overlapping windows of `contextLength` tokens on its
 * own (see LanguageModelDataset), so no window or label crosses a split boundary; a split with no
 * window is refused, naming `file`. `name` prefixes the splits' names and the context-length error.
 */
export function splitTextCorpus(name: string, file: string, text: string, contextLength: number): TextCorpus {
  if (!Number.isInteger(contextLength) || contextLength < 1) {
    throw new RangeError(`${name}: context length must be a positive integer, got ${contextLength}`);
  }
  const vocabulary = CharVocabulary.fromText(text);
  const tokens = vocabulary.encode(text);
  const n = tokens.length;
  const trainEnd = Math.floor(n * TEXT_SPLIT.train);
  const valEnd = Math.floor(n * (TEXT_SPLIT.train + TEXT_SPLIT.val));
  const ranges = { train: [0, trainEnd], val: [trainEnd, valEnd], test: [trainEnd, n] } as const;
  const make = (split: keyof typeof ranges): LanguageModelDataset => {
    const [start, end] = ranges[split];
    const ds = new LanguageModelDataset({ name: `${name}/${split}`, tokens: tokens.subarray(start, end), contextLength, vocabulary });
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

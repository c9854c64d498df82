/**
 * Loads Moby-Dick (Herman Melville, 1851; public domain; 1,190,317 characters, bundled gzipped
 * in data/moby-dick/) as a character-level language-modelling dataset with contiguous
 * train/validation/test splits.
 */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../util/paths.js';
import type { LanguageModelDataset } from './language-model.js';
import { DEFAULT_CONTEXT_LENGTH, readTextFile, splitTextCorpus, TEXT_SPLIT } from './text-file.js';
import type { CharVocabulary } from './text.js';

/** The file names looked for in the data directory, in order of preference. */
export const MOBY_DICK_FILES: readonly string[] = Object.freeze(['moby-dick.txt.gz', 'moby-dick.txt']);

export const MOBY_DICK_DEFAULT_CONTEXT_LENGTH = DEFAULT_CONTEXT_LENGTH;

/** Fractions of the token stream: train, then the held-out test part, whose first half is also the validation set. */
export const MOBY_DICK_SPLIT = TEXT_SPLIT;

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

/** Reads the text and splits it as every text corpus is (see splitTextCorpus: 90% train, the last 10% held out). */
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
  return splitTextCorpus('moby-dick', file, readTextFile(file, 'the Moby-Dick text'), contextLength);
}

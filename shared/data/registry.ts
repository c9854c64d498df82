/**
 * Maps dataset names (as given on the command line) to their loaders.
 */

import type { Dataset } from './dataset.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadMobyDick } from './moby-dick.js';
import type { CharVocabulary } from './text.js';

export interface OpenDatasetOptions {
  /** Where the dataset's files are; each loader has its own default. */
  readonly dataDir?: string;
  /** Tokens per sample for language-modelling datasets (moby-dick: default 64); ignored by others. */
  readonly contextLength?: number;
}

export interface OpenedDataset {
  readonly train: Dataset;
  readonly test: Dataset;
  /** A validation split, for datasets that define one (moby-dick). */
  readonly val?: Dataset;
  /** The token vocabulary of text datasets (moby-dick), e.g. to store in a checkpoint. */
  readonly vocabulary?: CharVocabulary;
}

type Loader = (opts: OpenDatasetOptions) => OpenedDataset;

const LOADERS: Readonly<Record<string, Loader>> = {
  'fashion-mnist': (opts) => loadFashionMnist({ dataDir: opts.dataDir }),
  'moby-dick': (opts) => loadMobyDick({ dataDir: opts.dataDir, contextLength: opts.contextLength }),
};

/** The names openDataset accepts. */
export function knownDatasets(): string[] {
  return Object.keys(LOADERS);
}

export function openDataset(name: string, opts: OpenDatasetOptions = {}): OpenedDataset {
  const loader = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  if (loader === undefined) {
    throw new Error(`unknown dataset "${name}"; known datasets: ${knownDatasets().join(', ')}`);
  }
  return loader(opts);
}

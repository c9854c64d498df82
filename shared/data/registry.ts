/**
 * Maps dataset names (as given on the command line) to their loaders.
 */

import type { Dataset } from './dataset.js';
import { loadFashionMnist } from './fashion-mnist.js';

export interface OpenDatasetOptions {
  /** Where the dataset's files are; each loader has its own default. */
  readonly dataDir?: string;
}

type Loader = (opts: OpenDatasetOptions) => { train: Dataset; test: Dataset };

const LOADERS: Readonly<Record<string, Loader>> = {
  'fashion-mnist': (opts) => loadFashionMnist(opts),
};

/** The names openDataset accepts. */
export function knownDatasets(): string[] {
  return Object.keys(LOADERS);
}

export function openDataset(name: string, opts: OpenDatasetOptions = {}): { train: Dataset; test: Dataset } {
  const loader = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  if (loader === undefined) {
    throw new Error(`unknown dataset "${name}"; known datasets: ${knownDatasets().join(', ')}`);
  }
  return loader(opts);
}

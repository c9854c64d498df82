/**
 * Maps dataset names (as given on the command line) to their loaders.
 */

import type { Dataset } from './dataset.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_SAMPLE_SHAPE, loadFashionMnist } from './fashion-mnist.js';
import { loadMobyDick, MOBY_DICK_DEFAULT_CONTEXT_LENGTH } from './moby-dick.js';
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

/**
 * What a dataset gives a model, known without loading it, so that a model that cannot read it is
 * refused before any data is read or any step runs.
 */
export interface DatasetDescription {
  /** 'tokens': token ids (integers stored as floats) that an embedding layer must read; 'features': float values. */
  readonly input: 'tokens' | 'features';
  /** The shape of one sample, e.g. [1, 28, 28] or [T]. */
  readonly sampleShape: readonly number[];
  /** Labels per sample: 1 for classification, T for next-token prediction. */
  readonly labelsPerSample: number;
  /** The number of classes, where known before loading (a text's vocabulary is known only from the text). */
  readonly numClasses?: number;
  /** What a sample is, for messages ("images", "token ids"). */
  readonly samples: string;
  /** What the classes are, for messages ("classes", "characters in its vocabulary"). */
  readonly classes: string;
}

const DESCRIPTIONS: Readonly<Record<string, (opts: OpenDatasetOptions) => DatasetDescription>> = {
  // The loader checks that a --data-dir copy has this shape and these classes.
  'fashion-mnist': () => ({ input: 'features', sampleShape: FASHION_MNIST_SAMPLE_SHAPE, labelsPerSample: 1, numClasses: FASHION_MNIST_CLASSES.length, samples: 'images', classes: 'classes' }),
  'moby-dick': (opts) => {
    const t = opts.contextLength ?? MOBY_DICK_DEFAULT_CONTEXT_LENGTH;
    return { input: 'tokens', sampleShape: [t], labelsPerSample: t, samples: 'token ids', classes: 'characters in its vocabulary' };
  },
};

/** What dataset `name` gives (see DatasetDescription), without loading it. */
export function describeDataset(name: string, opts: OpenDatasetOptions = {}): DatasetDescription {
  const describe = Object.hasOwn(DESCRIPTIONS, name) ? DESCRIPTIONS[name] : undefined;
  if (describe === undefined) throw new Error(`unknown dataset "${name}"; known datasets: ${knownDatasets().join(', ')}`);
  return describe(opts);
}

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

/**
 * Maps dataset names (as given on the command line) to their loaders: the bundled datasets by
 * name, and the user's own files as `KIND:PATH` (csv:, tsv:, text:, idx:, cifar10:, images:; see
 * shared/data/user-datasets.ts).
 */

import type { Dataset, DatasetTask } from './dataset.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_SAMPLE_SHAPE, loadFashionMnist } from './fashion-mnist.js';
import { loadMobyDick, MOBY_DICK_DEFAULT_CONTEXT_LENGTH } from './moby-dick.js';
import type { CharVocabulary } from './text.js';
import { describeUserDataset, openUserDataset, parseUserDataset, USER_DATASET_FORMS } from './user-datasets.js';

export interface OpenDatasetOptions {
  /** Where the dataset's files are; each loader has its own default. */
  readonly dataDir?: string;
  /** Tokens per sample for language-modelling datasets (moby-dick: default 64); ignored by others. */
  readonly contextLength?: number;
  /** images: datasets: the side images are resized to (the model's [C, S, S] input; default 32). */
  readonly imageSize?: number;
  /** csv:/tsv: datasets: the label column's name (--label); default the last column. Refused by other datasets. */
  readonly labelColumn?: string;
  /** 'regression' (a --loss of mse or huber): the label column is a numeric target; only csv:/tsv: datasets have one. */
  readonly task?: DatasetTask;
}

export interface OpenedDataset {
  readonly train: Dataset;
  readonly test: Dataset;
  /** A validation split, for datasets that define one (moby-dick). */
  readonly val?: Dataset;
  /** The token vocabulary of text datasets (moby-dick), e.g. to store in a checkpoint. */
  readonly vocabulary?: CharVocabulary;
  /** The classes' names in class-id order, where the dataset names them (a CSV's label values, CIFAR-10's classes). */
  readonly classNames?: readonly string[];
}

type Loader = (opts: OpenDatasetOptions) => OpenedDataset;

const LOADERS: Readonly<Record<string, Loader>> = {
  'fashion-mnist': (opts) => ({ ...loadFashionMnist({ dataDir: opts.dataDir }), classNames: FASHION_MNIST_CLASSES }),
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
  /** Default 'classification'; 'regression': numClasses is the number of targets per sample. */
  readonly task?: DatasetTask;
}

const DESCRIPTIONS: Readonly<Record<string, (opts: OpenDatasetOptions) => DatasetDescription>> = {
  // The loader checks that a --data-dir copy has this shape and these classes.
  'fashion-mnist': () => ({ input: 'features', sampleShape: FASHION_MNIST_SAMPLE_SHAPE, labelsPerSample: 1, numClasses: FASHION_MNIST_CLASSES.length, samples: 'images', classes: 'classes' }),
  'moby-dick': (opts) => {
    const t = opts.contextLength ?? MOBY_DICK_DEFAULT_CONTEXT_LENGTH;
    return { input: 'tokens', sampleShape: [t], labelsPerSample: t, samples: 'token ids', classes: 'characters in its vocabulary' };
  },
};

function unknown(name: string): Error {
  return new Error(`unknown dataset "${name}"; known datasets: ${knownDatasets().join(', ')}; or your own files: ${USER_DATASET_FORMS.join(', ')}`);
}

/** Refuses --label for a bundled dataset (they have no columns). */
function checkNoLabel(name: string, opts: OpenDatasetOptions): void {
  if (opts.labelColumn !== undefined) throw new Error(`--label ${opts.labelColumn}: only csv: and tsv: datasets have a label column to choose, not ${name}`);
  if (opts.task === 'regression') throw new Error(`a regression loss (--loss mse or huber) needs numeric targets, which only csv: and tsv: datasets have (their --label column), not ${name}`);
}

/** What dataset `name` gives (see DatasetDescription), without loading it (a CSV file, being small, is read). */
export function describeDataset(name: string, opts: OpenDatasetOptions = {}): DatasetDescription {
  const user = parseUserDataset(name);
  if (user !== null) return describeUserDataset(user, opts);
  const describe = Object.hasOwn(DESCRIPTIONS, name) ? DESCRIPTIONS[name] : undefined;
  if (describe === undefined) throw unknown(name);
  checkNoLabel(name, opts);
  return describe(opts);
}

/** The bundled datasets' names (what a worker can load by name); openDataset also takes `KIND:PATH`. */
export function knownDatasets(): string[] {
  return Object.keys(LOADERS);
}

/** Whether `name` is a dataset openDataset takes (a bundled name or a well-formed `KIND:PATH`); throws the one-line reason when not. */
export function checkDatasetName(name: string): string {
  if (parseUserDataset(name) === null && !Object.hasOwn(LOADERS, name)) throw unknown(name);
  return name;
}

export function openDataset(name: string, opts: OpenDatasetOptions = {}): OpenedDataset {
  const user = parseUserDataset(name);
  if (user !== null) return openUserDataset(user, opts);
  const loader = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  if (loader === undefined) throw unknown(name);
  checkNoLabel(name, opts);
  return loader(opts);
}

/**
 * Datasets from the user's own files, named `KIND:PATH` on the command line and in the API:
 * `csv:FILE` / `tsv:FILE` (tabular classification, shared/data/csv.ts), `text:FILE` (a
 * character-level language model, as Moby-Dick), `idx:DIR` or `idx:IMAGES,LABELS` (MNIST-style
 * IDX files), `cifar10:DIR` (CIFAR-10's binary batches) and `images:DIR` / `images-gray:DIR` (a
 * folder of PNG/JPEG images per class, shared/data/image-folder.ts). A relative path is taken from
 * --data-dir when given, else from the current directory.
 */

import { existsSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { loadCifar10, CIFAR10_CLASSES, CIFAR10_SAMPLE_SHAPE } from './cifar10.js';
import { csvDataset, readCsvTable } from './csv.js';
import { HOLD_OUT, holdOutIndices, SubsetDataset } from './dataset.js';
import { loadIdxSplit, readIdxDims, readIdxGz } from './idx.js';
import { imageFolderSampleShape, listImageFolder, loadImageFolder } from './image-folder.js';
import type { DatasetDescription, OpenDatasetOptions, OpenedDataset } from './registry.js';
import { DEFAULT_CONTEXT_LENGTH, readTextFile, splitTextCorpus } from './text-file.js';

/** The spellings, for help texts and messages. */
export const USER_DATASET_FORMS: readonly string[] = Object.freeze(['csv:FILE', 'tsv:FILE', 'text:FILE', 'idx:DIR', 'idx:IMAGES,LABELS', 'cifar10:DIR', 'images:DIR', 'images-gray:DIR']);

const KINDS = ['csv', 'tsv', 'text', 'idx', 'cifar10', 'images', 'images-gray'] as const;
type Kind = (typeof KINDS)[number];

export interface UserDatasetRef {
  readonly kind: Kind;
  /** The path(s) after the colon, as given. */
  readonly path: string;
}

/** `name` as a user dataset, or null when it has no `KIND:` prefix of one. An empty path is refused. */
export function parseUserDataset(name: string): UserDatasetRef | null {
  const colon = name.indexOf(':');
  if (colon < 0) return null;
  const kind = name.slice(0, colon);
  if (!(KINDS as readonly string[]).includes(kind)) return null;
  const path = name.slice(colon + 1);
  if (path === '') throw new Error(`--dataset ${name}: no path after '${kind}:'; expected one of ${USER_DATASET_FORMS.join(', ')}`);
  return { kind: kind as Kind, path };
}

function at(opts: OpenDatasetOptions, path: string): string {
  return resolve(opts.dataDir ?? '.', path);
}

function checkLabelOption(ref: UserDatasetRef, opts: OpenDatasetOptions): void {
  if (opts.labelColumn !== undefined && ref.kind !== 'csv' && ref.kind !== 'tsv') {
    throw new Error(`--label ${opts.labelColumn}: only csv: and tsv: datasets have a label column to choose, not ${ref.kind}:`);
  }
}

function csvOptions(ref: UserDatasetRef, opts: OpenDatasetOptions): { file: string; delimiter: ',' | '\t'; labelColumn?: string; regression: boolean } {
  const file = at(opts, ref.path);
  const tabs = ref.kind === 'tsv' || extname(file).toLowerCase() === '.tsv';
  return { file, delimiter: tabs ? '\t' : ',', labelColumn: opts.labelColumn, regression: opts.task === 'regression' };
}

/** Regression (a --loss of mse or huber) needs numeric targets: only a table's label column gives them. */
function checkTask(ref: UserDatasetRef, opts: OpenDatasetOptions): void {
  if (opts.task === 'regression' && ref.kind !== 'csv' && ref.kind !== 'tsv') {
    throw new Error(`a regression loss (--loss mse or huber) needs numeric targets, which only csv: and tsv: datasets have (their --label column), not ${ref.kind}:`);
  }
}

export function openUserDataset(ref: UserDatasetRef, opts: OpenDatasetOptions): OpenedDataset {
  checkLabelOption(ref, opts);
  checkTask(ref, opts);
  switch (ref.kind) {
    case 'csv':
    case 'tsv': {
      const o = csvOptions(ref, opts);
      const data = csvDataset(readCsvTable(o.file, o));
      return { train: data.train, test: data.test, classNames: data.classNames };
    }
    case 'text': {
      const file = at(opts, ref.path);
      return splitTextCorpus(`text:${ref.path}`, file, readTextFile(file, 'the text'), opts.contextLength ?? DEFAULT_CONTEXT_LENGTH);
    }
    case 'idx':
      return openIdx(idxFiles(ref, opts));
    case 'cifar10':
      return { ...loadCifar10(at(opts, ref.path)), classNames: CIFAR10_CLASSES };
    case 'images':
    case 'images-gray':
      return loadImageFolder(at(opts, ref.path), { channels: ref.kind === 'images-gray' ? 1 : 3, size: opts.imageSize });
  }
}

export function describeUserDataset(ref: UserDatasetRef, opts: OpenDatasetOptions): DatasetDescription {
  checkLabelOption(ref, opts);
  checkTask(ref, opts);
  switch (ref.kind) {
    case 'csv':
    case 'tsv': {
      // A table is small: reading it tells the feature and class counts, and refuses bad rows early.
      const o = csvOptions(ref, opts);
      const table = readCsvTable(o.file, o);
      const samples = `rows of ${table.featureNames.length} features`;
      if (o.regression) return { input: 'features', sampleShape: [table.featureNames.length], labelsPerSample: 1, numClasses: 1, samples, classes: `target column ('${table.labelColumn}')`, task: 'regression' };
      return { input: 'features', sampleShape: [table.featureNames.length], labelsPerSample: 1, numClasses: table.classNames.length, samples, classes: `classes in column '${table.labelColumn}'` };
    }
    case 'text': {
      const t = opts.contextLength ?? DEFAULT_CONTEXT_LENGTH;
      return { input: 'tokens', sampleShape: [t], labelsPerSample: t, samples: 'token ids', classes: 'characters in its vocabulary' };
    }
    case 'idx': {
      // The images' headers and the (small) label files only.
      const files = idxFiles(ref, opts);
      const [, height, width] = readIdxDims(files.trainImages, { ndims: 3 });
      return { input: 'features', sampleShape: [1, height, width], labelsPerSample: 1, numClasses: idxClassCount(files), samples: 'images', classes: 'classes' };
    }
    case 'cifar10':
      return { input: 'features', sampleShape: CIFAR10_SAMPLE_SHAPE, labelsPerSample: 1, numClasses: CIFAR10_CLASSES.length, samples: 'images', classes: 'classes' };
    case 'images':
    case 'images-gray': {
      // The folder listing only; the images are decoded when the dataset is opened.
      const listing = listImageFolder(at(opts, ref.path));
      const sampleShape = imageFolderSampleShape({ channels: ref.kind === 'images-gray' ? 1 : 3, size: opts.imageSize });
      return { input: 'features', sampleShape, labelsPerSample: 1, numClasses: listing.classNames.length, samples: 'images', classes: `classes (the sub-folders of ${listing.dir})` };
    }
  }
}

interface IdxFiles {
  readonly trainImages: string;
  readonly trainLabels: string;
  /** Absent: the test split is held out of the training files (HOLD_OUT). */
  readonly test?: { readonly images: string; readonly labels: string };
}

/** The standard MNIST file names, each looked for as it is and gzipped. */
export const IDX_STANDARD_FILES = Object.freeze({
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
});

function idxFiles(ref: UserDatasetRef, opts: OpenDatasetOptions): IdxFiles {
  const parts = ref.path.split(',');
  if (parts.length === 1) {
    const dir = at(opts, parts[0]);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--dataset idx:${ref.path}: ${dir} is not a directory; give idx:DIR (holding the standard MNIST file names) or idx:IMAGES,LABELS`);
    const find = (base: string): string => {
      const found = [join(dir, `${base}.gz`), join(dir, base)].find((p) => existsSync(p));
      if (found === undefined) {
        throw new Error(`IDX file not found: ${join(dir, base)}[.gz]; the directory ${dir} must hold the four standard files ${Object.values(IDX_STANDARD_FILES).join(', ')} (each gzipped or not)`);
      }
      return found;
    };
    const f = IDX_STANDARD_FILES;
    return { trainImages: find(f.trainImages), trainLabels: find(f.trainLabels), test: { images: find(f.testImages), labels: find(f.testLabels) } };
  }
  if (parts.length !== 2 && parts.length !== 4) {
    throw new Error(`--dataset idx:${ref.path}: ${parts.length} paths; expected idx:DIR, idx:IMAGES,LABELS or idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS`);
  }
  const paths = parts.map((p) => at(opts, p));
  for (const p of paths) if (!existsSync(p)) throw new Error(`IDX file not found: ${p} (--dataset idx:${ref.path})`);
  return { trainImages: paths[0], trainLabels: paths[1], test: paths.length === 4 ? { images: paths[2], labels: paths[3] } : undefined };
}

/** The number of classes: one more than the largest label of any split. */
function idxClassCount(files: IdxFiles): number {
  let max = 0;
  for (const file of [files.trainLabels, ...(files.test ? [files.test.labels] : [])]) {
    for (const label of readIdxGz(file, { ndims: 1 }).data) max = Math.max(max, label);
  }
  return max + 1;
}

function openIdx(files: IdxFiles): OpenedDataset {
  const numClasses = idxClassCount(files);
  const classNames = Array.from({ length: numClasses }, (_, i) => String(i));
  const train = loadIdxSplit('idx/train', files.trainImages, files.trainLabels, { numClasses });
  if (files.test === undefined) {
    if (train.size < 2) throw new Error(`${files.trainImages}: holds ${train.size} image(s); need at least 2 to hold a test split out`);
    const split = holdOutIndices(train.size, HOLD_OUT.fraction, HOLD_OUT.seed);
    return { train: new SubsetDataset(train, split.train, 'idx/train'), test: new SubsetDataset(train, split.test, 'idx/test'), classNames };
  }
  const test = loadIdxSplit('idx/test', files.test.images, files.test.labels, { numClasses });
  const [, h, w] = train.sampleShape;
  if (test.sampleShape[1] !== h || test.sampleShape[2] !== w) {
    throw new Error(`${files.test.images}: images are ${test.sampleShape[1]}x${test.sampleShape[2]} but the training images (${files.trainImages}) are ${h}x${w}`);
  }
  return { train, test, classNames };
}

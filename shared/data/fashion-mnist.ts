/**
 * Loads Fashion-MNIST (Zalando Research; 60,000 training and 10,000 test 28x28 grayscale
 * images in 10 classes) from the four standard IDX .gz files, bundled in data/fashion-mnist/.
 */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../util/paths.js';
import type { Dataset } from './dataset.js';
import { loadIdxSplit } from './idx.js';

export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export const FASHION_MNIST_FILES = Object.freeze({
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
});

const HEIGHT = 28;
const WIDTH = 28;

/** The shape of one sample: one channel of 28x28 pixels. */
export const FASHION_MNIST_SAMPLE_SHAPE: readonly number[] = Object.freeze([1, HEIGHT, WIDTH]);

export interface FashionMnistOptions {
  /** The directory holding the four files; default: data/fashion-mnist in the package. */
  readonly dataDir?: string;
}

/** The bundled data directory. */
export function defaultFashionMnistDir(): string {
  return join(packageRoot(), 'data', 'fashion-mnist');
}

export function loadFashionMnist(opts: FashionMnistOptions = {}): { train: Dataset; test: Dataset } {
  const dir = resolve(opts.dataDir ?? defaultFashionMnistDir());
  const all = Object.values(FASHION_MNIST_FILES);
  const missing = all.map((f) => join(dir, f)).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `Fashion-MNIST file not found: ${missing.join(', ')}; the directory ${dir} must hold the four standard files ${all.join(', ')}`,
    );
  }
  return {
    train: loadSplit('fashion-mnist/train', join(dir, FASHION_MNIST_FILES.trainImages), join(dir, FASHION_MNIST_FILES.trainLabels)),
    test: loadSplit('fashion-mnist/test', join(dir, FASHION_MNIST_FILES.testImages), join(dir, FASHION_MNIST_FILES.testLabels)),
  };
}

function loadSplit(name: string, imagesFile: string, labelsFile: string): Dataset {
  return loadIdxSplit(name, imagesFile, labelsFile, { imageSize: [HEIGHT, WIDTH], numClasses: FASHION_MNIST_CLASSES.length });
}

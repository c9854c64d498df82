/**
 * CIFAR-10 (Krizhevsky, 2009; 50,000 training and 10,000 test 32x32 colour images in 10 classes)
 * from its binary distribution (`--dataset cifar10:DIR`): data_batch_1.bin .. data_batch_5.bin
 * are the training split and test_batch.bin the test split; each record is 1 label byte and
 * 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each row-major 32x32), i.e. CHW order.
 * Samples are [3, 32, 32] scaled to [0, 1].
 */

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ImageClassificationDataset } from './dataset.js';
import { DataFormatError } from './errors.js';

export const CIFAR10_CLASSES: readonly string[] = Object.freeze(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);

export const CIFAR10_SAMPLE_SHAPE: readonly number[] = Object.freeze([3, 32, 32]);

export const CIFAR10_FILES = Object.freeze({
  train: Object.freeze(['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin']),
  test: Object.freeze(['test_batch.bin']),
});

const PIXELS = 3 * 32 * 32;
const RECORD = 1 + PIXELS;

/**
 * The directory that holds the batches: `dir` itself, or the `cifar-10-batches-bin` folder the
 * distribution's archive unpacks to inside it.
 */
export function cifar10Dir(dir: string): string {
  const abs = resolve(dir);
  const nested = join(abs, 'cifar-10-batches-bin');
  return !existsSync(join(abs, CIFAR10_FILES.test[0])) && existsSync(join(nested, CIFAR10_FILES.test[0])) ? nested : abs;
}

export function loadCifar10(dir: string): { train: ImageClassificationDataset; test: ImageClassificationDataset } {
  const root = cifar10Dir(dir);
  const all = [...CIFAR10_FILES.train, ...CIFAR10_FILES.test];
  const missing = all.map((f) => join(root, f)).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`CIFAR-10 file not found: ${missing.join(', ')}; the directory ${root} must hold the binary batches ${all.join(', ')}`);
  }
  return { train: loadBatches('cifar10/train', root, CIFAR10_FILES.train), test: loadBatches('cifar10/test', root, CIFAR10_FILES.test) };
}

function loadBatches(name: string, root: string, files: readonly string[]): ImageClassificationDataset {
  const parts = files.map((f) => {
    const file = join(root, f);
    const bytes = readFileSync(file);
    if (bytes.length === 0) throw new DataFormatError(file, `holds no records: expected records of ${RECORD} bytes (1 label byte, ${PIXELS} pixel bytes)`);
    if (bytes.length % RECORD !== 0) {
      throw new DataFormatError(
        file,
        `truncated: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records (${Math.floor(bytes.length / RECORD)} records and ${bytes.length % RECORD} bytes over)`,
      );
    }
    return { file, bytes };
  });
  const n = parts.reduce((sum, p) => sum + p.bytes.length / RECORD, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  let i = 0;
  for (const { file, bytes } of parts) {
    for (let r = 0; r < bytes.length / RECORD; r++, i++) {
      const label = bytes[r * RECORD];
      if (label >= CIFAR10_CLASSES.length) {
        throw new DataFormatError(file, `record ${r} (byte ${r * RECORD}) has label ${label}, expected 0..${CIFAR10_CLASSES.length - 1}`);
      }
      labels[i] = label;
      pixels.set(bytes.subarray(r * RECORD + 1, (r + 1) * RECORD), i * PIXELS);
    }
  }
  return new ImageClassificationDataset({ name, pixels, labels, sampleShape: CIFAR10_SAMPLE_SHAPE, numClasses: CIFAR10_CLASSES.length });
}

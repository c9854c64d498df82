/**
 * Tests for the Fashion-MNIST loader (the bundled files and small custom directories), the
 * dataset registry and packageRoot.
 */

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../shared/data/dataset.js';
import { DataFormatError } from '../../shared/data/errors.js';
import { FASHION_MNIST_CLASSES, defaultFashionMnistDir, loadFashionMnist } from '../../shared/data/fashion-mnist.js';
import { knownDatasets, openDataset } from '../../shared/data/registry.js';
import { packageRoot } from '../../shared/util/paths.js';
import { TempDirs, idxBytes, writeFakeFashionMnist, writeGz } from './idx-fixtures.js';

describe('packageRoot', () => {
  it('finds the meshgrad package.json and caches the answer', () => {
    const root = packageRoot();
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
    expect(pkg.name).toBe('meshgrad');
    expect(packageRoot()).toBe(root);
    expect(existsSync(defaultFashionMnistDir())).toBe(true);
  });
});

describe('bundled Fashion-MNIST', () => {
  let train: Dataset;
  let test: Dataset;
  beforeAll(() => {
    ({ train, test } = loadFashionMnist());
  });

  it('has 60000 training and 10000 test samples of shape [1, 28, 28]', () => {
    expect(train.size).toBe(60000);
    expect(test.size).toBe(10000);
    expect(train.sampleShape).toEqual([1, 28, 28]);
    expect(test.sampleShape).toEqual([1, 28, 28]);
    expect(train.numClasses).toBe(10);
    expect(train.name).toBe('fashion-mnist/train');
    expect(test.name).toBe('fashion-mnist/test');
    expect(FASHION_MNIST_CLASSES).toHaveLength(10);
  });

  it('starts with the known first labels', () => {
    expect(Array.from(train.batch([0, 1, 2, 3]).y)).toEqual([9, 0, 0, 3]);
    expect(Array.from(test.batch([0, 1, 2, 3]).y)).toEqual([9, 2, 1, 1]);
  });

  it('has 6000 training samples per class and pixels in [0, 1]', () => {
    const counts = new Array<number>(10).fill(0);
    const out = { x: new Float32Array(0), y: new Int32Array(0) };
    const chunk = 2000;
    const indices = new Int32Array(chunk);
    let min = Infinity;
    let max = -Infinity;
    for (let start = 0; start < train.size; start += chunk) {
      for (let i = 0; i < chunk; i++) indices[i] = start + i;
      const b = train.batch(indices, out);
      expect(b.x.length).toBe(chunk * 784);
      for (const label of b.y) counts[label]++;
      for (const v of b.x) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    expect(counts).toEqual(new Array<number>(10).fill(6000));
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('is reachable through the registry', () => {
    expect(knownDatasets()).toContain('fashion-mnist');
    const opened = openDataset('fashion-mnist', {});
    expect(opened.train.size).toBe(60000);
  });
});

describe('Fashion-MNIST from a custom directory', () => {
  const temps = new TempDirs();
  afterEach(() => temps.cleanup());

  it('loads small files from dataDir', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 12, 5);
    const { train, test } = openDataset('fashion-mnist', { dataDir: dir });
    expect(train.size).toBe(12);
    expect(test.size).toBe(5);
    expect(Array.from(train.batch([11]).y)).toEqual([1]);
  });

  it('names the missing file and the four required files', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 4, 4);
    const missing = join(dir, 't10k-labels-idx1-ubyte.gz');
    rmSync(missing);
    expect(() => loadFashionMnist({ dataDir: dir })).toThrow(missing);
    expect(() => loadFashionMnist({ dataDir: dir })).toThrow(/must hold the four standard files train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz, t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz/);
  });

  it('names both files and both counts when images and labels disagree', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 6, 4, { trainLabels: 5 });
    let err: unknown;
    try {
      loadFashionMnist({ dataDir: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataFormatError);
    const message = (err as Error).message;
    expect(message).toContain(join(dir, 'train-labels-idx1-ubyte.gz'));
    expect(message).toContain(join(dir, 'train-images-idx3-ubyte.gz'));
    expect(message).toContain('holds 5 labels');
    expect(message).toContain('holds 6 images');
  });

  it('rejects a label outside 0..9, naming file, index and value', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 3, 3);
    const labels = join(dir, 'train-labels-idx1-ubyte.gz');
    writeGz(labels, idxBytes([3], [0, 10, 2]));
    expect(() => loadFashionMnist({ dataDir: dir })).toThrow(`${labels}: label at index 1 is 10, expected 0..9`);
  });

  it('rejects images that are not 28x28', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 3, 3);
    const images = join(dir, 't10k-images-idx3-ubyte.gz');
    writeGz(images, idxBytes([3, 28, 27]));
    expect(() => loadFashionMnist({ dataDir: dir })).toThrow(`${images}: expected images of shape [n, 28, 28], found [3, 28, 27]`);
  });

  it('rejects swapped image and label files by their magic numbers', () => {
    const dir = temps.make();
    writeFakeFashionMnist(dir, 3, 3);
    const images = join(dir, 'train-images-idx3-ubyte.gz');
    writeGz(images, idxBytes([3], [1, 2, 3]));
    expect(() => loadFashionMnist({ dataDir: dir })).toThrow('expected magic 0x00000803, found 0x00000801');
  });
});

describe('openDataset', () => {
  it('lists the known names for an unknown dataset', () => {
    expect(() => openDataset('cifar-10', {})).toThrow('unknown dataset "cifar-10"; known datasets: fashion-mnist');
    expect(() => openDataset('toString', {})).toThrow('unknown dataset "toString"');
  });
});

/**
 * Test helpers: builds IDX byte buffers and writes small gzipped IDX files into temp directories.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** An unsigned-byte IDX file with the given dims and data (data defaults to 0, 1, 2, ...). */
export function idxBytes(dims: number[], data?: ArrayLike<number>, type = 0x08): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(bytes.buffer);
  bytes[2] = type;
  bytes[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) bytes[4 + 4 * dims.length + i] = data === undefined ? i % 256 : data[i];
  return bytes;
}

export function writeGz(path: string, bytes: Uint8Array): void {
  writeFileSync(path, gzipSync(bytes));
}

/** Temp directories created through `make`, removed by `cleanup` (call it in afterEach). */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(): string {
    const dir = mkdtempSync(join(tmpdir(), 'meshgrad-data-'));
    this.dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a tiny Fashion-MNIST-shaped directory: `nTrain`/`nTest` images of 28x28, labels i % 10. */
export function writeFakeFashionMnist(dir: string, nTrain: number, nTest: number, overrides: { trainLabels?: number } = {}): void {
  const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 10);
  writeGz(join(dir, 'train-images-idx3-ubyte.gz'), idxBytes([nTrain, 28, 28]));
  writeGz(join(dir, 'train-labels-idx1-ubyte.gz'), idxBytes([overrides.trainLabels ?? nTrain], labels(overrides.trainLabels ?? nTrain)));
  writeGz(join(dir, 't10k-images-idx3-ubyte.gz'), idxBytes([nTest, 28, 28]));
  writeGz(join(dir, 't10k-labels-idx1-ubyte.gz'), idxBytes([nTest], labels(nTest)));
}

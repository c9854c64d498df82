/**
 * Reader for the IDX binary format used by MNIST-style datasets: two zero bytes, a type byte,
 * a dimension-count byte, big-endian uint32 dimensions, then the data in row-major order.
 * Only unsigned-byte data (type 0x08) is supported; files may be gzipped (by name or content).
 * Also the loader of one image/label split, which Fashion-MNIST and `idx:` datasets share.
 */

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { ImageClassificationDataset } from './dataset.js';
import { DataFormatError } from './errors.js';

export interface IdxArray {
  readonly dims: number[];
  /** The data bytes, row-major; a view into the parsed buffer, not a copy. */
  readonly data: Uint8Array;
}

export interface IdxExpectation {
  /** The number of dimensions the caller needs; a file with another count is rejected. */
  readonly ndims?: number;
}

const TYPE_UBYTE = 0x08;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** Parses an uncompressed IDX file; `file` names it in errors. */
export function parseIdx(bytes: Uint8Array, file: string, expect: IdxExpectation = {}): IdxArray {
  const { dims, headerLength } = parseIdxHeader(bytes, file, expect);
  const count = dims.reduce((a, b) => a * b, 1);
  const available = bytes.length - headerLength;
  if (available !== count) {
    const what = available < count ? 'truncated' : 'trailing bytes';
    throw new DataFormatError(file, `${what}: header says ${dims.join('x')} = ${count} bytes of data, file has ${available}`);
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/** Checks an IDX header (the first bytes of a file, the data need not follow) and reads its dimensions. */
function parseIdxHeader(bytes: Uint8Array, file: string, expect: IdxExpectation): { dims: number[]; headerLength: number } {
  if (bytes.length < 4) {
    throw new DataFormatError(file, `too short for an IDX header: ${bytes.length} bytes, need at least 4`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = bytes[2];
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const wanted = expect.ndims === undefined ? '0x0000TTNN (two zero bytes, type, ndims)' : hex32((TYPE_UBYTE << 8) | expect.ndims);
    const hint = isGzip(bytes) ? ' (the data looks gzip-compressed)' : '';
    throw new DataFormatError(file, `expected magic ${wanted}, found ${hex32(magic)}${hint}`);
  }
  if (type !== TYPE_UBYTE) {
    const name = TYPE_NAMES[type] ?? 'unknown type';
    throw new DataFormatError(file, `unsupported IDX data type 0x${hex8(type)} (${name}); only 0x08 (unsigned byte) is supported`);
  }
  if (ndims === 0) {
    throw new DataFormatError(file, 'IDX header declares 0 dimensions');
  }
  if (expect.ndims !== undefined && ndims !== expect.ndims) {
    throw new DataFormatError(file, `expected magic ${hex32((TYPE_UBYTE << 8) | expect.ndims)}, found ${hex32(magic)} (${ndims} dimensions instead of ${expect.ndims})`);
  }
  const headerLength = 4 + 4 * ndims;
  if (bytes.length < headerLength) {
    throw new DataFormatError(file, `truncated header: ${ndims} dimensions need ${headerLength} header bytes, file has ${bytes.length}`);
  }
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  return { dims, headerLength };
}

/** Whether `bytes` start with the gzip magic number. */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function readRaw(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot read IDX file ${path}: ${reason}`, { cause: err });
  }
}

/** Reads an IDX file from disk, gunzipping it when the path ends in `.gz` or the bytes are gzip data. */
export function readIdxGz(path: string, expect: IdxExpectation = {}): IdxArray {
  const raw = readRaw(path);
  if (!path.endsWith('.gz') && !isGzip(raw)) return parseIdx(raw, path, expect);
  let inflated: Buffer;
  try {
    inflated = gunzipSync(raw);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DataFormatError(path, `corrupt or truncated gzip data: ${reason}`, { cause: err });
  }
  return parseIdx(inflated, path, expect);
}

/**
 * The dimensions an IDX file declares, read from its first bytes only (a gzipped file's first
 * 4 KiB inflated), so that a dataset can be described before it is loaded. Checks the header as
 * parseIdx does but not the data's length.
 */
export function readIdxDims(path: string, expect: IdxExpectation = {}): number[] {
  let head: Buffer = Buffer.alloc(4096);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot read IDX file ${path}: ${reason}`, { cause: err });
  }
  try {
    head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
  }
  if (path.endsWith('.gz') || isGzip(head)) {
    try {
      head = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new DataFormatError(path, `corrupt gzip data: ${reason}`, { cause: err });
    }
  }
  return parseIdxHeader(head, path, expect).dims;
}

export interface IdxSplitExpectation {
  /** The image size [height, width] the files must have; default: any. */
  readonly imageSize?: readonly [number, number];
  /** Labels must lie in 0..numClasses-1. */
  readonly numClasses: number;
}

/**
 * One split of an MNIST-style dataset: an IDX file of n images [n, height, width] and one of n
 * labels [n], as samples [1, height, width] scaled to [0, 1]. `name` names the split.
 */
export function loadIdxSplit(name: string, imagesFile: string, labelsFile: string, expect: IdxSplitExpectation): ImageClassificationDataset {
  const images = readIdxGz(imagesFile, { ndims: 3 });
  const [, height, width] = images.dims;
  if (expect.imageSize !== undefined && (height !== expect.imageSize[0] || width !== expect.imageSize[1])) {
    throw new DataFormatError(imagesFile, `expected images of shape [n, ${expect.imageSize.join(', ')}], found [${images.dims.join(', ')}]`);
  }
  const labels = readIdxGz(labelsFile, { ndims: 1 });
  const n = images.dims[0];
  if (labels.dims[0] !== n) {
    throw new DataFormatError(labelsFile, `holds ${labels.dims[0]} labels but ${imagesFile} holds ${n} images; the counts must match`);
  }
  checkIdxLabels(labelsFile, labels.data, expect.numClasses);
  return new ImageClassificationDataset({ name, pixels: images.data, labels: labels.data, sampleShape: [1, height, width], numClasses: expect.numClasses });
}

/** Refuses a label outside 0..numClasses-1, naming the file, the index and the value. */
function checkIdxLabels(labelsFile: string, labels: Uint8Array, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= numClasses) {
      throw new DataFormatError(labelsFile, `label at index ${i} is ${labels[i]}, expected 0..${numClasses - 1}`);
    }
  }
}

function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

function hex8(value: number): string {
  return value.toString(16).padStart(2, '0');
}

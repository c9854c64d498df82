/**
 * Reader for the IDX binary format used by MNIST-style datasets: two zero bytes, a type byte,
 * a dimension-count byte, big-endian uint32 dimensions, then the data in row-major order.
 * Only unsigned-byte data (type 0x08) is supported; files may be gzipped.
 */

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
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
  if (bytes.length < 4) {
    throw new DataFormatError(file, `too short for an IDX header: ${bytes.length} bytes, need at least 4`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = bytes[2];
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const wanted = expect.ndims === undefined ? '0x0000TTNN (two zero bytes, type, ndims)' : hex32((TYPE_UBYTE << 8) | expect.ndims);
    const hint = bytes[0] === 0x1f && bytes[1] === 0x8b ? ' (the data looks gzip-compressed)' : '';
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
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  const available = bytes.length - headerLength;
  if (available !== count) {
    const what = available < count ? 'truncated' : 'trailing bytes';
    throw new DataFormatError(file, `${what}: header says ${dims.join('x')} = ${count} bytes of data, file has ${available}`);
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/** Reads an IDX file from disk, gunzipping it when the path ends in `.gz`. */
export function readIdxGz(path: string, expect: IdxExpectation = {}): IdxArray {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot read IDX file ${path}: ${reason}`, { cause: err });
  }
  if (!path.endsWith('.gz')) return parseIdx(raw, path, expect);
  let inflated: Buffer;
  try {
    inflated = gunzipSync(raw);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DataFormatError(path, `corrupt or truncated gzip data: ${reason}`, { cause: err });
  }
  return parseIdx(inflated, path, expect);
}

function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

function hex8(value: number): string {
  return value.toString(16).padStart(2, '0');
}

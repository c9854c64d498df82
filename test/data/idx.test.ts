/**
 * Tests for the IDX reader: a handcrafted buffer, every malformed-header case, and gzip handling.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { DataFormatError } from '../../shared/data/errors.js';
import { parseIdx, readIdxGz } from '../../shared/data/idx.js';
import { TempDirs, idxBytes, writeGz } from './idx-fixtures.js';

function formatError(fn: () => unknown): DataFormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DataFormatError);
    return err as DataFormatError;
  }
  throw new Error('expected a DataFormatError');
}

describe('parseIdx', () => {
  it('parses a handcrafted 3-d unsigned-byte buffer', () => {
    const bytes = new Uint8Array([
      0, 0, 0x08, 3,
      0, 0, 0, 2,
      0, 0, 0, 2,
      0, 0, 0, 3,
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);
    const { dims, data } = parseIdx(bytes, 'hand.idx');
    expect(dims).toEqual([2, 2, 3]);
    expect(Array.from(data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('reads big-endian dimensions above 255', () => {
    const { dims, data } = parseIdx(idxBytes([300]), 'big.idx');
    expect(dims).toEqual([300]);
    expect(data.length).toBe(300);
  });

  it('rejects a buffer too short for the magic number', () => {
    const err = formatError(() => parseIdx(new Uint8Array([0, 0, 8]), 'short.idx'));
    expect(err.file).toBe('short.idx');
    expect(err.message).toMatch(/^short\.idx: too short/);
  });

  it('rejects a truncated dimension header', () => {
    const bytes = idxBytes([4, 4]).subarray(0, 9);
    const err = formatError(() => parseIdx(bytes, 'hdr.idx'));
    expect(err.message).toContain('truncated header');
    expect(err.message).toContain('12 header bytes, file has 9');
  });

  it('rejects truncated data, naming the dims and the byte counts', () => {
    const full = idxBytes([3, 4, 5]);
    const err = formatError(() => parseIdx(full.subarray(0, full.length - 7), 'trunc.idx'));
    expect(err.message).toBe('trunc.idx: truncated: header says 3x4x5 = 60 bytes of data, file has 53');
  });

  it('rejects extra bytes after the data', () => {
    const full = idxBytes([2, 2]);
    const longer = new Uint8Array(full.length + 3);
    longer.set(full);
    const err = formatError(() => parseIdx(longer, 'extra.idx'));
    expect(err.message).toContain('header says 2x2 = 4 bytes of data, file has 7');
  });

  it('rejects a wrong magic number, showing what it found', () => {
    const bytes = idxBytes([2]);
    bytes[0] = 0x12;
    const err = formatError(() => parseIdx(bytes, 'magic.idx'));
    expect(err.message).toContain('found 0x12000801');
  });

  it('recognises gzip data passed as raw IDX', () => {
    const gz = gzipSync(idxBytes([2]));
    const err = formatError(() => parseIdx(gz, 'gz.idx', { ndims: 1 }));
    expect(err.message).toBe('gz.idx: expected magic 0x00000801, found 0x1f8b0800 (the data looks gzip-compressed)');
  });

  it('rejects a different dimension count than expected', () => {
    const err = formatError(() => parseIdx(idxBytes([2, 2]), 'dims.idx', { ndims: 3 }));
    expect(err.message).toContain('expected magic 0x00000803, found 0x00000802');
  });

  it('rejects an unsupported type byte, naming it', () => {
    const err = formatError(() => parseIdx(idxBytes([2], [1, 2], 0x0d), 'float.idx'));
    expect(err.message).toContain('unsupported IDX data type 0x0d (float32)');
    const unknown = formatError(() => parseIdx(idxBytes([2], [1, 2], 0x42), 'odd.idx'));
    expect(unknown.message).toContain('0x42 (unknown type)');
  });

  it('rejects zero dimensions', () => {
    const err = formatError(() => parseIdx(new Uint8Array([0, 0, 8, 0]), 'zero.idx'));
    expect(err.message).toContain('0 dimensions');
  });

  it('respects the byte offset of a view', () => {
    const inner = idxBytes([3], [7, 8, 9]);
    const outer = new Uint8Array(inner.length + 5);
    outer.set(inner, 5);
    const { dims, data } = parseIdx(outer.subarray(5), 'view.idx');
    expect(dims).toEqual([3]);
    expect(Array.from(data)).toEqual([7, 8, 9]);
  });
});

describe('readIdxGz', () => {
  const temps = new TempDirs();
  afterEach(() => temps.cleanup());

  it('reads a gzipped file and an uncompressed one', () => {
    const dir = temps.make();
    writeGz(join(dir, 'a.idx.gz'), idxBytes([2, 3]));
    writeFileSync(join(dir, 'a.idx'), idxBytes([2, 3]));
    for (const name of ['a.idx.gz', 'a.idx']) {
      const { dims, data } = readIdxGz(join(dir, name));
      expect(dims).toEqual([2, 3]);
      expect(Array.from(data)).toEqual([0, 1, 2, 3, 4, 5]);
    }
  });

  it('turns a truncated gzip into a DataFormatError naming the file and zlib reason', () => {
    const dir = temps.make();
    const path = join(dir, 'bad.gz');
    const gz = gzipSync(idxBytes([50, 50]));
    writeFileSync(path, gz.subarray(0, gz.length >> 1));
    const err = formatError(() => readIdxGz(path));
    expect(err.file).toBe(path);
    expect(err.message).toContain(`${path}: corrupt or truncated gzip data: unexpected end of file`);
  });

  it('turns non-gzip bytes in a .gz file into a DataFormatError', () => {
    const dir = temps.make();
    const path = join(dir, 'plain.gz');
    writeFileSync(path, idxBytes([2]));
    const err = formatError(() => readIdxGz(path));
    expect(err.message).toContain('incorrect header check');
  });

  it('reports a missing file by its path', () => {
    const dir = temps.make();
    const path = join(dir, 'nope.gz');
    expect(() => readIdxGz(path)).toThrow(path);
  });
});

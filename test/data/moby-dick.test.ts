/**
 * Tests for the Moby-Dick character-level dataset: the bundled text, CharVocabulary,
 * LanguageModelDataset windows and labels, the contiguous splits, the registry entry and
 * errors for bad files.
 */

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataFormatError } from '../../shared/data/errors.js';
import { LanguageModelDataset } from '../../shared/data/language-model.js';
import { MOBY_DICK_FILES, defaultMobyDickDir, loadMobyDick, type MobyDick } from '../../shared/data/moby-dick.js';
import { knownDatasets, openDataset } from '../../shared/data/registry.js';
import { CharVocabulary } from '../../shared/data/text.js';
import { TempDirs } from './idx-fixtures.js';

const README = join(defaultMobyDickDir(), 'README.md');
const GZ = join(defaultMobyDickDir(), 'moby-dick.txt.gz');

/** A "| Label | value |" row of the data README, as a number or string. */
function readmeValue(label: string): string {
  const row = readFileSync(README, 'utf8')
    .split('\n')
    .find((line) => line.startsWith(`| ${label} |`));
  if (row === undefined) throw new Error(`${README} has no row "${label}"`);
  return row.split('|')[2].trim().replace(/`/g, '');
}

describe('CharVocabulary', () => {
  it('sorts the distinct characters by code point and round-trips text', () => {
    const v = CharVocabulary.fromText('hello, world\n');
    expect(v.characters).toEqual(['\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect(v.size).toBe(10);
    const ids = v.encode('hello\nworld');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(Array.from(ids)).toEqual([5, 4, 6, 6, 7, 0, 9, 7, 8, 6, 3]);
    expect(v.decode(ids)).toBe('hello\nworld');
    expect(v.decode(Float32Array.from(ids))).toBe('hello\nworld');
    expect(v.has('w')).toBe(true);
    expect(v.has('x')).toBe(false);
  });

  it('treats characters outside the BMP as one character each', () => {
    const v = CharVocabulary.fromText('a🐋b🐋');
    expect(v.characters).toEqual(['a', 'b', '🐋']);
    expect(Array.from(v.encode('🐋a🐋'))).toEqual([2, 0, 2]);
    expect(v.decode([2, 1])).toBe('🐋b');
  });

  it('names an unknown character and its position on encode', () => {
    const v = CharVocabulary.fromText('abc');
    expect(() => v.encode('abxc')).toThrow(RangeError);
    expect(() => v.encode('abxc')).toThrow('character "x" (U+0078) at position 2 is not in the vocabulary of 3 characters');
    expect(() => v.encode('a\tb')).toThrow('character "\\t" (U+0009) at position 1');
  });

  it('rejects ids outside the vocabulary on decode', () => {
    const v = CharVocabulary.fromText('abc');
    expect(() => v.decode([0, 3])).toThrow('id 3 at position 1 is not a token id; expected an integer in [0, 3)');
    expect(() => v.decode([0.5])).toThrow(RangeError);
  });

  it('survives a JSON round trip with the same ids', () => {
    const v = CharVocabulary.fromText('Call me Ishmael.\n—“”');
    const json = JSON.parse(JSON.stringify(v)) as unknown;
    const back = CharVocabulary.fromJSON(json);
    expect(back.characters).toEqual(v.characters);
    expect(Array.from(back.encode('Ishmael'))).toEqual(Array.from(v.encode('Ishmael')));
  });

  it('rejects malformed JSON forms', () => {
    expect(() => CharVocabulary.fromJSON(null)).toThrow(TypeError);
    expect(() => CharVocabulary.fromJSON({ kind: 'word', characters: [] })).toThrow('expected kind "char"');
    expect(() => CharVocabulary.fromJSON({ kind: 'char', characters: 'abc' })).toThrow('must be an array');
    expect(() => CharVocabulary.fromJSON({ kind: 'char', characters: ['b', 'a'] })).toThrow('must be unique and sorted by code point');
    expect(() => CharVocabulary.fromJSON({ kind: 'char', characters: ['a', 'a'] })).toThrow('must be unique and sorted');
    expect(() => CharVocabulary.fromJSON({ kind: 'char', characters: ['ab'] })).toThrow('entry 0 is "ab", expected a single character');
  });
});

describe('LanguageModelDataset', () => {
  const vocabulary = CharVocabulary.fromText('0123456789');
  const tokens = Int32Array.from({ length: 11 }, (_, i) => i % 10);

  it('cuts floor((n - 1) / T) non-overlapping windows with next-token labels', () => {
    const ds = new LanguageModelDataset({ name: 'digits', tokens, contextLength: 3, vocabulary });
    expect(ds.size).toBe(3);
    expect(ds.sampleShape).toEqual([3]);
    expect(ds.numClasses).toBe(10);
    expect(ds.labelsPerSample).toBe(3);
    const b = ds.batch([0, 2]);
    expect(b.size).toBe(2);
    expect(Array.from(b.x)).toEqual([0, 1, 2, 6, 7, 8]);
    expect(Array.from(b.y)).toEqual([1, 2, 3, 7, 8, 9]);
    expect(b.x).toBeInstanceOf(Float32Array);
    expect(b.y).toBeInstanceOf(Int32Array);
    expect(ds.windowStart(2)).toBe(6);
    // With n = 10 the last window would need token 10 as its last label.
    expect(new LanguageModelDataset({ name: 'd', tokens: tokens.subarray(0, 10), contextLength: 3, vocabulary }).size).toBe(3);
    expect(new LanguageModelDataset({ name: 'd', tokens: tokens.subarray(0, 9), contextLength: 3, vocabulary }).size).toBe(2);
    expect(new LanguageModelDataset({ name: 'd', tokens: tokens.subarray(0, 3), contextLength: 3, vocabulary }).size).toBe(0);
    expect(new LanguageModelDataset({ name: 'd', tokens: new Int32Array(0), contextLength: 3, vocabulary }).size).toBe(0);
  });

  it('reuses the caller buffers and grows them when too small', () => {
    const ds = new LanguageModelDataset({ name: 'digits', tokens, contextLength: 2, vocabulary });
    const out = { x: new Float32Array(0), y: new Int32Array(0) };
    const first = ds.batch([0, 1, 2], out);
    expect(out.x.length).toBe(6);
    expect(out.y.length).toBe(6);
    const x = out.x;
    const y = out.y;
    expect(first.x).toBe(x);
    const second = ds.batch([4], out);
    expect(out.x).toBe(x);
    expect(out.y).toBe(y);
    expect(second.x.buffer).toBe(x.buffer);
    expect(second.y.buffer).toBe(y.buffer);
    expect(Array.from(second.x)).toEqual([8, 9]);
    expect(Array.from(second.y)).toEqual([9, 0]);
    expect(second.x.length).toBe(2);
    expect(second.y.length).toBe(2);
  });

  it('rejects bad indices, context lengths and token ids', () => {
    const ds = new LanguageModelDataset({ name: 'digits', tokens, contextLength: 5, vocabulary });
    expect(() => ds.batch([2])).toThrow('digits: sample index 2 out of range [0, 2)');
    expect(() => ds.batch([-1])).toThrow(RangeError);
    expect(() => new LanguageModelDataset({ name: 'd', tokens, contextLength: 0, vocabulary })).toThrow('d: context length must be a positive integer, got 0');
    expect(() => new LanguageModelDataset({ name: 'd', tokens: Int32Array.from([1, 10]), contextLength: 1, vocabulary })).toThrow(
      'd: token at index 1 is 10, expected an id in [0, 10)',
    );
  });
});

describe('bundled Moby-Dick', () => {
  let data: MobyDick;
  let text: string;
  beforeAll(() => {
    data = loadMobyDick();
    text = gunzipSync(readFileSync(GZ)).toString('utf8');
  });

  it('matches the README: SHA-256, character count and vocabulary size', () => {
    const raw = gunzipSync(readFileSync(GZ));
    expect(createHash('sha256').update(raw).digest('hex')).toBe(readmeValue('SHA-256 of the uncompressed text'));
    expect(createHash('sha256').update(readFileSync(GZ)).digest('hex')).toBe(readmeValue('SHA-256 of `moby-dick.txt.gz`'));
    const characters = Number(readmeValue('Characters (Unicode code points)').replace(/,/g, ''));
    expect(characters).toBe(1190317);
    expect([...text].length).toBe(characters);
    expect(raw.length).toBe(Number(readmeValue('UTF-8 bytes (uncompressed)').replace(/,/g, '')));
    expect(data.vocabulary.size).toBe(Number(readmeValue('Distinct characters (vocabulary size)')));
    expect(data.vocabulary.size).toBe(83);
  });

  it('trains on the first 90% and holds out the last 10% (test), whose first half is the validation set', () => {
    const { train, val, test } = data;
    const n = 1190317;
    expect(train.tokens.length).toBe(Math.floor(0.9 * n));
    expect(train.tokens.length + test.tokens.length).toBe(n);
    expect(train.tokens.length + val.tokens.length).toBe(Math.floor(0.95 * n));
    // Views of one stream: test follows train; val is the start of test.
    expect(val.tokens.buffer).toBe(train.tokens.buffer);
    expect(test.tokens.buffer).toBe(train.tokens.buffer);
    expect(train.tokens.byteOffset).toBe(0);
    expect(test.tokens.byteOffset).toBe(train.tokens.byteOffset + train.tokens.byteLength);
    expect(val.tokens.byteOffset).toBe(test.tokens.byteOffset);
    expect(data.vocabulary.decode(train.tokens) + data.vocabulary.decode(test.tokens)).toBe(text);
    for (const [ds, tokens] of [[train, 1071285], [val, 59516], [test, 119032]] as const) {
      expect(ds.tokens.length).toBe(tokens);
      expect(ds.size).toBe(Math.floor((tokens - 1) / 64));
      expect(ds.sampleShape).toEqual([64]);
      expect(ds.numClasses).toBe(83);
      expect(ds.vocabulary).toBe(data.vocabulary);
    }
    expect([train.name, val.name, test.name]).toEqual(['moby-dick/train', 'moby-dick/val', 'moby-dick/test']);
    expect(data.vocabulary.decode(test.tokens).endsWith('as it rolled five thousand years ago.\n')).toBe(true);
  });

  it('starts with "Call me Ishmael" in the first windows', () => {
    const b = data.train.batch([0, 1]);
    const start = data.vocabulary.decode(b.x);
    expect(start.startsWith('CHAPTER 1. Loomings.\n\nCall me Ishmael.')).toBe(true);
    expect(start).toBe(text.slice(0, 128));
  });

  it('labels each input with the next character, across window boundaries', () => {
    const T = 64;
    const indices = [0, 1, 2, 500, 501, data.train.size - 1];
    const b = data.train.batch(indices);
    expect(b.x.length).toBe(indices.length * T);
    expect(b.y.length).toBe(b.size * T);
    for (let s = 0; s < indices.length; s++) {
      for (let t = 0; t + 1 < T; t++) expect(b.y[s * T + t]).toBe(b.x[s * T + t + 1]);
      const start = indices[s] * T;
      expect(b.y[s * T + T - 1]).toBe(data.train.tokens[start + T]);
    }
    // The last label of window i is the first input of window i + 1.
    for (const s of [0, 1, 3]) expect(b.y[s * T + T - 1]).toBe(b.x[(s + 1) * T]);
    // Labels decode to the text shifted by one character.
    expect(data.vocabulary.decode(b.y.subarray(0, T))).toBe(text.slice(1, T + 1));
  });

  it('honours the context length and is reachable through the registry', () => {
    expect(knownDatasets()).toEqual(expect.arrayContaining(['fashion-mnist', 'moby-dick']));
    const opened = openDataset('moby-dick', { contextLength: 128 });
    expect(opened.train.sampleShape).toEqual([128]);
    expect(opened.train.size).toBe(Math.floor((1071285 - 1) / 128));
    expect(opened.val?.size).toBe(Math.floor((59516 - 1) / 128));
    expect(opened.vocabulary?.size).toBe(83);
    expect(opened.test.numClasses).toBe(83);
    expect(() => loadMobyDick({ contextLength: 0 })).toThrow('moby-dick: context length must be a positive integer, got 0');
    expect(() => loadMobyDick({ contextLength: 2.5 })).toThrow(RangeError);
  });
});

describe('Moby-Dick from a custom directory', () => {
  const temps = new TempDirs();
  afterEach(() => temps.cleanup());
  const sample = 'Call me Ishmael. Some years ago, never mind how long precisely, having little money.\n'.repeat(4);

  it('reads moby-dick.txt.gz, or moby-dick.txt when there is no .gz', () => {
    const dir = temps.make();
    writeFileSync(join(dir, 'moby-dick.txt'), sample);
    const plain = loadMobyDick({ dataDir: dir, contextLength: 4 });
    const n = [...sample].length;
    expect(plain.train.tokens.length + plain.test.tokens.length).toBe(n);
    expect(plain.vocabulary.decode(plain.train.batch([0]).x)).toBe('Call');
    writeFileSync(join(dir, 'moby-dick.txt.gz'), gzipSync('xyzxyz'.repeat(30)));
    const gz = loadMobyDick({ dataDir: dir, contextLength: 2 });
    expect(gz.vocabulary.characters).toEqual(['x', 'y', 'z']);
  });

  it('names the directory and both file names when the text is missing', () => {
    const dir = temps.make();
    expect(() => loadMobyDick({ dataDir: dir })).toThrow(`the directory ${dir} must hold ${MOBY_DICK_FILES.join(' or ')}`);
  });

  it('names the file when the gzip is truncated', () => {
    const dir = temps.make();
    const file = join(dir, 'moby-dick.txt.gz');
    const gz = gzipSync(sample);
    writeFileSync(file, gz.subarray(0, gz.length - 10));
    let err: unknown;
    try {
      loadMobyDick({ dataDir: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).file).toBe(file);
    expect((err as Error).message).toContain(`${file}: not a valid gzip file`);
  });

  it('names the file when the gzip is corrupt or not gzip at all', () => {
    const dir = temps.make();
    const file = join(dir, 'moby-dick.txt.gz');
    const corrupt = Buffer.from(gzipSync(sample));
    corrupt[corrupt.length - 6] ^= 0xff; // the CRC-32 in the trailer
    writeFileSync(file, corrupt);
    expect(() => loadMobyDick({ dataDir: dir })).toThrow(`${file}: not a valid gzip file`);
    writeFileSync(file, sample);
    expect(() => loadMobyDick({ dataDir: dir })).toThrow(`${file}: not a valid gzip file`);
  });

  it('names the file for invalid UTF-8, empty text and text too short for the windows', () => {
    const dir = temps.make();
    const file = join(dir, 'moby-dick.txt');
    writeFileSync(file, Buffer.from([0x43, 0x61, 0xff, 0x6c]));
    expect(() => loadMobyDick({ dataDir: dir })).toThrow(`${file}: not valid UTF-8 text`);
    writeFileSync(file, '');
    expect(() => loadMobyDick({ dataDir: dir })).toThrow(`${file}: the text is empty`);
    writeFileSync(file, 'Call me Ishmael.');
    expect(() => loadMobyDick({ dataDir: dir, contextLength: 8 })).toThrow(`${file}: text of 16 characters is too short for context length 8`);
  });
});

/**
 * Tests for datasets from the user's own files (`csv:`, `tsv:`, `text:`, `idx:`, `cifar10:`):
 * each loader on small files written here into temp directories, well-formed and malformed
 * (each error names the file and the place), and what describeDataset tells before loading.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeDataset, openDataset } from '../../shared/data/registry.js';
import { idxBytes, TempDirs, writeGz } from './idx-fixtures.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

function file(name: string, content: string | Uint8Array): string {
  const path = join(temps.make(), name);
  writeFileSync(path, content);
  return path;
}

/** n rows of f1,f2,label with labels cycling through `labels`. */
function csvText(n: number, labels: string[], sep = ','): string {
  const rows = Array.from({ length: n }, (_, i) => [String(i), String(2 * i + 1), labels[i % labels.length]].join(sep));
  return [['f1', 'f2', 'label'].join(sep), ...rows].join('\n') + '\n';
}

describe('csv:FILE', () => {
  it('reads features and labels, holds out 20 % and standardises with training statistics', () => {
    const path = file('data.csv', csvText(10, ['b', 'a', 'c']));
    const data = openDataset(`csv:${path}`);
    expect(data.classNames).toEqual(['a', 'b', 'c']);
    expect(data.train.size).toBe(8);
    expect(data.test.size).toBe(2);
    expect(data.train.sampleShape).toEqual([2]);
    expect(data.train.numClasses).toBe(3);
    const train = data.train.batch(Array.from({ length: 8 }, (_, i) => i));
    for (let f = 0; f < 2; f++) {
      let mean = 0;
      let sq = 0;
      for (let i = 0; i < 8; i++) mean += train.x[i * 2 + f] / 8;
      for (let i = 0; i < 8; i++) sq += (train.x[i * 2 + f] - mean) ** 2 / 8;
      expect(mean).toBeCloseTo(0, 5);
      expect(sq).toBeCloseTo(1, 4);
    }
    // The same split and scaling each time (a fixed seed).
    expect(Array.from(openDataset(`csv:${path}`).test.batch([0, 1]).x)).toEqual(Array.from(data.test.batch([0, 1]).x));
    expect(describeDataset(`csv:${path}`)).toMatchObject({ input: 'features', sampleShape: [2], labelsPerSample: 1, numClasses: 3 });
  });

  it('takes the label column by name, sorts numeric labels numerically and parses quoted fields', () => {
    const path = file('q.csv', 'kind,x,"y, cm"\n10,1,2\n2,3,4\n1,5,6\n"10",7,8\n');
    const data = openDataset(`csv:${path}`, { labelColumn: 'kind' });
    expect(data.classNames).toEqual(['1', '2', '10']);
    expect(data.train.sampleShape).toEqual([2]);
    const strings = file('s.csv', 'x,name\n1,"Smith, J"\n2,"say ""hi"""\n3,"Smith, J"\n');
    expect(openDataset(`csv:${strings}`).classNames).toEqual(['Smith, J', 'say "hi"']);
  });

  it('reads tab-separated values by tsv: or a .tsv name', () => {
    const path = file('data.tsv', csvText(6, ['x', 'y'], '\t'));
    expect(openDataset(`csv:${path}`).train.sampleShape).toEqual([2]);
    expect(openDataset(`tsv:${path}`).classNames).toEqual(['x', 'y']);
  });

  it('names the file, the row and the column of a value that is not a number', () => {
    const path = file('data.csv', 'f1,petal_width,label\n1,2,a\n3,abc,b\n');
    expect(() => openDataset(`csv:${path}`)).toThrow(`${path}: row 3, column 'petal_width': 'abc' is not a number`);
    const empty = file('e.csv', 'f1,f2,label\n1,,a\n3,4,b\n');
    expect(() => openDataset(`csv:${empty}`)).toThrow(`${empty}: row 2, column 'f2': '' is not a number`);
  });

  it('names the row and both counts when a row has the wrong number of fields', () => {
    const path = file('data.csv', 'f1,f2,label\n1,2,a\n3,4\n5,6,b\n');
    expect(() => openDataset(`csv:${path}`)).toThrow(`${path}: row 3 has 2 field(s) but the header has 3 columns`);
    // A blank line before it: the row counts records, and the line is named too.
    const blank = file('b.csv', 'f1,f2,label\n1,2,a\n\n3,4\n');
    expect(() => openDataset(`csv:${blank}`)).toThrow(`${blank}: row 3 (line 4) has 2 field(s)`);
  });

  it('refuses an empty file, a missing label column and broken quoting, naming what is wrong', () => {
    const empty = file('empty.csv', '');
    expect(() => openDataset(`csv:${empty}`)).toThrow(`${empty}: the file is empty`);
    const path = file('data.csv', csvText(4, ['a', 'b']));
    expect(() => describeDataset(`csv:${path}`, { labelColumn: 'species' })).toThrow(`${path}: no label column 'species' (--label): the columns are 'f1', 'f2', 'label'`);
    const headerOnly = file('h.csv', 'f1,label\n');
    expect(() => openDataset(`csv:${headerOnly}`)).toThrow(`${headerOnly}: holds 0 data row(s)`);
    const quote = file('q.csv', 'f1,label\n1,"a\n2,b\n');
    expect(() => openDataset(`csv:${quote}`)).toThrow(new RegExp(`${quote}: not valid CSV: .*line`));
    expect(() => openDataset(`csv:${join(temps.make(), 'missing.csv')}`)).toThrow(/cannot read the CSV file .*missing\.csv/);
  });

  it('refuses --label for datasets without columns', () => {
    expect(() => describeDataset('moby-dick', { labelColumn: 'x' })).toThrow('--label x: only csv: and tsv: datasets');
    expect(() => describeDataset(`text:${file('t.txt', 'abc')}`, { labelColumn: 'x' })).toThrow('--label x: only csv: and tsv: datasets');
  });
});

describe('text:FILE', () => {
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);

  it('is a character language model split 90 / 10 like moby-dick', () => {
    const path = file('story.txt', text);
    const data = openDataset(`text:${path}`, { contextLength: 16 });
    expect(data.vocabulary?.size).toBe(new Set(text).size);
    expect(data.train.sampleShape).toEqual([16]);
    expect(data.train.size).toBe(Math.floor((Math.floor(text.length * 0.9) - 1) / 16));
    expect(data.test.size).toBe(Math.floor((text.length - Math.floor(text.length * 0.9) - 1) / 16));
    expect(data.val).toBeDefined();
    expect(describeDataset(`text:${path}`, { contextLength: 16 })).toMatchObject({ input: 'tokens', sampleShape: [16], labelsPerSample: 16 });
  });

  it('refuses an empty file and one shorter than a context, naming the file', () => {
    const empty = file('empty.txt', '');
    expect(() => openDataset(`text:${empty}`)).toThrow(`${empty}: the text is empty`);
    const short = file('short.txt', 'just a few words here');
    expect(() => openDataset(`text:${short}`, { contextLength: 16 })).toThrow(`${short}: text of 21 characters is too short for context length 16`);
    expect(() => openDataset(`text:${file('bad.txt', new Uint8Array([0x61, 0xff]))}`)).toThrow('not valid UTF-8 text');
  });
});

describe('idx:DIR and idx:IMAGES,LABELS', () => {
  const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 10);

  function mnistDir(gz: boolean, nTrain = 20, nTest = 10): string {
    const dir = temps.make();
    const write = (name: string, bytes: Uint8Array) => (gz ? writeGz(join(dir, `${name}.gz`), bytes) : writeFileSync(join(dir, name), bytes));
    write('train-images-idx3-ubyte', idxBytes([nTrain, 8, 8]));
    write('train-labels-idx1-ubyte', idxBytes([nTrain], labels(nTrain)));
    write('t10k-images-idx3-ubyte', idxBytes([nTest, 8, 8]));
    write('t10k-labels-idx1-ubyte', idxBytes([nTest], labels(nTest)));
    return dir;
  }

  it('reads the standard file names in a directory, gzipped or not, any image size', () => {
    for (const gz of [false, true]) {
      const dir = mnistDir(gz);
      const data = openDataset(`idx:${dir}`);
      expect(data.train.size).toBe(20);
      expect(data.test.size).toBe(10);
      expect(data.train.sampleShape).toEqual([1, 8, 8]);
      expect(data.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(describeDataset(`idx:${dir}`)).toMatchObject({ input: 'features', sampleShape: [1, 8, 8], numClasses: 10 });
    }
  });

  it('holds 20 % of one images/labels pair out as the test split', () => {
    const dir = mnistDir(false);
    const data = openDataset(`idx:${join(dir, 'train-images-idx3-ubyte')},${join(dir, 'train-labels-idx1-ubyte')}`);
    expect(data.train.size).toBe(16);
    expect(data.test.size).toBe(4);
  });

  it('names a missing standard file and a truncated one', () => {
    const dir = temps.make();
    expect(() => openDataset(`idx:${dir}`)).toThrow(`IDX file not found: ${join(dir, 'train-images-idx3-ubyte')}[.gz]`);
    const full = mnistDir(false);
    const images = join(full, 'train-images-idx3-ubyte');
    writeFileSync(images, idxBytes([20, 8, 8]).subarray(0, 100));
    expect(() => openDataset(`idx:${full}`)).toThrow(`${images}: truncated: header says 20x8x8 = 1280 bytes of data, file has 84`);
    expect(() => openDataset(`idx:${join(full, 'nope')}`)).toThrow('is not a directory');
  });
});

describe('cifar10:DIR', () => {
  const RECORD = 3073;

  function cifarDir(perFile = 3): string {
    const dir = temps.make();
    const batch = (offset: number) => {
      const bytes = new Uint8Array(perFile * RECORD);
      for (let r = 0; r < perFile; r++) {
        bytes[r * RECORD] = (r + offset) % 10;
        bytes.fill(255, r * RECORD + 1, r * RECORD + 1 + 1024); // the red plane
      }
      return bytes;
    };
    for (let i = 1; i <= 5; i++) writeFileSync(join(dir, `data_batch_${i}.bin`), batch(i));
    writeFileSync(join(dir, 'test_batch.bin'), batch(0));
    return dir;
  }

  it('reads the five training batches and the test batch as [3, 32, 32] in [0, 1] with the CIFAR-10 names', () => {
    const data = openDataset(`cifar10:${cifarDir()}`);
    expect(data.train.size).toBe(15);
    expect(data.test.size).toBe(3);
    expect(data.train.sampleShape).toEqual([3, 32, 32]);
    expect(data.classNames?.[0]).toBe('airplane');
    expect(data.classNames?.[9]).toBe('truck');
    const b = data.train.batch([0]);
    expect(b.y[0]).toBe(1);
    expect(b.x[0]).toBe(1);
    expect(b.x[1024]).toBe(0);
    expect(describeDataset('cifar10:x')).toMatchObject({ sampleShape: [3, 32, 32], numClasses: 10 });
  });

  it('names a truncated file and its byte count, a missing one and a bad label', () => {
    const dir = cifarDir();
    const file2 = join(dir, 'data_batch_2.bin');
    writeFileSync(file2, new Uint8Array(RECORD + 5));
    expect(() => openDataset(`cifar10:${dir}`)).toThrow(`${file2}: truncated: 3078 bytes is not a whole number of 3073-byte records (1 records and 5 bytes over)`);
    writeFileSync(file2, new Uint8Array(RECORD).fill(12));
    expect(() => openDataset(`cifar10:${dir}`)).toThrow(`${file2}: record 0 (byte 0) has label 12, expected 0..9`);
    const empty = temps.make();
    expect(() => openDataset(`cifar10:${empty}`)).toThrow(`CIFAR-10 file not found: ${join(empty, 'data_batch_1.bin')}`);
  });
});

describe('dataset names', () => {
  it('refuses an empty path and lists the spellings for an unknown name', () => {
    expect(() => openDataset('csv:')).toThrow("no path after 'csv:'");
    expect(() => openDataset('parquet:x')).toThrow('unknown dataset "parquet:x"; known datasets: fashion-mnist, moby-dick; or your own files: csv:FILE');
  });
});

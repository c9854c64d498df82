/**
 * Tabular classification or regression from a user's CSV or TSV file (`--dataset csv:FILE`,
 * `tsv:FILE`): a header row, one label column (by name, default the last) and numeric features in
 * every other column; for regression (a --loss of mse or huber) the label column holds the numeric
 * target, kept as is (not scaled: the figures, RMSE included, are in its own units). Fields are parsed per RFC 4180 by csv-parse (quoted fields, "" escapes, CRLF, a BOM).
 * The classes are the distinct label values, sorted (numerically when every one is a number,
 * else as strings); a seeded 20 % of the rows is held out as the test split (HOLD_OUT); each feature is
 * standardised with the training rows' mean and standard deviation, test rows included.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import { HOLD_OUT, holdOutIndices } from './dataset.js';
import { InMemoryDataset } from './in-memory.js';
import { DataFormatError } from './errors.js';


export interface CsvOptions {
  /** ',' (csv) or '\t' (tsv). */
  readonly delimiter: ',' | '\t';
  /** The label column's name; default: the last column. */
  readonly labelColumn?: string;
  /** The label column is a numeric regression target, not a class. */
  readonly regression?: boolean;
}

/** What a CSV file holds, read from it before any training (see describeDataset). */
export interface CsvTable {
  readonly file: string;
  /** The feature columns' names, in file order. */
  readonly featureNames: readonly string[];
  readonly labelColumn: string;
  /** The class names in id order: the distinct label values, sorted (regression: none). */
  readonly classNames: readonly string[];
  /** rows * featureNames.length raw feature values, row-major. */
  readonly features: Float64Array;
  /** Each row's class id (regression: zeros). */
  readonly labels: Int32Array;
  /** Regression: each row's target value (null for classification). */
  readonly targets: Float64Array | null;
}

export interface CsvDataset {
  readonly train: InMemoryDataset;
  readonly test: InMemoryDataset;
  readonly classNames: readonly string[];
  readonly featureNames: readonly string[];
  /** Per feature, the training rows' mean and the standard deviation divided by (1 where it is 0). */
  readonly scaling: { readonly mean: Float64Array; readonly std: Float64Array };
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function quote(value: string): string {
  return `'${value.replace(/\r?\n/g, '\\n')}'`;
}

/** Reads and checks the whole table; every failure names the file, the row (the header is row 1) and the column. */
export function readCsvTable(file: string, opts: CsvOptions): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the CSV file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: { record: string[]; info: { lines: number } }[];
  try {
    parsed = parse(text, { delimiter: opts.delimiter, bom: true, relax_column_count: true, skip_empty_lines: true, info: true }) as unknown as typeof parsed;
  } catch (err) {
    // csv-parse names the line: "Invalid Opening Quote: a quote is found on field 2 at line 3, ..."
    throw new DataFormatError(file, `not valid ${opts.delimiter === '\t' ? 'TSV' : 'CSV'}: ${(err as Error).message}`, { cause: err });
  }
  const records = parsed.map((p) => p.record);
  // Rows count records, the header being row 1; where blank lines or quoted line breaks make the
  // file's line number differ, it is named too.
  const at = (r: number): string => (parsed[r].info.lines === r + 1 ? `row ${r + 1}` : `row ${r + 1} (line ${parsed[r].info.lines})`);
  if (records.length === 0) throw new DataFormatError(file, 'the file is empty: expected a header row naming the columns, then one row per sample');
  const header = records[0].map((h) => h.trim());
  if (header.length < 2) throw new DataFormatError(file, `the header row has ${header.length} column (${header.map(quote).join(', ')}): expected at least one feature column and a label column`);
  const seen = new Set<string>();
  header.forEach((h, c) => {
    if (h === '') throw new DataFormatError(file, `row 1: column ${c + 1} has no name`);
    if (seen.has(h)) throw new DataFormatError(file, `row 1: the column name ${quote(h)} appears twice`);
    seen.add(h);
  });
  const labelColumn = opts.labelColumn ?? header[header.length - 1];
  const labelIndex = header.indexOf(labelColumn);
  if (labelIndex < 0) throw new DataFormatError(file, `no label column ${quote(labelColumn)} (--label): the columns are ${header.map(quote).join(', ')}`);
  const rows = records.length - 1;
  if (rows < 2) throw new DataFormatError(file, `holds ${rows} data row(s) after the header; need at least 2 (one to train on, one to test)`);
  const featureNames = header.filter((_, c) => c !== labelIndex);
  const width = featureNames.length;
  const features = new Float64Array(rows * width);
  const labelValues: string[] = new Array<string>(rows);
  for (let r = 0; r < rows; r++) {
    const record = records[r + 1];
    const row = at(r + 1);
    if (record.length !== header.length) {
      throw new DataFormatError(file, `${row} has ${record.length} field(s) but the header has ${header.length} columns`);
    }
    let f = 0;
    for (let c = 0; c < record.length; c++) {
      const raw = record[c];
      const value = raw.trim();
      if (c === labelIndex) {
        if (value === '') throw new DataFormatError(file, `${row}, column ${quote(header[c])}: the ${opts.regression ? 'target' : 'label'} is empty`);
        if (opts.regression && !NUMBER.test(value)) throw new DataFormatError(file, `${row}, column ${quote(header[c])}: ${quote(raw)} is not a number (the regression target)`);
        labelValues[r] = value;
        continue;
      }
      if (!NUMBER.test(value)) throw new DataFormatError(file, `${row}, column ${quote(header[c])}: ${quote(raw)} is not a number`);
      features[r * width + f++] = Number(value);
    }
  }
  if (opts.regression) return { file, featureNames, labelColumn, classNames: [], features, labels: new Int32Array(rows), targets: Float64Array.from(labelValues, Number) };
  const classNames = sortLabels([...new Set(labelValues)]);
  const ids = new Map(classNames.map((name, i) => [name, i]));
  const labels = Int32Array.from(labelValues, (v) => ids.get(v) ?? -1);
  return { file, featureNames, labelColumn, classNames, features, labels, targets: null };
}

/** Numbers numerically when every value is one, else strings by code unit. */
function sortLabels(values: string[]): string[] {
  if (values.every((v) => NUMBER.test(v))) return values.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The train/test datasets of a table: a seeded split, features standardised with training statistics. */
export function csvDataset(table: CsvTable): CsvDataset {
  const width = table.featureNames.length;
  const split = holdOutIndices(table.labels.length, HOLD_OUT.fraction, HOLD_OUT.seed);
  const mean = new Float64Array(width);
  const std = new Float64Array(width);
  for (const r of split.train) for (let f = 0; f < width; f++) mean[f] += table.features[r * width + f];
  for (let f = 0; f < width; f++) mean[f] /= split.train.length;
  for (const r of split.train) {
    for (let f = 0; f < width; f++) {
      const d = table.features[r * width + f] - mean[f];
      std[f] += d * d;
    }
  }
  for (let f = 0; f < width; f++) {
    std[f] = Math.sqrt(std[f] / split.train.length);
    if (!(std[f] > 0)) std[f] = 1;
  }
  const name = basename(table.file);
  const make = (which: 'train' | 'test', rows: Int32Array): InMemoryDataset => {
    const x = new Float32Array(rows.length * width);
    const y = table.targets ? new Float32Array(rows.length) : new Int32Array(rows.length);
    rows.forEach((r, i) => {
      y[i] = table.targets ? table.targets[r] : table.labels[r];
      for (let f = 0; f < width; f++) x[i * width + f] = (table.features[r * width + f] - mean[f]) / std[f];
    });
    if (table.targets) return new InMemoryDataset({ name: `${name}/${which}`, x, y, sampleShape: [width], task: 'regression', numClasses: 1 });
    return new InMemoryDataset({ name: `${name}/${which}`, x, y, sampleShape: [width], numClasses: table.classNames.length });
  };
  return { train: make('train', split.train), test: make('test', split.test), classNames: table.classNames, featureNames: table.featureNames, scaling: { mean, std } };
}

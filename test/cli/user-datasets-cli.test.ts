/**
 * One real `meshgrad train` run per kind of user dataset (csv:, text:, idx:, cifar10:) through the
 * built CLI, one `local` run on a CSV (the workers get the samples over the wire: a user dataset is
 * in no worker's list), and a bad CSV refused in one line before training.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { idxBytes } from '../data/idx-fixtures.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples', 'data');
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshgrad-user-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function trainsWithSummary(args: string[]): Promise<Record<string, number>> {
  const summaryJson = join(dir, `summary-${Math.random().toString(36).slice(2)}.json`);
  const r = await runCli(['train', ...args, '--summary-json', summaryJson], { timeoutMs: 120_000 });
  expect(r.stderr + r.stdout, r.stderr).toMatch(/test accuracy [\d.]+%/);
  expect(r.code).toBe(0);
  const summary = JSON.parse(readFileSync(summaryJson, 'utf8')) as Record<string, number>;
  expect(summary.steps).toBeGreaterThan(0);
  return summary;
}

describe('train on your own data', () => {
  it('csv: an mlp on the example iris table, --label by name', async () => {
    const summary = await trainsWithSummary(['--model', join(EXAMPLES, 'iris-mlp.json'), '--dataset', `csv:${join(EXAMPLES, 'iris.csv')}`, '--label', 'species', '--epochs', '10']);
    expect(summary.testAccuracy).toBeGreaterThan(0.5);
  });

  it('text: char-gru on a short text', async () => {
    await trainsWithSummary(['--model', 'char-gru', '--dataset', `text:${join(EXAMPLES, 'loomings.txt')}`, '--batch-size', '16', '--max-steps', '2']);
  });

  it('idx: an mlp on MNIST-shaped files, not gzipped', async () => {
    const idx = join(dir, 'mnist');
    const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 10);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(idx);
    writeFileSync(join(idx, 'train-images-idx3-ubyte'), idxBytes([40, 28, 28]));
    writeFileSync(join(idx, 'train-labels-idx1-ubyte'), idxBytes([40], labels(40)));
    writeFileSync(join(idx, 't10k-images-idx3-ubyte'), idxBytes([10, 28, 28]));
    writeFileSync(join(idx, 't10k-labels-idx1-ubyte'), idxBytes([10], labels(10)));
    await trainsWithSummary(['--model', 'mlp', '--dataset', `idx:${idx}`, '--batch-size', '20', '--max-steps', '2']);
  });

  it('cifar10: an mlp on the example batches', async () => {
    await trainsWithSummary(['--model', join(EXAMPLES, 'cifar10-mlp.json'), '--dataset', `cifar10:${join(EXAMPLES, 'cifar10-tiny')}`, '--epochs', '1']);
  });

  it('local: a coordinator and 2 workers on a CSV', async () => {
    const r = await runCli(['local', '--workers', '2', '--threads', '2', '--model', join(EXAMPLES, 'iris-mlp.json'), '--dataset', `csv:${join(EXAMPLES, 'iris.csv')}`, '--epochs', '2'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/test accuracy [\d.]+%.* with 2 worker\(s\)/);
  });

  it('a bad value is refused in one line naming the file, the row and the column', async () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'a,b,label\n1,2,x\n3,oops,y\n');
    const r = await runCli(['train', '--model', join(EXAMPLES, 'iris-mlp.json'), '--dataset', `csv:${bad}`, '--max-steps', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([`meshgrad: ${bad}: row 3, column 'b': 'oops' is not a number`]);
  });

  it('a model whose input does not fit the CSV is refused before training', async () => {
    const r = await runCli(['train', '--model', 'mlp', '--dataset', `csv:${join(EXAMPLES, 'iris.csv')}`, '--max-steps', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--model mlp does not fit --dataset csv:.*iris\.csv: the model's input is \[1, 28, 28\] but the dataset's samples are rows of 4 features \[4\]/);
  });
});

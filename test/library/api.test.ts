/**
 * The library API (lib/): `train(model, …)` / `fit` runs the very loop of `meshgrad train` (the
 * same parameters bit for bit from the same model, data and seed), `train({ model, dataset })` is
 * the CLI's trainer, InMemoryDataset checks what it is given, optimizerFor steps a model by hand,
 * and saveModel / loadModel round-trip a model's state.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchSampler, firstSamples, InMemoryDataset, loadModel, Module, nn, ops, optimizerFor, Rng, saveModel, train, trainSingleProcess, type Tensor } from '../../lib/index.js';
import { openDataset } from '../../lib/data.js';
import * as engine from '../../lib/engine.js';
import * as distributed from '../../lib/distributed.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const scratch = mkdtempSync(join(tmpdir(), 'meshgrad-api-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('train / fit', () => {
  it('gives the parameters trainSingleProcess gives for the same model, data and seed', async () => {
    const config = mlpTrainConfig({ trainSamples: 512, testSamples: 200, batchSize: 64, maxSteps: 6, epochs: Infinity, optimizer: 'sgd', lr: 0.05, momentum: 0.9, clipNorm: 1, schedule: 'cosine', warmupSteps: 2 });
    const reference = await trainSingleProcess(config, { step() {}, epoch() {} });
    const data = openDataset('fashion-mnist');
    const model = nn.buildModel(config.model, new Rng(config.seed), { numClasses: 10 }).model;
    const steps: number[] = [];
    const result = await train(model, {
      train: firstSamples(data.train, 512),
      test: firstSamples(data.test, 200),
      epochs: Infinity,
      batchSize: 64,
      maxSteps: 6,
      optimizer: 'sgd',
      lr: 0.05,
      momentum: 0.9,
      clipNorm: 1,
      schedule: 'cosine',
      warmupSteps: 2,
      seed: 1,
      onStep: (e) => steps.push(e.step),
    });
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.steps).toBe(reference.summary.steps);
    expect(result.testAccuracy).toBe(reference.summary.testAccuracy);
    expect(result.trainLoss).toBe(reference.summary.trainLoss);
    expect(result.history).toHaveLength(1);
    const ours = new Map(model.namedParameters());
    for (const [name, p] of reference.model.namedParameters()) expect(Array.from(ours.get(name)!.dataSync()), name).toEqual(Array.from(p.dataSync()));
  });

  it('train({ model, dataset }) is the CLI trainer, with the CLI defaults', async () => {
    const epochs: number[] = [];
    const { summary, model } = await train({ model: 'mlp', dataset: 'fashion-mnist', trainSamples: 128, testSamples: 100, maxSteps: 2, onEpoch: (e) => epochs.push(e.epoch) });
    expect(summary.steps).toBe(2);
    // 128 samples in batches of 128: one step an epoch, so --max-steps 2 alone runs two epochs.
    expect(epochs).toEqual([0, 1]);
    expect(model.parameterCount()).toBeGreaterThan(0);
  });

  it('refuses a batch larger than the training set and early stopping without a val set', async () => {
    const data = new InMemoryDataset({ x: [[0], [1]], y: [0, 1] });
    const model = new nn.Linear(1, 2, new Rng(1));
    await expect(train(model, { train: data, batchSize: 3 })).rejects.toThrow(/larger than the training set/);
    await expect(train(model, { train: data, batchSize: 2, earlyStoppingPatience: 1 })).rejects.toThrow(/needs a val dataset/);
  });
});

describe('InMemoryDataset', () => {
  it('takes rows or flat values and batches them', () => {
    const rows = new InMemoryDataset({ x: [[1, 2], [3, 4], [5, 6]], y: [0, 2, 1] });
    expect([rows.size, rows.numClasses, rows.sampleShape]).toEqual([3, 3, [2]]);
    const b = rows.batch([2, 0]);
    expect(Array.from(b.x)).toEqual([5, 6, 1, 2]);
    expect(Array.from(b.y)).toEqual([1, 0]);
    const flat = new InMemoryDataset({ x: new Float32Array(12), y: [0, 1, 0], sampleShape: [1, 2, 2], numClasses: 4 });
    expect([flat.numClasses, flat.sampleShape]).toEqual([4, [1, 2, 2]]);
    expect(new BatchSampler({ size: flat.size, batchSize: 2, seed: 0 }).numBatches).toBe(2);
  });

  it('refuses inconsistent input, naming it', () => {
    expect(() => new InMemoryDataset({ x: [[1, 2], [3]], y: [0, 1] })).toThrow(/row 1 has 1 values/);
    expect(() => new InMemoryDataset({ x: [1, 2, 3], y: [0, 1] })).toThrow(/do not divide/);
    expect(() => new InMemoryDataset({ x: [[1], [2]], y: [0, 1.5] })).toThrow(/label at index 1/);
    expect(() => new InMemoryDataset({ x: [[1], [2]], y: [0, 3], numClasses: 2 })).toThrow(/out of range for numClasses 2/);
    expect(() => new InMemoryDataset({ x: [[1], [NaN]], y: [0, 1] })).toThrow(/NaN at sample 1/);
    expect(() => new InMemoryDataset({ x: [[1, 2]], y: [0], sampleShape: [3] })).toThrow(/holds 3 values/);
  });
});

describe('a hand-written loop and checkpoints', () => {
  class Affine extends Module {
    readonly w: Tensor;
    constructor() {
      super();
      this.w = this.registerParameter('w', ops.zeros([1, 1]));
    }
    forward(x: Tensor): Tensor {
      return ops.matmul(x, this.w);
    }
  }

  it('optimizerFor steps the model in place; saveModel and loadModel round-trip it', async () => {
    const model = new Affine();
    const opt = optimizerFor(model, 'sgd', { lr: 0.1 });
    const x = ops.tensor([1, 2], [2, 1]);
    const y = ops.tensor([2, 4], [2, 1]);
    for (let i = 0; i < 50; i++) {
      opt.zeroGrad();
      ops.mse(model.forward(x), y).backward();
      opt.step();
    }
    expect(model.w.item()).toBeCloseTo(2, 4);
    const path = join(scratch, 'affine.safetensors');
    await saveModel(path, model, { note: 'x2' });
    const copy = new Affine();
    expect(await loadModel(path, copy)).toEqual({ note: 'x2' });
    expect(copy.w.item()).toBe(model.w.item());
  });

  it('the subpaths export what the README names', () => {
    for (const name of ['Tensor', 'Module', 'nn', 'optim', 'ops', 'saveModel', 'loadModel', 'saveCheckpoint', 'loadCheckpoint', 'optimizerFor', 'relu', 'crossEntropy']) expect(engine, name).toHaveProperty(name);
    for (const name of ['startCoordinator', 'runWorker', 'createWorker', 'trainLocal', 'Coordinator', 'MeshWorker']) expect(distributed, name).toHaveProperty(name);
  });
});

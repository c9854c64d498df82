// The single-process trainer learns Fashion-MNIST, deterministically. The full 5-epoch accuracy
// run is a recorded run (docs/training.md); this is its small, fast counterpart.
import { describe, expect, it } from 'vitest';
import { trainSingleProcess, type TrainConfig } from '../../shared/train/single-process.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const quiet = { step: () => {}, epoch: () => {} };

const config: TrainConfig = mlpTrainConfig({ epochs: 2, trainSamples: 6000 });

describe('single-process training', () => {
  it('an MLP reaches at least 77% test accuracy on Fashion-MNIST from 6,000 samples in 2 epochs', async () => {
    const { summary } = await trainSingleProcess(config, quiet);
    expect(summary.steps).toBe(2 * Math.ceil(6000 / 128));
    expect(summary.samples).toBe(12000);
    expect(summary.testAccuracy).toBeGreaterThanOrEqual(0.77);
    expect(summary.trainLoss).toBeLessThan(0.7);
  });
  it('the same seed gives bit-identical parameters; another seed does not', async () => {
    const short = { ...config, maxSteps: 5 };
    const a = (await trainSingleProcess(short, quiet)).model.parameters()[0].dataSync();
    const b = (await trainSingleProcess(short, quiet)).model.parameters()[0].dataSync();
    const c = (await trainSingleProcess({ ...short, seed: 2 }, quiet)).model.parameters()[0].dataSync();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

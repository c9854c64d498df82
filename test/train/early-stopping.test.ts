// Validation split and early stopping.
import { describe, expect, it } from 'vitest';
import { EarlyStopping } from '../../shared/train/early-stopping.js';
import { trainSingleProcess, type EpochEvent, type TrainConfig } from '../../shared/train/single-process.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

describe('EarlyStopping', () => {
  it('stops after `patience` epochs without improvement and restores the best parameters', () => {
    const slot = { name: 'w', value: new Float32Array([0]), grad: null };
    const stop = new EarlyStopping(2);
    const losses = [1.0, 0.8, 0.9, 0.85];
    const decisions = losses.map((loss, epoch) => {
      slot.value[0] = epoch;
      return stop.observe(loss, [slot], epoch);
    });
    expect(decisions).toEqual([false, false, false, true]);
    expect(stop.bestEpochIndex).toBe(1);
    expect(stop.restoreBest([slot])).toBe(true);
    expect(slot.value[0]).toBe(1);
    expect(() => new EarlyStopping(0)).toThrow(/patience/);
  });
});

describe('training with a validation split', () => {
  // Every epoch ends with a test evaluation: 1,000 test images (not 10,000) keep these runs short
  // on a busy machine (the reference backend evaluates them in TypeScript).
  const base: TrainConfig = mlpTrainConfig({ epochs: 3, trainSamples: 2000, testSamples: 1000, valFraction: 0.25 });
  it('reports validation beside training each epoch and trains on the rest only', async () => {
    const epochs: EpochEvent[] = [];
    const { summary } = await trainSingleProcess(base, { step: () => {}, epoch: (e) => void epochs.push(e) });
    expect(epochs).toHaveLength(3);
    for (const e of epochs) expect(e.val?.samples).toBe(500);
    expect(summary.samples).toBe(3 * 1500);
  });
  it('early stopping needs a validation split', async () => {
    await expect(trainSingleProcess({ ...base, valFraction: 0, earlyStoppingPatience: 1 }, { step: () => {}, epoch: () => {} })).rejects.toThrow(/validation split/);
  });
  it('with a learning rate that overfits fast, stops early and keeps the best epoch', async () => {
    const epochs: EpochEvent[] = [];
    const { summary } = await trainSingleProcess({ ...base, epochs: 12, lr: 3e-2, trainSamples: 600, valFraction: 0.5, earlyStoppingPatience: 2 }, { step: () => {}, epoch: (e) => void epochs.push(e) });
    expect(epochs.length).toBeLessThan(12);
    const best = Math.min(...epochs.map((e) => e.val!.loss));
    const last = epochs[epochs.length - 1].val!.loss;
    expect(last).toBeGreaterThan(best);
    expect(Number.isFinite(summary.testAccuracy)).toBe(true);
  });
});

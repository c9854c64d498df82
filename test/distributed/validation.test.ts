/**
 * A distributed run holds out the same validation split as `train`, never sends those samples to
 * workers, reports validation beside training each epoch, and stops early at the same epoch with
 * the same (best-epoch) parameters.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator } from '../../coordinator/coordinator.js';
import { trainValSplit, firstSamples, SubsetDataset } from '../../shared/data/dataset.js';
import { openDataset } from '../../shared/data/registry.js';
import { trainSingleProcess, type EpochEvent } from '../../shared/train/single-process.js';
import { silentLogger } from '../../shared/util/log.js';
import { baseConfig, Cluster } from '../helpers/cluster.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const cluster = new Cluster();
afterEach(() => cluster.closeAll());

describe('validation split and early stopping across workers', () => {
  // 600 samples, half held out; lr 3e-2 overfits within a few epochs. Each epoch ends with a test
  // evaluation; 1,000 test images (not 10,000) keep the run short on a busy machine.
  const settings = { epochs: 12, lr: 3e-2, trainSamples: 600, testSamples: 1000, valFraction: 0.5, earlyStoppingPatience: 2 } as const;

  it('matches single-process training epoch by epoch and never trains on validation samples', { timeout: 300_000 }, async () => {
    const single: EpochEvent[] = [];
    const { summary: ref } = await trainSingleProcess(mlpTrainConfig(settings), { step: () => {}, epoch: (e) => void single.push(e) });

    const distributed: EpochEvent[] = [];
    const config = baseConfig({ ...mlpTrainConfig(settings), minWorkers: 2, auditSamples: true });
    const coordinator = await Coordinator.start(config, { step: () => {}, epoch: (e) => void distributed.push(e) }, silentLogger);
    cluster.coordinators.push(coordinator);
    const url = `ws://127.0.0.1:${coordinator.port}`;
    cluster.worker(url);
    cluster.worker(url);
    const summary = await coordinator.run();

    expect(single.length).toBeLessThan(12); // it did stop early
    expect(distributed.length).toBe(single.length);
    distributed.forEach((e, i) => {
      expect(e.val?.samples).toBe(300);
      expect(e.val!.loss).toBeCloseTo(single[i].val!.loss, 4);
    });
    // Both end on the best validation epoch's parameters, so their test figures agree.
    expect(summary.testLoss).toBeCloseTo(ref.testLoss, 4);
    // The last validation figures are exported beside train and test.
    const loss = await coordinator.metrics.common.registry.getSingleMetricAsString('meshgrad_loss');
    const exported = Number(/^meshgrad_loss\{split="validation"\} (\S+)$/m.exec(loss)?.[1]);
    expect(exported).toBeCloseTo(distributed[distributed.length - 1].val!.loss, 6);

    const data = openDataset('fashion-mnist', {});
    const { val } = trainValSplit(firstSamples(data.train, 600), 0.5, config.seed);
    const held = new Set(Array.from({ length: val.size }, (_, i) => (val as SubsetDataset).baseIndex(i)));
    for (const counts of coordinator.sampleUsage.values()) {
      counts.forEach((n, index) => expect(n, `sample ${index}`).toBe(held.has(index) ? 0 : 1));
    }
  });

  it('refuses early stopping without a validation split, naming the flag', async () => {
    const config = baseConfig({ ...mlpTrainConfig({ ...settings, valFraction: 0 }) });
    await expect(Coordinator.start(config, { step: () => {}, epoch: () => {} }, silentLogger)).rejects.toThrow(/--val-fraction/);
  });
});

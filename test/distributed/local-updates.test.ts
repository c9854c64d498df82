// --sync-every H (local SGD / DiLoCo) with real worker processes: one worker with a plain outer
// step (lr 1, no momentum) is `train` to float rounding (its inner optimizer keeps its state
// across rounds, as train's does); two workers use every sample once, end each epoch and the run
// on the right step, learn, and send one parameter change per H steps.
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { trainSingleProcess } from '../../shared/train/single-process.js';
import { baseConfig, Cluster, relativeDifference } from '../helpers/cluster.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const cluster = new Cluster();
afterEach(async () => {
  await cluster.closeAll();
});

async function framesIn(registry: Registry, type: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'meshgrad_messages_total');
  return Number(metric?.values.find((v) => v.labels.direction === 'in' && v.labels.type === type)?.value ?? 0);
}

describe('--sync-every', () => {
  it('one worker, H = 4, outer lr 1 without momentum: the parameters of train within 1e-5 (Adam inner state kept across rounds)', async () => {
    const common = { trainSamples: 1280, batchSize: 64, maxSteps: 18, epochs: 2 } as const;
    const single = await trainSingleProcess(mlpTrainConfig(common), { step: () => {}, epoch: () => {} });
    const expected = new Map(single.model.namedParameters().map(([name, p]) => [name, (p.dataSync() as Float32Array).slice()]));
    const coordinator = await cluster.coordinator(baseConfig({ ...common, syncEvery: 4, outerLr: 1, outerMomentum: 0 }));
    cluster.worker(coordinator.url, ['--threads', '1']);
    const summary = await coordinator.run();
    // 18 steps in rounds of 4 from each epoch's start: 4, 4, 4, 4, 2 (the epoch has 20 batches).
    expect(summary.steps).toBe(18);
    const diff = relativeDifference(coordinator.parameters(), expected);
    console.log(`sync-every 4, one worker vs train: relative difference ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
    expect(diff).toBeGreaterThanOrEqual(0);
  });

  it('two workers, H = 4: each sample once per epoch, rounds cut at the epoch end, the loss falls, one gradients message per worker per 4 steps', async () => {
    const registry = new Registry();
    const batch = 64;
    // 22 batches an epoch: rounds of 4, 4, 4, 4, 4, 2.
    // No speculative copies: a round slowed by a busy machine would be copied to the other worker,
    // and its extra (discarded) gradients message would spoil the exact count below.
    const config = baseConfig({ trainSamples: 22 * batch, batchSize: batch, epochs: 2, minWorkers: 2, auditSamples: true, syncEvery: 4, balance: 'even', speculation: false });
    const losses: number[] = [];
    const coordinator = await cluster.coordinator(config, (e) => losses.push(e.loss), createCoordinatorMetrics(registry));
    cluster.worker(coordinator.url, ['--threads', '1']);
    cluster.worker(coordinator.url, ['--threads', '1']);
    const summary = await coordinator.run();
    expect(summary.steps).toBe(44);
    expect(summary.samples).toBe(44 * batch);
    for (const epoch of [0, 1]) expect(coordinator.sampleUsage.get(epoch)!.every((n) => n === 1), `epoch ${epoch}`).toBe(true);
    // Six rounds an epoch, one contribution per worker each.
    expect(losses).toHaveLength(12);
    expect(await framesIn(registry, 'gradients')).toBe(2 * 12);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-3))).toBeLessThan(0.8 * mean(losses.slice(0, 3)));
    expect(Number.isFinite(summary.testAccuracy)).toBe(true);
  });

  it('--clip-norm with --sync-every > 1 is refused before anything starts, and H must be a whole number', async () => {
    await expect(cluster.coordinator(baseConfig({ syncEvery: 4, clipNorm: 1 }))).rejects.toThrow(/--clip-norm does not apply with --sync-every/);
    await expect(cluster.coordinator(baseConfig({ syncEvery: 2.5 }))).rejects.toThrow(/--sync-every 2.5: must be a whole number/);
  });
});

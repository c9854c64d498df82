// Fault tolerance with real worker processes: a worker killed mid-epoch, and a coordinator
// interrupted and resumed from its checkpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfig, Cluster, relativeDifference } from '../helpers/cluster.js';
import { parseModelSpec } from '../../shared/nn/spec.js';
import { trainSingleProcess } from '../../shared/train/single-process.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const cluster = new Cluster();
let dir = '';
afterEach(async () => {
  await cluster.closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('fault tolerance', () => {
  it('a worker killed with SIGKILL mid-epoch: training completes and every sample is used exactly once', async () => {
    const config = baseConfig({ trainSamples: 3000, batchSize: 100, epochs: 1, minWorkers: 2, auditSamples: true, balance: 'throughput' });
    let victim: ReturnType<Cluster['worker']> | null = null;
    const coordinator = await cluster.coordinator(config, (e) => {
      if (e.step === 8 && victim) {
        victim.kill('SIGKILL');
        victim = null;
      }
    });
    const workers = [0, 1, 2].map(() => cluster.worker(coordinator.url));
    victim = workers[1];
    const summary = await coordinator.run();
    expect(summary.steps).toBe(30);
    expect(summary.samples).toBe(3000);
    expect(summary.workersJoined).toBe(3);
    expect(summary.workers).toBe(2);
    const usage = coordinator.sampleUsage.get(0)!;
    expect(usage.length).toBe(3000);
    expect(usage.every((n) => n === 1)).toBe(true);
    expect(Number.isFinite(summary.testAccuracy)).toBe(true);
    // The survivors were told the run finished and exit cleanly.
    expect(await cluster.exited(workers[0])).toBe(0);
    expect(await cluster.exited(workers[2])).toBe(0);
  });

  it('an interrupted coordinator resumed with --resume reaches the parameters of an uninterrupted run', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-resume-'));
    const common = { trainSamples: 1280, batchSize: 128, epochs: 2, minWorkers: 2 } as const;

    const straight = await cluster.coordinator(baseConfig({ ...common, checkpointDir: join(dir, 'a') }));
    cluster.worker(straight.url);
    cluster.worker(straight.url);
    const full = await straight.run();
    expect(full.steps).toBe(20);
    const expected = straight.parameters();
    await cluster.closeAll();

    // Interrupted after step 13 (mid second epoch), then resumed on the same port.
    const first = await cluster.coordinator(baseConfig({ ...common, checkpointDir: join(dir, 'b') }), (e, c) => {
      if (e.step === 13) c.requestStop();
    });
    const port = first.port;
    cluster.worker(first.url);
    cluster.worker(first.url);
    const partial = await first.run();
    expect(partial.interrupted).toBe(true);
    expect(partial.steps).toBe(13);
    await first.close();

    // The same workers reconnect on their own (back-off) to the resumed coordinator.
    const resumed = await cluster.coordinator(baseConfig({ ...common, checkpointDir: join(dir, 'b'), resume: true, port }));
    const rest = await resumed.run();
    expect(rest.interrupted).toBe(false);
    expect(rest.steps).toBe(20);
    expect(relativeDifference(resumed.parameters(), expected)).toBe(0);
    await resumed.close();

    // Resuming a run that already finished trains nothing and reports the same final figures.
    const again = await cluster.coordinator(baseConfig({ ...common, checkpointDir: join(dir, 'b'), resume: true }));
    const same = await again.run();
    expect(same.steps).toBe(20);
    expect(same.interrupted).toBe(false);
    expect(same.testLoss).toBeCloseTo(rest.testLoss, 6);
  });

  it('refuses to resume with a different batch size, naming it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-resume-'));
    const c = await cluster.coordinator(baseConfig({ trainSamples: 256, checkpointDir: dir, maxSteps: 1 }));
    cluster.worker(c.url);
    await c.run();
    await expect(cluster.coordinator(baseConfig({ trainSamples: 256, checkpointDir: dir, resume: true, batchSize: 64 }))).rejects.toThrow(/batchSize 128, this run has 64/);
  });
});

describe('membership', () => {
  it('a worker that joins mid-run receives the current parameters and takes part from then on', async () => {
    // The first worker runs the slow reference backend, so the run lasts seconds: long enough for
    // a process started at step 3 to join while it is still going.
    const config = baseConfig({ trainSamples: 12800, batchSize: 128, epochs: 1, minWorkers: 1, auditSamples: true });
    let late: ReturnType<Cluster['worker']> | null = null;
    const coordinator = await cluster.coordinator(config, (e, c) => {
      if (e.step === 3 && !late) late = cluster.worker(c.url);
    });
    const first = cluster.worker(coordinator.url, ['--backend', 'cpu']);
    const summary = await coordinator.run();
    expect(summary.steps).toBe(100);
    expect(summary.workersJoined).toBe(2);
    expect(summary.workers).toBe(2);
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
    expect(await cluster.exited(first)).toBe(0);
    expect(await cluster.exited(late!)).toBe(0);
  });

  it('--send-samples: workers without a dataset train from samples sent over the wire, with the same result', async () => {
    const config = baseConfig({ trainSamples: 640, batchSize: 128, epochs: 1 });
    const local = await cluster.coordinator(config);
    cluster.worker(local.url);
    await local.run();
    const expected = local.parameters();
    await cluster.closeAll();
    const remote = await cluster.coordinator({ ...config, sendSamples: true });
    cluster.worker(remote.url, ['--no-local-data', '--data-dir', '/nonexistent']);
    await remote.run();
    expect(relativeDifference(remote.parameters(), expected)).toBe(0);
  });
});

describe('buffers', () => {
  it('BatchNorm running statistics are averaged across workers each step, like DDP buffers', async () => {
    const spec = parseModelSpec({
      name: 'bn-mlp',
      input: [1, 28, 28],
      layers: [{ type: 'flatten' }, { type: 'linear', out: 32 }, { type: 'batchnorm1d' }, { type: 'relu' }, { type: 'linear', out: 10 }],
    });
    const config = baseConfig({ model: spec, trainSamples: 1280, batchSize: 128, minWorkers: 2 });
    const single = await trainSingleProcess(mlpTrainConfig({ model: spec, trainSamples: 1280 }), { step: () => {}, epoch: () => {} });
    const coordinator = await cluster.coordinator(config);
    cluster.worker(coordinator.url);
    cluster.worker(coordinator.url);
    await coordinator.run();
    const state = coordinator.buffers();
    const expected = single.model.stateDict();
    expect(state.get('2.num_batches_tracked')![0]).toBe(10);
    // Each worker normalises with its own shard's statistics (DDP without SyncBatchNorm), so the
    // run is not bit-equal to one process; its running statistics still track the single-process
    // ones. (Without the averaging they would stay at their initial 0 / 1 on the coordinator.)
    const mean = state.get('2.running_mean')!;
    const refMean = expected.get('2.running_mean')!.dataSync();
    mean.forEach((v, i) => expect(Math.abs(v - refMean[i])).toBeLessThan(0.1 + 0.1 * Math.abs(refMean[i])));
    expect(mean.some((v) => v !== 0)).toBe(true);
    const variance = state.get('2.running_var')!;
    const refVar = expected.get('2.running_var')!.dataSync();
    variance.forEach((v, i) => expect(Math.abs(v - refVar[i]) / refVar[i]).toBeLessThan(0.2));
  });
});

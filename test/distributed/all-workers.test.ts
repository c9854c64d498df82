// Every connected worker takes part: 16 real worker processes under --balance throughput all
// compute shards, every step, the slow ones included, however unevenly the machine's two cores
// serve them. (Before every worker was guaranteed a sample, the slow ones were rounded down to
// nothing, never measured again, and sat idle: this test failed 2 runs out of 2.)
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfig, Cluster } from '../helpers/cluster.js';

const cluster = new Cluster();
afterEach(() => cluster.closeAll());

/** The shards a worker says it computed: its closing `done` log line. */
function shardsComputed(output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const event = JSON.parse(line) as { msg?: string; steps?: number };
      if (event.msg === 'done') return event.steps;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

describe('throughput balancing with many workers', () => {
  it('16 worker processes: every one computes a shard at every step, each sample exactly once', { timeout: 600_000 }, async () => {
    const workers = 16;
    const steps = 6;
    const batch = 64;
    const config = baseConfig({
      balance: 'throughput',
      // Training starts once all 16 have joined; nothing here may end on a clock: 16 processes
      // share two cores, so heartbeats (silence limit: four of them), the step deadline and the
      // workers' --compute-timeout are far longer than any step can take.
      minWorkers: workers,
      heartbeatMs: 30_000,
      stepTimeoutMs: 300_000,
      // Under this load shard times vary far more than the speculation factor: a copied shard
      // would leave its late worker out of a step, which is not what this test is about.
      speculation: false,
      trainSamples: steps * batch,
      batchSize: batch,
      maxSteps: steps,
      epochs: 1,
      auditSamples: true,
      // The coordinator sends the samples: 16 copies of Fashion-MNIST are not what is tested.
      sendSamples: true,
    });
    const coordinator = await cluster.coordinator(config);
    // Two of them on the TypeScript reference kernels, several times slower than wasm: workers
    // whose share of a 64-sample batch is well below one sample.
    const children = Array.from({ length: workers }, (_, i) =>
      cluster.worker(coordinator.url, ['--threads', '1', '--no-local-data', '--name', `n${i + 1}`, '--log-level', 'info', '--compute-timeout', '600', ...(i < 2 ? ['--backend', 'cpu'] : [])]),
    );
    // Attached now, so no exit can slip past: 'close' comes once the output is drained as well.
    const closed = children.map((c) => new Promise<void>((resolve) => c.once('close', () => resolve())));
    const summary = await coordinator.run();

    expect(summary.steps).toBe(steps);
    expect(summary.workersJoined).toBe(workers);
    expect(summary.workers).toBe(workers);
    // No worker was dropped, and each got a piece of every batch: 16 pieces of every step.
    expect(summary.workerShares).toHaveLength(workers);
    for (const share of summary.workerShares) {
      expect(share.shards, share.worker).toBe(steps);
      expect(share.samples, share.worker).toBeGreaterThanOrEqual(steps);
    }
    expect(summary.workerShares.reduce((s, w) => s + w.samples, 0)).toBe(steps * batch);
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);

    // And each worker process says so itself as it exits.
    await Promise.all(closed);
    for (const child of children) {
      const output = cluster.output.get(child) ?? '';
      expect(child.exitCode, output).toBe(0);
      expect(shardsComputed(output), output).toBe(steps);
    }
  });
});

// Straggler tolerance with real worker processes: one of three workers frozen by SIGSTOP. Its
// shard is re-run by an idle worker (the first result wins), it sits out the next rounds, so
// steps keep their pace; when it resumes, its late result is discarded and counted, and every
// sample is still used exactly once.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { parseModelSpec } from '../../shared/nn/spec.js';
import { baseConfig, Cluster } from '../helpers/cluster.js';

/** The mlp with dropout: every piece's masks must not depend on the worker that computes it. */
const DROPOUT_MLP = parseModelSpec(JSON.parse(readFileSync(new URL('../../docs/models/mlp-regularized.json', import.meta.url), 'utf8')));

const cluster = new Cluster();
afterEach(async () => {
  for (const w of cluster.workers) if (w.signalCode === null && w.exitCode === null) w.kill('SIGCONT');
  await cluster.closeAll();
});

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return Number(value?.value ?? 0);
}

describe('a frozen worker (SIGSTOP), one of three', () => {
  it('does not stall the run: the median step during the freeze stays within 2x the undisturbed one; its late result is discarded and counted; every sample is used once', async () => {
    const registry = new Registry();
    const batch = 96;
    const samples = 40 * batch;
    // Heartbeats every 2 s: silence drops a worker after 8 s, well after the freeze ends.
    const config = baseConfig({ trainSamples: samples, batchSize: batch, epochs: 1000, testSamples: 200, minWorkers: 3, heartbeatMs: 2000, auditSamples: true, balance: 'throughput' });
    const steps: Array<{ at: number; ms: number }> = [];
    const coordinator = await cluster.coordinator(config, (e) => steps.push({ at: Date.now(), ms: e.timing?.stepMs ?? NaN }), createCoordinatorMetrics(registry));
    for (const name of ['a', 'b', 'frozen']) cluster.worker(coordinator.url, ['--threads', '1', '--name', name]);
    const frozen = cluster.workers[2];
    const done = coordinator.run();
    const waitSteps = async (n: number): Promise<void> => {
      while (steps.length < n) await new Promise((r) => setTimeout(r, 20));
    };

    await waitSteps(60); // warm-up, then the undisturbed steps
    const before = steps.slice(-30).map((s) => s.ms);
    const freezeAt = Date.now();
    frozen.kill('SIGSTOP');
    // Frozen for 3 s: the steps completed meanwhile are the disturbed ones.
    await new Promise((r) => setTimeout(r, 3000));
    frozen.kill('SIGCONT');
    const during = steps.filter((s) => s.at > freezeAt && s.at <= freezeAt + 3000).map((s) => s.ms);
    const resumedAt = steps.length;
    // Back: its late result arrives and is dropped; it is given shards again.
    const giveUpAt = Date.now() + 20_000;
    while (Date.now() < giveUpAt) {
      if ((await counter(registry, 'meshgrad_gradients_received_total', { result: 'discarded' })) >= 1 && steps.length > resumedAt + 20) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    coordinator.requestStop();
    const summary = await done;

    const undisturbed = median(before);
    const frozenMedian = median(during);
    console.log(`median step: undisturbed ${undisturbed.toFixed(1)} ms, while frozen ${frozenMedian.toFixed(1)} ms (${during.length} steps; slowest ${Math.max(...during).toFixed(1)} ms)`);
    expect(during.length).toBeGreaterThanOrEqual(10);
    expect(frozenMedian).toBeLessThanOrEqual(2 * undisturbed);
    expect(await counter(registry, 'meshgrad_speculative_shards_total', { outcome: 'launched' })).toBeGreaterThanOrEqual(1);
    expect(await counter(registry, 'meshgrad_speculative_shards_total', { outcome: 'copy_won' })).toBeGreaterThanOrEqual(1);
    expect(await counter(registry, 'meshgrad_late_shards_total', { worker: 'frozen' })).toBeGreaterThanOrEqual(1);
    // Never dropped: it was late, not gone.
    expect(summary.workersJoined).toBe(3);
    expect(summary.workers).toBe(3);
    expect(summary.workerShares.find((w) => w.worker.endsWith('(frozen)'))!.shards).toBeGreaterThan(0);

    // Exactly once: every completed epoch used each sample once; the last (interrupted) one at most once, as many as its steps.
    const epochs = [...coordinator.sampleUsage.keys()].sort((a, b) => a - b);
    for (const epoch of epochs) {
      const usage = coordinator.sampleUsage.get(epoch)!;
      const used = usage.reduce((s, n) => s + n, 0);
      expect(usage.every((n) => n <= 1), `epoch ${epoch}`).toBe(true);
      if (epoch < epochs.at(-1)!) expect(used, `epoch ${epoch}`).toBe(samples);
    }
    expect(epochs.reduce((s, e) => s + coordinator.sampleUsage.get(e)!.reduce((a, n) => a + n, 0), 0)).toBe(summary.samples);
    expect(summary.samples).toBe(summary.steps * batch);
  }, 120_000);

  it('with --balance even the run keeps its bits: the same parameters as an undisturbed run (dropout included), copies and reassigned pieces notwithstanding', async () => {
    const run = async (freeze: boolean): Promise<{ params: Map<string, Float32Array>; launched: number }> => {
      const registry = new Registry();
      const config = baseConfig({ model: DROPOUT_MLP, optimizer: 'adamw', weightDecay: 1, trainSamples: 3000, batchSize: 100, maxSteps: 60, epochs: 2, testSamples: 100, minWorkers: 3, heartbeatMs: 2000, balance: 'even' });
      let thaw: NodeJS.Timeout | null = null;
      const names = ['a', 'b', 'frozen'];
      const coordinator = await cluster.coordinator(config, (e) => {
        if (freeze && e.step === 10) {
          cluster.workers.at(-1)!.kill('SIGSTOP');
          thaw = setTimeout(() => cluster.workers.at(-1)!.kill('SIGCONT'), 1500);
        }
      }, createCoordinatorMetrics(registry));
      for (const name of names) cluster.worker(coordinator.url, ['--threads', '1', '--name', name]);
      const summary = await coordinator.run();
      if (thaw) clearTimeout(thaw);
      cluster.workers.at(-1)!.kill('SIGCONT');
      expect(summary.steps).toBe(60);
      expect(summary.workersJoined).toBe(3);
      const params = coordinator.parameters();
      const launched = await counter(registry, 'meshgrad_speculative_shards_total', { outcome: 'launched' });
      await cluster.closeAll();
      return { params, launched };
    };
    const calm = await run(false);
    const disturbed = await run(true);
    expect(disturbed.launched).toBeGreaterThanOrEqual(1);
    for (const [name, value] of calm.params) expect(Buffer.from(disturbed.params.get(name)!.buffer).equals(Buffer.from(value.buffer)), name).toBe(true);
  }, 120_000);
});

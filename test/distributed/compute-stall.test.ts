// A worker whose compute thread stops answering (blocked for good, as a lost wake-up in its thread
// pool would leave it) must say so instead of rejoining forever: its /healthz fails with the
// reason, it sends `leave` so the coordinator counts a leave and redoes its shard at once (not
// after --step-timeout), and it ends with outcome 'failed' rather than reconnecting. The stall is
// real: the compute thread blocks in Atomics.wait (MESHGRAD_FAILPOINT, worker/compute-thread.ts).
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { MetricsServer } from '../../shared/metrics/http-server.js';
import { silentLogger } from '../../shared/util/log.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { MeshWorker } from '../../worker/worker.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { get } from '../helpers/processes.js';

const cluster = new Cluster();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await cluster.closeAll();
});

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))?.value ?? 0;
}

describe('a worker with a stuck compute thread', () => {
  it('fails /healthz, tells the coordinator (leave), and stops instead of rejoining', { timeout: 300_000 }, async () => {
    const coordinatorRegistry = new Registry();
    // A step deadline far beyond the test's, and no speculative copies: the shard must come back
    // through the leave (a copy on the healthy worker would let the run end before the stall is seen).
    const c = await cluster.coordinator(baseConfig({ trainSamples: 1280, batchSize: 64, maxSteps: 6, stepTimeoutMs: 3_600_000, minWorkers: 1, speculation: false }), undefined, createCoordinatorMetrics(coordinatorRegistry));
    const registry = new Registry();
    // The stall limit (at least 10x the longest task so far) must clear a first shard on a loaded
    // machine by far: at 0.5 s, a first assignment slowed by other processes was taken for the stall.
    const stuck = new MeshWorker(
      { url: c.url, token: TOKEN, localData: true, backoffInitialMs: 50, backoffMaxMs: 100, maxPayload: 1 << 30, threads: 1, computeStallMs: 5_000, failpoint: 'compute-stall-after:2' },
      silentLogger,
      createWorkerMetrics(registry),
    );
    cleanups.push(() => stuck.stop());
    const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0, registry, unhealthy: () => stuck.health() });
    cleanups.push(() => server.close());
    expect((await get(`${server.url}/healthz`)).status).toBe(200);

    const healthy = cluster.worker(c.url, ['--threads', '1']);
    const [summary, outcome] = await Promise.all([c.run(), stuck.run()]);

    expect(outcome.kind).toBe('failed');
    const reason = outcome.kind === 'failed' ? outcome.reason : '';
    expect(reason).toMatch(/^compute thread stuck: no answer for \d+\.\d s with 1 request waiting \(limit \d+\.\d s; longest task so far \d+\.\d+ s\)$/);
    const health = await get(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(health.body).toBe(`unhealthy: ${reason}\n`);
    // The coordinator heard a leave, not a failure, and the other worker finished the run.
    expect(await counter(coordinatorRegistry, 'meshgrad_membership_changes_total', { kind: 'leave' })).toBe(1);
    expect(await counter(coordinatorRegistry, 'meshgrad_membership_changes_total', { kind: 'join' })).toBe(2);
    for (const kind of ['disconnect', 'timeout', 'silent', 'rejected']) expect(await counter(coordinatorRegistry, 'meshgrad_worker_failures_total', { kind })).toBe(0);
    expect(summary.steps).toBe(6);
    expect(await cluster.exited(healthy)).toBe(0);
    // It computed its two shards, then stalled on the third; it never joined again.
    expect(stuck.stepsDone).toBe(2);
    expect(await counter(registry, 'meshgrad_worker_reconnects_total', {})).toBe(0);
  });
});

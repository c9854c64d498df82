// The metrics follow a run: a hand-driven worker (raw frames) lets the coordinator's counters be
// checked exactly — steps, accepted / stale / rejected contributions, decode errors by code,
// refused connections, membership, checkpoints — and an in-process MeshWorker its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { MetricsServer } from '../../shared/metrics/http-server.js';
import { PROTOCOL_VERSION, toWire, type Message } from '../../shared/protocol/index.js';
import { silentLogger } from '../../shared/util/log.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { MeshWorker } from '../../worker/worker.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { get } from '../helpers/processes.js';
import { RawClient } from '../helpers/raw-client.js';

const cluster = new Cluster();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await cluster.closeAll();
});

/** The value of one series (0 when absent); for a histogram, its number of observations. */
async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { type, values } = await metric.get();
  // The typings declare a numeric enum; at run time the type is its name.
  const series = String(type) === 'histogram' ? `${name}_count` : name;
  const sameLabels = (l: Partial<Record<string, string | number>>): boolean =>
    Object.keys(l).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => String(l[k]) === v);
  const found = values.find((v) => ((v as { metricName?: string }).metricName ?? name) === series && sameLabels(v.labels));
  return found?.value ?? 0;
}

const join_ = (protocol = PROTOCOL_VERSION): Message => ({ type: 'join', protocol, capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } });

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('coordinator metrics during a run', () => {
  it('count steps, contributions by result and reason, decode errors, refusals, membership and checkpoints', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgrad-metrics-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const registry = new Registry();
    const metrics = createCoordinatorMetrics(registry);
    // One gradients and one params message per step (no buckets), so message counts are per step.
    const c = await cluster.coordinator(baseConfig({ trainSamples: 640, batchSize: 128, checkpointDir: dir, checkpointEvery: 2, bucketBytes: 0 }), undefined, metrics);
    const clients: RawClient[] = [];
    cleanups.push(() => clients.forEach((x) => x.close()));
    const connect = async (token: string = TOKEN): Promise<RawClient> => {
      const x = await RawClient.connect(c.url, token);
      clients.push(x);
      return x;
    };

    // Refused before joining: a bad token, a protocol version the coordinator does not speak.
    await expect(RawClient.connect(c.url, 'wrong')).rejects.toThrow('HTTP 401');
    const old = await connect();
    old.send(join_(7));
    await old.closed();
    expect(await value(registry, 'meshgrad_rejected_connections_total', { reason: 'bad_token' })).toBe(1);
    expect(await value(registry, 'meshgrad_rejected_connections_total', { reason: 'protocol_version' })).toBe(1);

    // Frames that do not decode, from a connection that never joins.
    const stranger = await connect();
    stranger.sendRaw(new Uint8Array([0xc1, 0xff]));
    stranger.sendRaw(pack({ type: 'launch' }));
    stranger.sendRaw(pack({ type: 'heartbeat', time: 'noon' }));
    await stranger.next('error', 2);
    expect(await value(registry, 'meshgrad_decode_errors_total', { code: 'UNDECODABLE' })).toBe(1);
    expect(await value(registry, 'meshgrad_decode_errors_total', { code: 'UNKNOWN_TYPE' })).toBe(1);
    expect(await value(registry, 'meshgrad_decode_errors_total', { code: 'BAD_MESSAGE' })).toBe(1);
    expect(await value(registry, 'meshgrad_messages_total', { direction: 'in', type: 'invalid' })).toBe(3);
    expect(await value(registry, 'meshgrad_messages_total', { direction: 'out', type: 'error' })).toBe(4); // 3 + the version refusal

    // A worker that joins and disconnects before training: a join, a drop, a disconnect failure.
    const fleeting = await connect();
    fleeting.send(join_());
    await fleeting.next('welcome');
    fleeting.close();
    await until(async () => (await value(registry, 'meshgrad_membership_changes_total', { kind: 'drop' })) === 1);
    expect(await value(registry, 'meshgrad_worker_failures_total', { kind: 'disconnect' })).toBe(1);

    // The worker that trains, by hand: 5 steps of 128 samples with zero gradients and loss 0.5.
    const running = c.run();
    const w = await connect();
    w.send(join_());
    const welcome = await w.next('welcome');
    expect(await value(registry, 'meshgrad_workers', { state: 'active' })).toBe(1);
    expect(await value(registry, 'meshgrad_workers', { state: 'joining' })).toBe(1); // the stranger
    const shapes = welcome.params.map((p) => p.shape);
    const grads = (broken = false) => shapes.map((s, i) => toWire(new Float32Array(s.reduce((a, b) => a * b, 1)), broken && i === 0 ? [1] : s));
    let cursor = 0;
    const take = async <T extends Message['type']>(type: T): Promise<Extract<Message, { type: T }>> => {
      const m = await w.next(type, cursor);
      cursor = w.received.indexOf(m) + 1;
      return m;
    };
    for (let step = 0; step < 5; step++) {
      let a = await take('assign');
      const answer = (overrides: Partial<Extract<Message, { type: 'gradients' }>> = {}): void =>
        w.send({ type: 'gradients', step: a.step, version: a.version, shard: a.shard, samples: a.indices.shape[0], loss: 0.5, correct: 32, computeMs: 1, grads: grads(), ...overrides });
      if (step === 0) {
        answer({ grads: grads(true) }); // rejected (BAD_SHAPE): the shard is assigned again
        expect((await take('error')).code).toBe('BAD_SHAPE');
        a = await take('assign');
        answer({ step: 99 }); // stale
        expect((await take('error')).code).toBe('STALE_STEP');
      }
      answer();
      await take('params');
    }
    const summary = await running;
    expect(summary.steps).toBe(5);

    const v = (name: string, labels?: Record<string, string>): Promise<number> => value(registry, name, labels);
    expect(await v('meshgrad_steps_total')).toBe(5);
    expect(await v('meshgrad_global_step')).toBe(5);
    expect(await v('meshgrad_samples_total')).toBe(640);
    expect(await v('meshgrad_epoch')).toBe(1);
    expect(await v('meshgrad_gradients_received_total', { result: 'accepted', reason: 'none' })).toBe(5);
    expect(await v('meshgrad_gradients_received_total', { result: 'rejected', reason: 'BAD_SHAPE' })).toBe(1);
    expect(await v('meshgrad_gradients_received_total', { result: 'stale', reason: 'STALE_STEP' })).toBe(1);
    expect(await v('meshgrad_messages_total', { direction: 'in', type: 'gradients' })).toBe(7);
    expect(await v('meshgrad_messages_total', { direction: 'out', type: 'params' })).toBe(5);
    expect(await v('meshgrad_step_duration_seconds')).toBe(5); // observations
    expect(await v('meshgrad_straggler_wait_seconds')).toBe(5);
    expect(await v('meshgrad_world_size')).toBe(1);
    expect(await v('meshgrad_loss', { split: 'train' })).toBeCloseTo(0.5, 6);
    expect(await v('meshgrad_accuracy_ratio', { split: 'train' })).toBeCloseTo(0.25, 6);
    expect(await v('meshgrad_accuracy_ratio', { split: 'test' })).toBeGreaterThan(0);
    expect(await v('meshgrad_gradient_norm')).toBe(0);
    expect(await v('meshgrad_learning_rate')).toBeCloseTo(1e-3, 9);
    expect(await v('meshgrad_membership_changes_total', { kind: 'join' })).toBe(2);
    expect(await v('meshgrad_membership_changes_total', { kind: 'leave' })).toBe(0);
    // Checkpoints after steps 2 and 4, and at the end.
    expect(await v('meshgrad_checkpoints_total')).toBe(3);
    expect(await v('meshgrad_checkpoint_duration_seconds')).toBe(3);
    expect(await v('meshgrad_checkpoint_size_bytes')).toBeGreaterThan(4 * 235_146);
    expect(Math.abs((await v('meshgrad_checkpoint_last_timestamp_seconds')) - Date.now() / 1000)).toBeLessThan(60);
    expect(c.accepting).toBe(false); // the run is over
  });

  it('a worker that sends leave counts as a leave, not a failure; /readyz follows the coordinator', async () => {
    const registry = new Registry();
    const c = await cluster.coordinator(baseConfig(), undefined, createCoordinatorMetrics(registry));
    const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0, registry, ready: () => c.accepting });
    cleanups.push(() => server.close());
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
    const w = await RawClient.connect(c.url, TOKEN);
    cleanups.push(() => w.close());
    w.send(join_());
    await w.next('welcome');
    w.send({ type: 'leave', reason: 'shutdown' });
    await until(async () => (await value(registry, 'meshgrad_membership_changes_total', { kind: 'leave' })) === 1);
    expect(await value(registry, 'meshgrad_worker_failures_total', { kind: 'disconnect' })).toBe(0);
    c.requestStop();
    expect((await get(`${server.url}/readyz`)).status).toBe(503);
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('worker metrics during a run', () => {
  it('count shards, samples, phase timings and the wait for parameters', async () => {
    const c = await cluster.coordinator(baseConfig({ trainSamples: 384, batchSize: 128 }));
    const registry = new Registry();
    const worker = new MeshWorker(
      { url: c.url, token: TOKEN, localData: true, backoffInitialMs: 50, backoffMaxMs: 100, maxPayload: 1 << 30, threads: 1 },
      silentLogger,
      createWorkerMetrics(registry),
    );
    cleanups.push(() => worker.stop());
    const [summary, outcome] = await Promise.all([c.run(), worker.run()]);
    expect(summary.steps).toBe(3);
    expect(outcome).toEqual({ kind: 'finished', steps: 3 });
    expect(await value(registry, 'meshgrad_worker_steps_total')).toBe(3);
    expect(await value(registry, 'meshgrad_worker_samples_total')).toBe(384);
    for (const phase of ['forward', 'backward', 'encode']) expect(await value(registry, 'meshgrad_worker_compute_seconds', { phase })).toBe(3);
    expect(await value(registry, 'meshgrad_worker_communication_seconds')).toBe(3);
    expect(await value(registry, 'meshgrad_worker_batch_loss')).toBeGreaterThan(0);
    expect(await value(registry, 'meshgrad_worker_reconnects_total')).toBe(0);
    expect(await value(registry, 'meshgrad_messages_total', { direction: 'out', type: 'gradients' })).toBe(3);
    expect(await value(registry, 'meshgrad_run_info', { role: 'worker', model: 'mlp', dataset: 'fashion-mnist', optimizer: 'unknown', compression: 'none' })).toBe(1);
  });
});

// --compress with real worker processes: fp16, bf16 and int8 runs train (the loss falls), an
// in-process worker ends holding exactly the coordinator's view of the workers' parameters, and
// the frames shrink ~2x / ~4x each way (byte counts, which are deterministic, not times).
//
// Malformed compressed frames (a wrong byte length, a negative or NaN scale, a dtype the run does
// not use, a compressed tensor in an uncompressed run) get their error codes, their shards are
// redone, and the run ends where an undisturbed one does.
import { planBuckets } from '../../shared/protocol/buckets.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../coordinator/coordinator.js';
import { PROTOCOL_VERSION, TensorCompressor, toWire, type AssignMessage, type CompressionMode, type Message, type WelcomeMessage, type WireTensor } from '../../shared/protocol/index.js';
import { baseConfig, Cluster, relativeDifference, TOKEN } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { runCli } from '../helpers/cli.js';
import { ReplicaClient } from '../helpers/replica-client.js';

const cluster = new Cluster();
const replicas: ReplicaClient[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  replicas.splice(0).forEach((r) => r.close());
  clients.splice(0).forEach((c) => c.close());
  await cluster.closeAll();
});

/** meshgrad_message_bytes_total / meshgrad_messages_total for one direction and type. */
async function bytesPerFrame(c: Coordinator, direction: 'in' | 'out', type: string): Promise<number> {
  const registry = c.metrics.common.registry;
  const read = async (name: string): Promise<number> => {
    const text = await registry.getSingleMetricAsString(name);
    const line = text.split('\n').find((l) => l.startsWith(`${name}{direction="${direction}",type="${type}"} `));
    if (!line) throw new Error(`no ${name} for ${direction} ${type}`);
    return Number(line.split(' ')[1]);
  };
  return (await read('meshgrad_message_bytes_total')) / (await read('meshgrad_messages_total'));
}

interface Outcome {
  losses: number[];
  gradientsBytes: number;
  paramsBytes: number;
}

const STEPS = 16;

/** `bucketBytes` 0: one message each way per step (so frames compare whole); else gradient buckets. */
async function train(compress: CompressionMode, bucketBytes = 0): Promise<Outcome> {
  const losses: number[] = [];
  const config = baseConfig({ compress, bucketBytes, trainSamples: STEPS * 96, batchSize: 96, maxSteps: STEPS, testSamples: 200, minWorkers: 3, balance: 'even' });
  const coordinator = await cluster.coordinator(config, (e) => losses.push(e.loss));
  cluster.worker(coordinator.url, ['--threads', '1']);
  cluster.worker(coordinator.url, ['--threads', '1']);
  const inProcess = await ReplicaClient.connect(coordinator.url, TOKEN);
  replicas.push(inProcess);
  const summary = await coordinator.run();
  expect(summary.steps).toBe(STEPS);
  expect(summary.workers).toBe(3);
  // The run's last parameters reach the in-process worker before `leave` does (one socket, in order).
  await inProcess.client.next('leave');
  expect(inProcess.failure).toBeNull();
  // One params message per step, or one per bucket.
  const buckets = planBuckets([...coordinator.parameters().values()].map((v) => v.byteLength), bucketBytes).length;
  if (bucketBytes > 0) expect(buckets).toBeGreaterThan(1);
  expect(inProcess.updates).toBe(buckets * STEPS);
  const held = inProcess.replica!.parameters();
  const view = coordinator.workerParameters();
  for (const [name, v] of view) expect(Buffer.from(held.get(name)!.buffer).equals(Buffer.from(v.buffer)), name).toBe(true);
  const exact = coordinator.parameters();
  if (compress === 'none') expect(relativeDifference(view, exact)).toBe(0);
  else expect(relativeDifference(view, exact)).toBeLessThan(compress === 'int8' ? 2e-2 : 5e-3);
  return { losses, gradientsBytes: await bytesPerFrame(coordinator, 'in', 'gradients'), paramsBytes: await bytesPerFrame(coordinator, 'out', 'params') };
}

describe('--compress', () => {
  it('fp16, bf16 and int8 train, keep the workers on the view bit for bit, and send 2x / 4x fewer bytes', { timeout: 600_000 }, async () => {
    const outcomes = new Map<CompressionMode, Outcome>();
    for (const mode of ['none', 'fp16', 'bf16', 'int8'] as const) {
      outcomes.set(mode, await train(mode));
      await cluster.closeAll();
    }
    const none = outcomes.get('none')!;
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const [mode, o] of outcomes) {
      expect(o.losses).toHaveLength(STEPS);
      expect(mean(o.losses.slice(-4)), mode).toBeLessThan(0.8 * mean(o.losses.slice(0, 4)));
      // And as well as uncompressed, to within the noise of 16 steps.
      expect(Math.abs(mean(o.losses.slice(-4)) - mean(none.losses.slice(-4))), mode).toBeLessThan(0.1);
    }
    // The mlp preset's 235,146 parameters: 4 bytes each uncompressed, plus a little framing.
    expect(none.gradientsBytes).toBeGreaterThan(235_146 * 4);
    for (const [mode, ratio] of [['fp16', 2], ['bf16', 2], ['int8', 4]] as const) {
      const o = outcomes.get(mode)!;
      expect(none.gradientsBytes / o.gradientsBytes, `${mode} gradients`).toBeGreaterThan(ratio * 0.97);
      expect(none.gradientsBytes / o.gradientsBytes, `${mode} gradients`).toBeLessThanOrEqual(ratio);
      // params carry the BatchNorm-free mlp's parameters only: the same ratio downlink.
      expect(none.paramsBytes / o.paramsBytes, `${mode} params`).toBeGreaterThan(ratio * 0.97);
      expect(none.paramsBytes / o.paramsBytes, `${mode} params`).toBeLessThanOrEqual(ratio);
    }
  });
  it('with gradient buckets too: per-bucket deltas keep the workers on the view bit for bit', { timeout: 600_000 }, async () => {
    for (const mode of ['bf16', 'int8'] as const) {
      const o = await train(mode, 64 * 1024);
      await cluster.closeAll();
      expect(o.losses).toHaveLength(STEPS);
      expect(o.losses.slice(-4).reduce((a, b) => a + b, 0)).toBeLessThan(0.8 * o.losses.slice(0, 4).reduce((a, b) => a + b, 0));
    }
  });
});

/** A client that joins and answers its k-th assignment with the gradients `frames[k]` makes (then nothing). */
async function faker(url: string, frames: Array<(shapes: number[][]) => WireTensor[]>): Promise<RawClient> {
  const c = await RawClient.connect(url, TOKEN);
  clients.push(c);
  c.send({ type: 'join', protocol: PROTOCOL_VERSION, capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } });
  const welcome: WelcomeMessage = await c.next('welcome');
  const shapes = welcome.params.map((p) => p.shape);
  let seen = 0;
  c.ws.on('message', () => {
    const assigns = c.received.filter((m): m is AssignMessage => m.type === 'assign');
    while (seen < assigns.length && seen < frames.length) {
      const a = assigns[seen];
      const grads = frames[seen++](shapes);
      c.send({ type: 'gradients', step: a.step, version: a.version, shard: a.shard, samples: a.indices.shape[0], loss: 1, correct: 0, computeMs: 1, grads });
    }
  });
  return c;
}

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const int8 = (shapes: number[][], change: (t: WireTensor) => WireTensor): WireTensor[] => shapes.map((s) => change(new TensorCompressor('int8', size(s)).encode(new Float32Array(size(s)).fill(1e-3), s)));
const half = (shapes: number[][], mode: 'fp16' | 'bf16'): WireTensor[] => shapes.map((s) => new TensorCompressor(mode, size(s)).encode(new Float32Array(size(s)), s));
const codes = (c: RawClient): string[] => c.received.filter((m): m is Extract<Message, { type: 'error' }> => m.type === 'error').map((m) => m.code);

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('malformed compressed frames', () => {
  it('are refused with their codes, their shards redone, and the run ends as an undisturbed one does', { timeout: 300_000 }, async () => {
    const config = baseConfig({ compress: 'int8', trainSamples: 8 * 96, batchSize: 96, maxSteps: 8, testSamples: 200, minWorkers: 1, auditSamples: true, stepTimeoutMs: 3_600_000 });
    const reference = await cluster.coordinator(config);
    cluster.worker(reference.url, ['--threads', '1']);
    await reference.run();
    const expected = reference.parameters();
    await cluster.closeAll();

    const coordinator = await cluster.coordinator(config);
    const scales = await faker(coordinator.url, [
      (shapes) => int8(shapes, (t) => ({ ...t, data: t.data.subarray(0, t.data.byteLength - 1) })),
      (shapes) => int8(shapes, (t) => ({ ...t, scale: -1 })),
      (shapes) => int8(shapes, (t) => ({ ...t, scale: NaN })),
    ]);
    const dtypes = await faker(coordinator.url, [(shapes) => half(shapes, 'fp16'), (shapes) => half(shapes, 'bf16'), (shapes) => shapes.map((s) => toWire(new Int32Array(size(s)), s))]);
    cluster.worker(coordinator.url, ['--threads', '1']);
    await until(() => coordinator.activeWorkers.length === 3);
    const summary = await coordinator.run();
    expect(summary.steps).toBe(8);
    expect(codes(scales)).toEqual(['BAD_SHAPE', 'BAD_MESSAGE', 'NON_FINITE']);
    expect(codes(dtypes)).toEqual(['BAD_DTYPE', 'BAD_DTYPE', 'BAD_DTYPE']);
    expect(await scales.closed()).toBe(4003);
    expect(await dtypes.closed()).toBe(4003);
    // Every sample counted once: each refused shard was redone, none was half-applied.
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
    // The honest worker computed the refused shards apart from its own, each quantised with its own
    // scale and residual, and Adam magnifies such differences: measured 3.4% after these 8 steps.
    // A refused frame that had leaked in (a NaN scale, a sign-flipped one) would show as NaN or far more.
    const got = coordinator.parameters();
    for (const [name, v] of got) expect(v.every(Number.isFinite), name).toBe(true);
    expect(relativeDifference(got, expected)).toBeLessThan(0.1);
  });

  it('a compressed tensor in an uncompressed run is BAD_DTYPE', { timeout: 120_000 }, async () => {
    const coordinator = await cluster.coordinator(baseConfig({ trainSamples: 4 * 96, batchSize: 96, maxSteps: 4, testSamples: 100, minWorkers: 1, stepTimeoutMs: 3_600_000 }));
    const f = await faker(coordinator.url, [(shapes) => half(shapes, 'fp16'), (shapes) => half(shapes, 'bf16'), (shapes) => int8(shapes, (t) => t)]);
    cluster.worker(coordinator.url, ['--threads', '1']);
    await until(() => coordinator.activeWorkers.length === 2);
    expect((await coordinator.run()).steps).toBe(4);
    expect(codes(f)).toEqual(['BAD_DTYPE', 'BAD_DTYPE', 'BAD_DTYPE']);
    expect(await f.closed()).toBe(4003);
  });
});

describe('the --compress flag', () => {
  it('local --compress bf16 trains; a mode that does not exist is refused in one line, from the flag or MESHGRAD_COMPRESS', { timeout: 240_000 }, async () => {
    const ok = await runCli(['local', '--workers', '2', '--compress', 'bf16', '--max-steps', '3', '--test-samples', '100']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('--compress bf16');
    expect(ok.stdout).toMatch(/test accuracy/);
    const bad = await runCli(['coordinator', '--token', 'x', '--compress', 'fp8']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toMatch(/^error: option '--compress <mode>' argument 'fp8' is invalid\. Allowed choices are none, fp16, bf16, int8\.$/);
    const badEnv = await runCli(['local', '--max-steps', '1'], { env: { MESHGRAD_COMPRESS: 'int4' } });
    expect(badEnv.code).not.toBe(0);
    expect(badEnv.stderr).toContain("value 'int4' from env 'MESHGRAD_COMPRESS' is invalid");
  });
});

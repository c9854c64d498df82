// Malformed, oversize, stale, non-finite and unauthenticated input against a live coordinator that
// is training with a real worker process: each gets its error, and the run's result is unaffected.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../shared/protocol/codec.js';
import { PROTOCOL_VERSION, toWire, type AssignMessage, type Message, type WireTensor } from '../../shared/protocol/index.js';
import { pack } from 'msgpackr';
import { baseConfig, Cluster, relativeDifference, TOKEN } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

const cluster = new Cluster();
const clients: RawClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await cluster.closeAll();
});

async function client(url: string, token: string | null = TOKEN): Promise<RawClient> {
  const c = await RawClient.connect(url, token);
  clients.push(c);
  return c;
}

const join = (protocol = PROTOCOL_VERSION): Message => ({ type: 'join', protocol, capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } });
async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const errorsOf = (c: RawClient): string[] => c.received.filter((m) => m.type === 'error').map((m) => (m as Extract<Message, { type: 'error' }>).code);

describe('a live coordinator under bad input', () => {
  it('answers each bad frame with its error code, drops a misbehaving worker, and trains the same parameters', async () => {
    const config = baseConfig({ trainSamples: 1280, batchSize: 128, epochs: 1, minWorkers: 1 });

    // Reference: the same run with one well-behaved worker.
    const reference = await cluster.coordinator(config);
    cluster.worker(reference.url);
    await reference.run();
    const expected = reference.parameters();
    await cluster.closeAll();

    const coordinator = await cluster.coordinator(config);
    const url = coordinator.url;

    // No token, or a wrong one: HTTP 401 before any WebSocket exists.
    await expect(RawClient.connect(url, null)).rejects.toThrow('HTTP 401');
    await expect(RawClient.connect(url, 'wrong-token')).rejects.toThrow('HTTP 401');

    // Frames from a connection that has not joined.
    const stranger = await client(url);
    stranger.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]));
    stranger.sendRaw('{"type":"join"}', false);
    stranger.sendRaw(pack({ type: 'launch' }));
    stranger.sendRaw(pack({ type: 'gradients', step: 'soon' }));
    stranger.send({ type: 'gradients', step: 0, version: 0, shard: 0, samples: 1, loss: 0, correct: 0, computeMs: 1, grads: [] });
    await stranger.next('error', 4);
    expect(errorsOf(stranger)).toEqual(['UNDECODABLE', 'UNDECODABLE', 'UNKNOWN_TYPE', 'BAD_MESSAGE', 'UNEXPECTED']);

    // A protocol version it does not speak: error, refusal, close.
    const old = await client(url);
    old.send(join(99));
    expect((await old.next('error')).code).toBe('VERSION_MISMATCH');
    expect((await old.next('leave')).reason).toBe('refused');
    expect(await old.closed()).toBe(4002);

    // A frame over the size limit is refused by ws itself (close 1009, message too big).
    const big = await client(url);
    big.sendRaw(new Uint8Array(4 << 20));
    expect(await big.closed()).toBe(1009);
    expect(await coordinator.metrics.common.registry.getSingleMetricAsString('meshgrad_decode_errors_total')).toMatch(/^meshgrad_decode_errors_total\{code="TOO_LARGE"\} 1$/m);

    // A joined worker that answers its assignments with stale, misshapen, NaN and mistyped gradients.
    const faker = await client(url);
    faker.send(join());
    const welcome = await faker.next('welcome');
    const shapes = welcome.params.map((p) => p.shape);
    const f32 = (shape: number[], fill: number): WireTensor => toWire(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill), shape);
    let seen = 0;
    const variants: Array<(a: AssignMessage) => Message[]> = [
      (a) => [
        { ...grad(a), step: a.step + 5, grads: shapes.map((s) => f32(s, 0)) },
        { ...grad(a), grads: shapes.map((s) => f32([...s, 2], 0)) },
      ],
      (a) => [{ ...grad(a), grads: shapes.map((s, i) => f32(s, i === 2 ? NaN : 0)) }],
      (a) => [{ ...grad(a), grads: shapes.map((s) => toWire(new Int32Array(s.reduce((x, y) => x * y, 1)), s)) }],
    ];
    const grad = (a: AssignMessage) => ({ type: 'gradients' as const, step: a.step, version: a.version, shard: a.shard, samples: a.indices.shape[0], loss: 1, correct: 0, computeMs: 1, grads: [] as WireTensor[] });
    faker.ws.on('message', () => {
      const assigns = faker.received.filter((m): m is AssignMessage => m.type === 'assign');
      while (seen < assigns.length && seen < variants.length) for (const m of variants[seen](assigns[seen++])) faker.ws.send(encodeMessage(m));
    });

    cluster.worker(url);
    await until(() => coordinator.activeWorkers.length === 2);
    const summary = await coordinator.run();
    expect(summary.steps).toBe(10);
    expect(errorsOf(faker)).toEqual(['STALE_STEP', 'BAD_SHAPE', 'NON_FINITE', 'BAD_DTYPE']);
    expect(await faker.closed()).toBe(4003);
    expect(relativeDifference(coordinator.parameters(), expected)).toBeLessThan(1e-5);
  });

  it('drops a worker that misses the step deadline and redoes its share', async () => {
    const coordinator = await cluster.coordinator(baseConfig({ trainSamples: 512, batchSize: 128, minWorkers: 1, stepTimeoutMs: 1500, auditSamples: true }));
    const silent = await client(coordinator.url);
    silent.send(join());
    await silent.next('welcome');
    cluster.worker(coordinator.url);
    await until(() => coordinator.activeWorkers.length === 2);
    const summary = await coordinator.run();
    expect(await silent.closed()).toBe(4001);
    expect(summary.steps).toBe(4);
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
  });

  it('drops a worker that stops answering heartbeats after four intervals, and redoes its share', async () => {
    // Heartbeats every 250 ms: silence is judged after max(4 x 250 ms, 2 s); the step deadline is far off.
    const coordinator = await cluster.coordinator(baseConfig({ trainSamples: 512, batchSize: 128, minWorkers: 1, heartbeatMs: 250, stepTimeoutMs: 60_000, auditSamples: true }));
    const mute = await client(coordinator.url);
    mute.answerHeartbeats = false;
    mute.send(join());
    await mute.next('welcome');
    cluster.worker(coordinator.url); // a real worker answers heartbeats even while it computes
    await until(() => coordinator.activeWorkers.length === 2); // so the mute one gets a shard
    const started = Date.now();
    const summary = await coordinator.run();
    expect(await mute.closed()).toBe(4006);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(summary.steps).toBe(4);
    expect(summary.workers).toBe(1);
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
    const failures = await coordinator.metrics.common.registry.getSingleMetricAsString('meshgrad_worker_failures_total');
    expect(failures).toMatch(/^meshgrad_worker_failures_total\{kind="silent"\} 1$/m);
  });
});

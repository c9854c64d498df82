// A step abandoned by a stop after some of its gradient buckets were applied: the parameters then
// mix two versions, so the coordinator writes neither the final checkpoint nor --save, and says so.
// (A raw client plays the worker: it delivers one bucket of its shard and then goes quiet.)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Message } from '../../shared/protocol/messages.js';
import { toWire } from '../../shared/protocol/wire-tensor.js';
import { bucketRange } from '../../shared/protocol/buckets.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

const cluster = new Cluster();
const clients: RawClient[] = [];
let dir = '';
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cluster.closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('a stop while a bucketed step is half applied', () => {
  it('saves nothing mixed: no final checkpoint, no --save, the failure names the step', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-buckets-'));
    const save = join(dir, 'model.safetensors');
    const config = baseConfig({ trainSamples: 256, batchSize: 128, bucketBytes: 64 * 1024, checkpointDir: join(dir, 'ckpt'), save, stopTimeoutMs: 300, heartbeatMs: 60_000 });
    const coordinator = await cluster.coordinator(config);
    const c = await RawClient.connect(coordinator.url, TOKEN);
    clients.push(c);
    c.send({ type: 'join', protocol: PROTOCOL_VERSION, capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } } satisfies Message);
    const welcome = await c.next('welcome');
    const starts = welcome.buckets!;
    expect(starts.length).toBeGreaterThan(1);
    const running = coordinator.run();
    const assign = await c.next('assign');
    // The last bucket (the last layers), as backward would send it first: zero gradients.
    const k = starts.length - 1;
    const { start, end } = bucketRange(starts, welcome.params.length, k);
    const grads = welcome.params.slice(start, end).map((p) => toWire(new Float32Array(p.data.byteLength / 4), p.shape));
    c.send({ type: 'gradbucket', step: assign.step, version: assign.version, shard: assign.shard, bucket: k, grads });
    // It is applied and sent back at once (the step is still waiting for the other buckets).
    const params = await c.next('params');
    expect(params).toMatchObject({ version: assign.version + 1, bucket: k });
    coordinator.requestStop();
    const summary = await running;
    expect(summary.interrupted).toBe(true);
    expect(summary.steps).toBe(0);
    expect(summary.checkpoint).toBeNull();
    expect(summary.failure).toMatch(/step 0 was abandoned after some of its gradient buckets had been applied/);
    expect(existsSync(save)).toBe(false);
    expect(existsSync(join(dir, 'ckpt', 'latest.safetensors'))).toBe(false);
  });
});

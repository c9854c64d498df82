// The wire protocol as documented, against a live coordinator: malformed `gradients` frames are
// rejected contributions (error code, shard redone at once, metric, three-in-a-row rule), stale and
// unassigned replies do not count toward that rule, and connections that never finish their upgrade
// or never join are timed out. A worker pointed at a server that never answers the upgrade gives up.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { fromWireInt32, PROTOCOL_VERSION, toWire, type AssignMessage, type Message, type WelcomeMessage, type WireTensor } from '../../shared/protocol/index.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

const cluster = new Cluster();
const clients: RawClient[] = [];
const sockets: Socket[] = [];
const servers: Server[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  sockets.splice(0).forEach((s) => s.destroy());
  await cluster.closeAll();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function client(url: string): Promise<RawClient> {
  const c = await RawClient.connect(url, TOKEN);
  clients.push(c);
  return c;
}

// The codec's own settings: plain msgpack, so a frame can carry anything (NaN, a fractional count, a
// float64 dtype, an array where bin belongs) and the coordinator has to judge it.
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const join: Message = { type: 'join', protocol: PROTOCOL_VERSION, capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } };
const errorsOf = (c: RawClient) => c.received.filter((m): m is Extract<Message, { type: 'error' }> => m.type === 'error');
const zeros = (shape: number[]): WireTensor => toWire(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);

/** A well-formed contribution (zero gradients) for an assignment. */
function goodGradients(a: AssignMessage, welcome: WelcomeMessage): Record<string, unknown> {
  return {
    type: 'gradients', step: a.step, version: a.version, shard: a.shard, samples: a.indices.shape[0], loss: 1, correct: 0, computeMs: 1,
    grads: welcome.params.map((p) => zeros(p.shape)),
    buffers: (welcome.buffers ?? []).map((b) => zeros(b.shape)),
  };
}

/** Calls `reply` once for every assignment the client receives, in order. */
function onAssign(c: RawClient, reply: (a: AssignMessage, k: number) => void): void {
  let seen = 0;
  c.ws.on('message', () => {
    const assigns = c.received.filter((m): m is AssignMessage => m.type === 'assign');
    while (seen < assigns.length) reply(assigns[seen], seen++);
  });
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('malformed gradients frames', () => {
  it('are rejected contributions: documented code, shard redone at once, counted, three in a row drop the sender', async () => {
    // A step deadline far beyond the test's own timeout: a shard that is not handed back at once hangs the test.
    const coordinator = await cluster.coordinator(baseConfig({ trainSamples: 1280, batchSize: 64, minWorkers: 1, stepTimeoutMs: 3_600_000, auditSamples: true }));
    const faker = await client(coordinator.url);
    faker.send(join);
    const fakerWelcome = await faker.next('welcome');
    expect(fakerWelcome.paramNames).toEqual([...coordinator.parameters().keys()]);
    const honest = await client(coordinator.url);
    honest.send(join);
    const welcome = await honest.next('welcome');
    onAssign(honest, (a) => honest.sendRaw(packr.pack(goodGradients(a, welcome))));

    type Variant = { code: string; frame: (a: AssignMessage) => Record<string, unknown> };
    const bad = (code: string, change: (g: Record<string, unknown>) => Record<string, unknown>): Variant => ({ code, frame: (a) => change(goodGradients(a, welcome)) });
    const malformed: Variant[] = [
      bad('NON_FINITE', (g) => ({ ...g, loss: NaN })),
      bad('NON_FINITE', (g) => ({ ...g, loss: Infinity })),
      bad('BAD_MESSAGE', (g) => ({ ...g, samples: 0 })),
      bad('BAD_MESSAGE', (g) => ({ ...g, samples: (g.samples as number) - 0.5 })),
      bad('BAD_MESSAGE', ({ grads: _g, ...rest }) => rest),
      bad('BAD_MESSAGE', (g) => ({ ...g, grads: (g.grads as WireTensor[]).map((t) => ({ ...t, dtype: 'float64', data: new Uint8Array(t.data.byteLength * 2) })) })),
      bad('BAD_MESSAGE', (g) => ({ ...g, grads: (g.grads as WireTensor[]).map((t) => ({ ...t, data: Array.from(t.data.subarray(0, 16)) })) })),
    ];
    // Two malformed replies, then a good one (which resets the count), ...; then three NaN losses in a row.
    const plan: Array<Variant | 'good'> = [];
    malformed.forEach((v, i) => {
      plan.push(v);
      if (i % 2 === 0) plan.push('good');
    });
    const nan = malformed[0];
    plan.push(nan, nan, nan);
    const badAssigns: AssignMessage[] = [];
    onAssign(faker, (a, k) => {
      if (k === 0) {
        // Replies that can legitimately follow a reassignment: answered, never counted toward the rule.
        for (let i = 0; i < 3; i++) faker.sendRaw(packr.pack({ ...goodGradients(a, welcome), shard: 9999 }));
        for (let i = 0; i < 3; i++) faker.sendRaw(packr.pack({ ...goodGradients(a, welcome), step: a.step + 5, version: a.version + 5 }));
      }
      const p = plan[k];
      if (p === undefined) return;
      if (p === 'good') return faker.sendRaw(packr.pack(goodGradients(a, welcome)));
      badAssigns.push(a);
      faker.sendRaw(packr.pack(p.frame(a)));
    });

    const summary = await coordinator.run();
    expect(summary.steps).toBe(20);
    expect(await faker.closed()).toBe(4003);
    const expectedCodes = ['NOT_ASSIGNED', 'NOT_ASSIGNED', 'NOT_ASSIGNED', 'STALE_STEP', 'STALE_STEP', 'STALE_STEP', ...plan.filter((p): p is Variant => p !== 'good').map((p) => p.code)];
    const errors = errorsOf(faker);
    expect(errors.map((e) => e.code)).toEqual(expectedCodes);
    // Each malformed frame's error names its step.
    expect(errors.slice(6).map((e) => e.step)).toEqual(badAssigns.map((a) => a.step));
    expect(errors.length).toBe(6 + badAssigns.length);
    // Every sample of every step was used exactly once, so each refused shard was redone (the
    // step deadline is an hour: only an immediate reassignment lets the run finish).
    expect(coordinator.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
    // The samples of each refused shard went out again in the same step (to either client).
    for (const a of badAssigns) {
      const later = [...honest.received, ...faker.received].filter((m): m is AssignMessage => m.type === 'assign' && m.step === a.step && m.shard > a.shard);
      const redone = new Set(later.flatMap((m) => [...fromWireInt32(m.indices, 'indices')]));
      expect([...fromWireInt32(a.indices, 'indices')].every((i) => redone.has(i))).toBe(true);
    }
    const metric = await coordinator.metrics.common.registry.getSingleMetricAsString('meshgrad_gradients_received_total');
    expect(metric).toMatch(/^meshgrad_gradients_received_total\{result="rejected",reason="NON_FINITE"\} 5$/m);
    expect(metric).toMatch(/^meshgrad_gradients_received_total\{result="rejected",reason="BAD_MESSAGE"\} 5$/m);
    expect(metric).toMatch(/^meshgrad_gradients_received_total\{result="rejected",reason="NOT_ASSIGNED"\} 3$/m);
    expect(metric).toMatch(/^meshgrad_gradients_received_total\{result="stale",reason="STALE_STEP"\} 3$/m);
    const failures = await coordinator.metrics.common.registry.getSingleMetricAsString('meshgrad_worker_failures_total');
    expect(failures).toMatch(/^meshgrad_worker_failures_total\{kind="rejected"\} 1$/m);
  }, 120_000);

  it('three NOT_ASSIGNED or STALE_STEP replies in a row leave the connection open', async () => {
    const coordinator = await cluster.coordinator(baseConfig({ trainSamples: 256, batchSize: 64, minWorkers: 1, stepTimeoutMs: 3_600_000 }));
    const w = await client(coordinator.url);
    w.send(join);
    const welcome = await w.next('welcome');
    onAssign(w, (a) => {
      for (let i = 0; i < 4; i++) w.sendRaw(packr.pack({ ...goodGradients(a, welcome), shard: a.shard + 100 }));
      for (let i = 0; i < 4; i++) w.sendRaw(packr.pack({ ...goodGradients(a, welcome), step: a.step + 1 }));
      w.sendRaw(packr.pack(goodGradients(a, welcome)));
    });
    const summary = await coordinator.run();
    expect(summary.steps).toBe(4);
    expect(summary.workers).toBe(1);
    const codes = errorsOf(w).map((e) => e.code);
    expect(codes.filter((c) => c === 'NOT_ASSIGNED').length).toBe(16);
    expect(codes.filter((c) => c === 'STALE_STEP').length).toBe(16);
    expect(await w.closed()).toBe(4004); // closed by the end of the run, not for misbehaving
  });
});

describe('connections that never finish', () => {
  it('times out TCP connections that never complete an upgrade and WebSockets that never join', async () => {
    const coordinator = await cluster.coordinator(baseConfig({ minWorkers: 1, joinTimeoutMs: 300, handshakeTimeoutMs: 300 }));
    // Each socket's close is watched from the moment it exists: on a loaded machine the 300 ms
    // timeouts can fire before the clients below have joined, and a listener attached then would
    // wait for a close that already happened.
    const closes = new Map<Socket, Promise<void>>();
    const closed = (s: Socket): Promise<void> => closes.get(s)!;
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect(coordinator.port, '127.0.0.1', () => resolve(s));
        closes.set(s, new Promise<void>((done) => s.once('close', () => done())));
        s.on('error', reject);
        sockets.push(s);
      });
    const silent = await open();
    const partial = await open();
    partial.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nAuthorization: Bearer ${TOKEN}\r\n`);
    const lurker = await client(coordinator.url);
    const joiner = await client(coordinator.url);
    joiner.send(join);
    await joiner.next('welcome');
    // Generous deadlines: the point is that they are closed at all.
    await Promise.all([closed(silent), closed(partial)].map((p) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('socket still open')), 20_000))])));
    expect(await lurker.closed(20_000)).toBe(4007);
    expect(joiner.closeCode).toBeNull();
    expect(coordinator.activeWorkers.length).toBe(1);
  });
});

describe('a worker against a server that never answers the upgrade', () => {
  it('times the handshake out and honours --give-up-after', async () => {
    const held: Socket[] = [];
    const server = createServer((s) => {
      held.push(s); // accept, read nothing, answer nothing
      s.on('error', () => {});
    });
    servers.push(server);
    server.on('close', () => held.forEach((s) => s.destroy()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const worker = cluster.worker(`ws://127.0.0.1:${port}`, ['--give-up-after', '3']);
    const exited = cluster.exited(worker);
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
    held.forEach((s) => s.destroy());
    expect(code).not.toBe('hung');
    expect(code).not.toBe(0);
    expect(cluster.output.get(worker)).toContain('no coordinator at');
  }, 90_000);
});

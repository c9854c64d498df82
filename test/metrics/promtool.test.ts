// A real coordinator and a real worker process train for a few steps; both /metrics bodies pass
// `promtool check metrics` (format and lint) with no output, and the health endpoints answer.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN } from '../helpers/cluster.js';
import { eventually, get, Proc, sampleValue } from '../helpers/processes.js';

const PROMTOOL = '/usr/bin/promtool';
const dir = mkdtempSync(join(tmpdir(), 'meshgrad-promtool-'));
const procs: Proc[] = [];
let coordinatorMetrics = '';
let workerMetrics = '';

beforeAll(async () => {
  // Long enough to outlast the test; stopped in afterAll.
  const coordinator = Proc.meshgrad('coordinator', [
    'coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--train-samples', '1280', '--batch-size', '128', '--epochs', '1000', '--threads', '1',
    '--checkpoint-dir', dir, '--checkpoint-every', '2',
  ], { MESHGRAD_TOKEN: TOKEN });
  procs.push(coordinator);
  coordinatorMetrics = `http://127.0.0.1:${String((await coordinator.waitForLog('metrics listening')).port)}`;
  const url = String((await coordinator.waitForLog('coordinator listening')).url);
  const worker = Proc.meshgrad('worker', ['worker', '--connect', url, '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--threads', '1'], { MESHGRAD_TOKEN: TOKEN });
  procs.push(worker);
  workerMetrics = `http://127.0.0.1:${String((await worker.waitForLog('metrics listening')).port)}`;
  // A few steps (and a checkpoint) done, on both sides.
  await eventually(async () => ((sampleValue((await get(`${coordinatorMetrics}/metrics`)).body, 'meshgrad_checkpoints_total') ?? 0) >= 2 ? true : undefined), 30_000, 'coordinator: 2 checkpoints');
  await eventually(async () => ((sampleValue((await get(`${workerMetrics}/metrics`)).body, 'meshgrad_worker_steps_total') ?? 0) >= 4 ? true : undefined), 30_000, 'worker: 4 steps');
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function promtool(body: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('metrics endpoints of real processes', () => {
  const missing = existsSync(PROMTOOL) ? '' : ` (skipped: ${PROMTOOL} is missing; install Debian's prometheus package)`;
  it.skipIf(missing !== '')(`both /metrics bodies pass promtool check metrics with no lint output${missing}`, async () => {
    for (const [role, base] of [['coordinator', coordinatorMetrics], ['worker', workerMetrics]] as const) {
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      expect(body, role).toContain('meshgrad_build_info{');
      expect(promtool(body), role).toEqual({ status: 0, output: '' });
    }
  });

  it('the coordinator reports its training; the worker its shards', async () => {
    const c = (await get(`${coordinatorMetrics}/metrics`)).body;
    expect(sampleValue(c, 'meshgrad_steps_total')).toBeGreaterThanOrEqual(4);
    expect(sampleValue(c, 'meshgrad_world_size')).toBe(1);
    expect(sampleValue(c, 'meshgrad_workers{state="active"}')).toBe(1);
    expect(sampleValue(c, 'meshgrad_loss{split="train"}')).toBeGreaterThan(0);
    expect(sampleValue(c, 'meshgrad_gradient_norm')).toBeGreaterThan(0); // computed at the scrape
    expect(c).toMatch(/^meshgrad_run_info\{role="coordinator",model="mlp",dataset="fashion-mnist",optimizer="adam",compression="none"\} 1$/m);
    const w = (await get(`${workerMetrics}/metrics`)).body;
    expect(sampleValue(w, 'meshgrad_worker_compute_seconds_count{phase="backward"}')).toBeGreaterThanOrEqual(4);
    expect(w).toMatch(/^meshgrad_run_info\{role="worker",model="mlp",dataset="fashion-mnist",optimizer="unknown",compression="none"\} 1$/m);
  });

  it('answers /healthz, /readyz, and 404 for anything else', async () => {
    expect(await get(`${coordinatorMetrics}/healthz`)).toMatchObject({ status: 200 });
    expect(await get(`${coordinatorMetrics}/readyz`)).toMatchObject({ status: 200 });
    expect((await get(`${coordinatorMetrics}/nope`)).status).toBe(404);
    expect((await get(`${coordinatorMetrics}/metrics/extra`)).status).toBe(404);
    expect(await get(`${workerMetrics}/healthz`)).toMatchObject({ status: 200 });
    expect((await get(`${workerMetrics}/nope`)).status).toBe(404);
  });

  it('logs one JSON object per line with its role, and the worker its id once joined', () => {
    const [coordinator, worker] = procs;
    for (const p of procs) {
      const lines = p.output.split('\n').filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line), `${p.name}: ${line}`).not.toThrow();
    }
    expect(coordinator.logs.every((l) => l.role === 'coordinator' && typeof l.time === 'string' && typeof l.level === 'string')).toBe(true);
    expect(worker.logs.every((l) => l.role === 'worker')).toBe(true);
    const joined = worker.logs.find((l) => l.msg === 'joined');
    expect(joined?.workerId).toMatch(/^w\d+$/);
  });
});

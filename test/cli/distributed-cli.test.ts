// The coordinator and worker commands as real processes: refusals, signals and exit codes.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';

const cluster = new Cluster();
let dir = '';
afterEach(async () => {
  await cluster.closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('coordinator and worker commands', () => {
  it('the coordinator refuses to start without a token', async () => {
    const { code, stderr } = await runCli(['coordinator', '--port', '0'], { env: { MESHGRAD_TOKEN: '' } });
    expect(code).not.toBe(0);
    expect(stderr.trim()).toMatch(/token is required/);
  });

  it('a worker with a bad token exits non-zero naming the refusal', async () => {
    const c = await cluster.coordinator(baseConfig());
    const { code, stderr } = await runCli(['worker', '--connect', c.url, '--token', 'nope']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/HTTP 401 \(bad or missing token\)/);
  });

  it('a worker whose compute thread cannot go on (no dataset where it looks) exits non-zero naming why', async () => {
    const c = await cluster.coordinator(baseConfig({ trainSamples: 256, maxSteps: 1 }));
    const missing = join(tmpdir(), 'meshgrad-no-such-data-dir');
    const worker = runCli(['worker', '--connect', c.url, '--token', TOKEN, '--data-dir', missing, '--log-level', 'warn']);
    void c.run().catch(() => {}); // waits for a worker that can compute; closed by afterEach
    const { code, stderr } = await worker;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/compute thread failed/);
    expect(stderr).toContain(missing);
  });

  it('a worker rejects a URL that is not ws://', async () => {
    const { code, stderr } = await runCli(['worker', '--connect', 'http://x']);
    expect(code).not.toBe(0);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a worker keeps retrying until the coordinator exists, then trains and exits 0', async () => {
    const probe = await cluster.coordinator(baseConfig());
    const port = probe.port;
    await probe.close();
    const worker = cluster.worker(`ws://127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 1200));
    const c = await cluster.coordinator(baseConfig({ port, trainSamples: 256, maxSteps: 2 }));
    const summary = await c.run();
    expect(summary.steps).toBe(2);
    expect(await cluster.exited(worker)).toBe(0);
  });

  it('SIGTERM stops a coordinator process cleanly: checkpoint written, exit 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-sig-'));
    const child = spawn(process.execPath, [BIN, 'coordinator', '--port', '0', '--host', '127.0.0.1', '--checkpoint-dir', dir, '--min-workers', '3'], {
      env: { ...process.env, MESHGRAD_TOKEN: TOKEN, MESHGRAD_METRICS_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!/waiting for workers/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(existsSync(join(dir, 'latest.safetensors'))).toBe(true);
  });
});

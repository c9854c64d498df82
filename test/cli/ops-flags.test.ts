// The operational flags as real processes: --token-file (compose and Kubernetes secrets) and a
// busy --metrics-port, each failing with one line that names the file or the port; the
// coordinator's --join-timeout and --handshake-timeout against silent clients.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import WebSocket from 'ws';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { Proc } from '../helpers/processes.js';

const cluster = new Cluster();
const dir = mkdtempSync(join(tmpdir(), 'meshgrad-flags-'));
afterEach(() => cluster.closeAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--token-file', () => {
  it('a worker reads the token from the file (trimmed) and trains', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, `  ${TOKEN}\n`);
    const c = await cluster.coordinator(baseConfig({ trainSamples: 256, maxSteps: 2 }));
    const [summary, result] = await Promise.all([c.run(), runCli(['worker', '--connect', c.url, '--token-file', file, '--log-level', 'warn'])]);
    expect(summary.steps).toBe(2);
    expect(result.code, result.stderr).toBe(0);
  });

  it('an unreadable file fails with one line naming it', async () => {
    const missing = join(dir, 'nope', 'token');
    for (const role of [['worker', '--connect', 'ws://127.0.0.1:1'], ['coordinator', '--port', '0']]) {
      const { code, stderr } = await runCli([...role, '--token-file', missing], { env: { MESHGRAD_TOKEN: '' } });
      expect(code).not.toBe(0);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(missing);
    }
  });

  it('is mutually exclusive with --token', async () => {
    const file = join(dir, 'token2');
    writeFileSync(file, 'x');
    const { code, stderr } = await runCli(['coordinator', '--port', '0', '--token', 'y', '--token-file', file]);
    expect(code).not.toBe(0);
    expect(stderr.trim()).toMatch(/--token and --token-file are mutually exclusive/);
  });
});

describe('--metrics-port', () => {
  it("local fails with one line naming the coordinator's port when it is busy", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const { code, stderr, stdout } = await runCli(['local', '--workers', '1', '--max-steps', '1', '--metrics-host', '127.0.0.1', '--metrics-port', String(port)]);
      expect(code).not.toBe(0);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(`metrics port ${port}`);
      expect(stdout).not.toMatch(/coordinator listening/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe('--join-timeout and --handshake-timeout', () => {
  it('a coordinator process closes a silent WebSocket with 4007 and destroys an unfinished upgrade, each after its flag', async () => {
    const coordinator = Proc.meshgrad('coordinator', ['coordinator', '--port', '0', '--host', '127.0.0.1', '--token', TOKEN, '--join-timeout', '0.5', '--handshake-timeout', '0.5', '--max-steps', '1'], { MESHGRAD_METRICS_PORT: '0' });
    try {
      const listening = await coordinator.waitForLog('coordinator listening');
      const url = String(listening.url);
      const { port } = new URL(url);
      // A TCP connection that never sends its upgrade request: destroyed, without a reply.
      const half = connect(Number(port), '127.0.0.1');
      let replied = '';
      half.on('data', (d: Buffer) => (replied += d.toString()));
      const halfClosed = new Promise<void>((resolve) => half.once('close', () => resolve()));
      // An authenticated WebSocket that never sends join: closed with 4007.
      const silent = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      const code = await new Promise<number>((resolve, reject) => {
        silent.once('close', (c) => resolve(c));
        silent.once('error', reject);
      });
      await halfClosed;
      expect(code).toBe(4007);
      expect(replied).toBe('');
      const warned = await coordinator.waitForLog('connection closed: no join');
      expect(warned.joinTimeoutMs).toBe(500);
    } finally {
      await coordinator.stop();
    }
  });

  it('refuses a value that is not a positive number, naming the flag', async () => {
    const { code, stderr } = await runCli(['coordinator', '--port', '0', '--token', 'x', '--join-timeout', '0']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--join-timeout/);
  });
});

// Operating on one host (issue 11): a second worker whose default metrics port is taken falls back
// to a free one, --linger keeps /metrics up for a final scrape, and local's terminal view.
import { createServer, type Server } from 'node:net';
import { Command } from 'commander';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { addMetricsOptions, metricsEndpoint, serveMetrics } from '../../cli/metrics-options.js';
import { createCliLogger, jsonLineToText } from '../../cli/logger.js';
import { localWorkerName, workerLine } from '../../cli/local-command.js';
import type { MetricsServer } from '../../shared/metrics/http-server.js';
import { freePort, get, Proc, sampleValue } from '../helpers/processes.js';
import { TOKEN } from '../helpers/cluster.js';

const procs: Proc[] = [];
const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function occupy(): Promise<{ port: number; close: () => Promise<void> }> {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  return { port: (blocker.address() as { port: number }).port, close: () => new Promise((r) => blocker.close(() => r())) };
}

function capture(): { lines: string[]; log: ReturnType<typeof createCliLogger> } {
  const lines: string[] = [];
  return { lines, log: createCliLogger({ role: 'worker', level: 'debug', json: true, write: (l) => lines.push(l) }) };
}

describe('the default metrics port, busy', () => {
  it('falls back to a free port, with a warning naming the port bound', async () => {
    const busy = await occupy();
    try {
      const { lines, log } = capture();
      const server = await serveMetrics({ host: '127.0.0.1', port: busy.port, fallback: true }, new Registry(), log);
      expect(server).not.toBeNull();
      servers.push(server!);
      expect(server!.port).not.toBe(busy.port);
      expect((await get(`${server!.url}/metrics`)).status).toBe(200);
      const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 'warn');
      expect(warn).toMatchObject({ defaultPort: busy.port, port: server!.port });
      expect(String(warn?.msg)).toContain(`port ${server!.port}`);
    } finally {
      await busy.close();
    }
  });

  it('an explicit port that is busy stays an error naming --metrics-port', async () => {
    const busy = await occupy();
    try {
      await expect(serveMetrics({ host: '127.0.0.1', port: busy.port, fallback: false }, new Registry(), capture().log)).rejects.toThrow(/--metrics-port/);
      await expect(serveMetrics({ host: '127.0.0.1', port: busy.port }, new Registry(), capture().log)).rejects.toThrow(`metrics port ${busy.port}`);
    } finally {
      await busy.close();
    }
  });

  it('only a port that was not asked for (neither flag nor MESHGRAD_METRICS_PORT) may fall back', () => {
    const parse = (args: string[], env: Record<string, string> = {}): boolean | undefined => {
      const saved = process.env.MESHGRAD_METRICS_PORT;
      if (env.MESHGRAD_METRICS_PORT) process.env.MESHGRAD_METRICS_PORT = env.MESHGRAD_METRICS_PORT;
      else delete process.env.MESHGRAD_METRICS_PORT;
      try {
        const cmd = addMetricsOptions(new Command('x').exitOverride(), 9401, '/metrics');
        cmd.parse(args, { from: 'user' });
        return metricsEndpoint(cmd.opts() as never, cmd)?.fallback;
      } finally {
        if (saved === undefined) delete process.env.MESHGRAD_METRICS_PORT;
        else process.env.MESHGRAD_METRICS_PORT = saved;
      }
    };
    expect(parse([])).toBe(true);
    expect(parse(['--metrics-port', '9401'])).toBe(false);
    expect(parse([], { MESHGRAD_METRICS_PORT: '9401' })).toBe(false);
  });
});

describe('--linger', () => {
  it('a coordinator keeps serving the final figures after its summary, then exits 0 by itself', async () => {
    const coordinator = Proc.meshgrad('coordinator', [
      'coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
      '--train-samples', '256', '--max-steps', '2', '--threads', '1', '--linger', '2',
    ], { MESHGRAD_TOKEN: TOKEN });
    procs.push(coordinator);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const metrics = String((await coordinator.waitForLog('metrics listening')).url);
    const worker = Proc.meshgrad('worker', ['worker', '--connect', url, '--metrics-port', '0', '--threads', '1', '--log-level', 'warn'], { MESHGRAD_TOKEN: TOKEN });
    procs.push(worker);
    const summary = await coordinator.waitForLog('summary');
    const exited = new Promise<number | null>((resolve) => (coordinator.exited ? resolve(coordinator.child.exitCode) : coordinator.child.once('exit', (code) => resolve(code))));
    const { status, body } = await get(metrics);
    expect(status).toBe(200);
    expect(sampleValue(body, 'meshgrad_loss{split="test"}')).toBeCloseTo(Number(summary.testLoss), 4);
    expect(coordinator.logs.find((l) => String(l.msg).includes('--linger'))).toMatchObject({ seconds: 2 });
    const started = Date.now();
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 120_000);
});

describe("a worker that never joined", () => {
  it('says it cannot reach the coordinator, not that the connection was lost', async () => {
    const port = await freePort();
    const worker = Proc.meshgrad('worker', ['worker', '--connect', `ws://127.0.0.1:${port}`, '--metrics-port', '0', '--give-up-after', '1', '--backoff-max', '0.2'], { MESHGRAD_TOKEN: TOKEN });
    procs.push(worker);
    const retry = await worker.waitForLog('cannot reach the coordinator; retrying', 30_000);
    expect(retry.url).toBe(`ws://127.0.0.1:${port}`);
    expect(worker.logs.some((l) => l.msg === 'connection lost; reconnecting')).toBe(false);
  });
});

describe("local's terminal view of its workers", () => {
  it("shows a worker's JSON log line in the coordinator's text format, under the worker's name", () => {
    const line = JSON.stringify({ time: '2024-01-01T00:00:00.000Z', level: 'warn', role: 'worker', msg: 'coordinator silent', worker: 'local-1', silentMs: 20000 });
    expect(workerLine('local-1', line, true)).toBe('local-1 WARN coordinator silent silentMs=20000');
    expect(workerLine('local-1', JSON.stringify({ level: 'info', role: 'worker', msg: 'joined', worker: 'local-1', runId: 'r 1' }), true)).toBe('local-1 joined runId="r 1"');
  });

  it('keeps other lines, and every line off a terminal, as they are, prefixed with the name', () => {
    expect(workerLine('local-2', 'not json', true)).toBe('[local-2] not json');
    expect(workerLine('local-2', '{"level":"info","msg":"x"}', false)).toBe('[local-2] {"level":"info","msg":"x"}');
    expect(jsonLineToText('[1,2]', 'w')).toBeNull();
  });

  it("names its workers so they cannot be taken for the coordinator's connection ids (w1, w2…)", () => {
    expect(localWorkerName(1)).toBe('local-1');
    expect(localWorkerName(2)).not.toMatch(/^w\d+$/);
  });
});

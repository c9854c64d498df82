// A real Prometheus server scrapes a coordinator and two worker processes (all started through the
// CLI) every second during a short training; the training loss, the step counter and one series
// per worker are then read back through Prometheus's HTTP query API.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKEN } from '../helpers/cluster.js';
import { eventually, freePort, get, Proc } from '../helpers/processes.js';

const PROMETHEUS = '/usr/bin/prometheus';
const missing = existsSync(PROMETHEUS) ? '' : ` (skipped: ${PROMETHEUS} is missing; install Debian's prometheus package, as .ci/run does)`;

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-prometheus-'));
const procs: Proc[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

async function query(base: string, promql: string): Promise<Sample[]> {
  const { status, body } = await get(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (status !== 200) throw new Error(`query ${promql}: HTTP ${status} ${body}`);
  const parsed = JSON.parse(body) as { status: string; data: { resultType: string; result: Sample[] } };
  if (parsed.status !== 'success' || parsed.data.resultType !== 'vector') throw new Error(`query ${promql}: ${body}`);
  return parsed.data.result;
}

/** Polls `promql` until `accept` holds for its result. */
function until(base: string, promql: string, accept: (r: Sample[]) => boolean): Promise<Sample[]> {
  return eventually(async () => {
    const r = await query(base, promql);
    return accept(r) ? r : undefined;
  }, 30_000, `Prometheus query ${promql}`);
}

const metricsPort = async (p: Proc): Promise<number> => Number((await p.waitForLog('metrics listening')).port);

describe(`Prometheus scraping a local run${missing}`, () => {
  it.skipIf(missing !== '')('reads back the training loss, the step counter and one series per worker', async () => {
    // Long enough to outlast the scrapes; everything is stopped in afterAll.
    const coordinator = Proc.meshgrad('coordinator', [
      'coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
      '--min-workers', '2', '--balance', 'even', '--train-samples', '1280', '--batch-size', '128', '--epochs', '1000', '--threads', '1',
    ], { MESHGRAD_TOKEN: TOKEN });
    procs.push(coordinator);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const workers = ['w1', 'w2'].map((name) => Proc.meshgrad(name, ['worker', '--connect', url, '--name', name, '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--threads', '1'], { MESHGRAD_TOKEN: TOKEN }));
    procs.push(...workers);
    const targets = { coordinator: [await metricsPort(coordinator)], worker: await Promise.all(workers.map(metricsPort)) };

    const port = await freePort();
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      ...Object.entries(targets).flatMap(([job, ports]) => [
        `  - job_name: meshgrad-${job}`,
        '    static_configs:',
        `      - targets: [${ports.map((p) => `'127.0.0.1:${p}'`).join(', ')}]`,
      ]),
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), `${config}\n`);
    const prometheus = Proc.start('prometheus', PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    procs.push(prometheus);
    const base = `http://127.0.0.1:${port}`;
    await eventually(async () => ((await get(`${base}/-/ready`)).status === 200 ? true : undefined), 30_000, `Prometheus ready on ${base}:\n${prometheus.output}`);

    // Every target up, then the training's series as Prometheus stored them.
    await until(base, 'sum(up)', (r) => r.length === 1 && Number(r[0].value[1]) === 3);
    const steps = await until(base, 'meshgrad_steps_total', (r) => r.length === 1 && Number(r[0].value[1]) > 0);
    expect(steps[0].metric.job).toBe('meshgrad-coordinator');
    const loss = await until(base, 'meshgrad_loss{split="train"}', (r) => r.length === 1);
    expect(Number(loss[0].value[1])).toBeGreaterThan(0);
    expect(Number(loss[0].value[1])).toBeLessThan(5);
    // Both workers have computed shards: one series each, told apart by their instance label.
    const perWorker = await until(base, 'meshgrad_worker_steps_total > 0', (r) => r.length === 2);
    expect(new Set(perWorker.map((s) => s.metric.instance)).size).toBe(2);
    expect(perWorker.every((s) => s.metric.job === 'meshgrad-worker')).toBe(true);
    // A rate over several scrapes: the run advanced while Prometheus watched.
    await until(base, 'rate(meshgrad_steps_total[5s])', (r) => r.length === 1 && Number(r[0].value[1]) > 0);
  });
});

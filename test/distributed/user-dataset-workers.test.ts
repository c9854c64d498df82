// Workers that read a user dataset themselves (`worker --dataset KIND:PATH`, the protocol's
// `datasets` capability): `local` has its workers read the CSV file, and they train the very
// parameters that samples sent over the wire give (the same samples, bit for bit); a worker whose
// copy of the file differs, or cannot read it, stops before computing and names why, while a
// worker without the file is sent samples and trains.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';
import { relativeDifference, TOKEN } from '../helpers/cluster.js';
import { Proc } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-user-dataset-workers-'));
const procs: Proc[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const MODULE = resolve('dist/examples/iris-module.js');
const IRIS = resolve('examples/data/iris.csv');

async function params(file: string): Promise<Map<string, Float32Array>> {
  return new Map([...(await loadCheckpoint(file)).params].map(([k, v]) => [k, v.value]));
}

/** The coordinator's 'worker joined' lines in a run's output: how each worker gets its samples. */
function joinedSamples(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.includes('"msg":"worker joined"'))
    .map((l) => String((JSON.parse(l) as { samples?: unknown }).samples));
}

function exit(p: Proc): Promise<number | null> {
  return new Promise((done) => (p.exited ? done(p.child.exitCode) : p.child.once('exit', (code) => done(code))));
}

describe('workers reading a user dataset themselves', () => {
  it('local workers read the CSV file and train what samples on the wire train', async () => {
    const run = async (extra: string[], file: string): Promise<{ params: Map<string, Float32Array>; stdout: string }> => {
      const r = await runCli(['local', '--workers', '2', '--balance', 'even', '--module', MODULE, '--dataset', `csv:${IRIS}`, '--label', 'species', '--epochs', '2', '--seed', '5', '--threads', '1', '--metrics-port', '0', '--save', join(dir, file), ...extra], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`meshgrad local failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      return { params: await params(join(dir, file)), stdout: `${r.stdout}\n${r.stderr}` };
    };
    const read = await run([], 'read.safetensors');
    const sent = await run(['--send-samples'], 'sent.safetensors');
    expect(joinedSamples(read.stdout)).toEqual(['read by the worker', 'read by the worker']);
    expect(joinedSamples(sent.stdout)).toEqual(['sent', 'sent']);
    expect(relativeDifference(read.params, sent.params)).toBe(0);
  });

  it('a worker whose copy differs or is missing stops; one without the file is sent samples', async () => {
    // The coordinator's copy, and a worker's copy with one feature value changed.
    const here = join(dir, 'coordinator');
    const there = join(dir, 'worker');
    mkdirSync(here);
    mkdirSync(there);
    copyFileSync(IRIS, join(here, 'iris.csv'));
    const lines = readFileSync(IRIS, 'utf8').split('\n');
    lines[1] = lines[1].replace(/^[^,]+/, '9.9');
    writeFileSync(join(there, 'iris.csv'), lines.join('\n'));
    const data = ['--dataset', 'csv:iris.csv', '--label', 'species'];
    const coordinator = Proc.meshgrad('coordinator', ['coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--module', MODULE, ...data, '--data-dir', here, '--epochs', '1', '--threads', '1'], { MESHGRAD_TOKEN: TOKEN });
    procs.push(coordinator);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const worker = async (name: string, extra: string[]): Promise<Proc> => {
      const p = Proc.meshgrad(name, ['worker', '--connect', url, '--name', name, '--metrics-port', '0', '--threads', '1', '--give-up-after', '60', '--module', MODULE, ...extra], { MESHGRAD_TOKEN: TOKEN });
      procs.push(p);
      await exit(p);
      return p;
    };
    const edited = await worker('edited', ['--dataset', 'csv:iris.csv', '--data-dir', there]);
    expect(edited.child.exitCode).toBe(1);
    expect(edited.output).toContain("the dataset csv:iris.csv read here differs from the coordinator's: the same size and shape, but other values");
    const missing = await worker('missing', ['--dataset', 'csv:iris.csv', '--data-dir', join(dir, 'nowhere')]);
    expect(missing.child.exitCode).toBe(1);
    expect(missing.output).toContain("cannot read the run's dataset csv:iris.csv here");
    expect(coordinator.exited).toBe(false);
    // Without --dataset the worker is sent the samples, and the run completes with it.
    const plain = await worker('plain', []);
    expect(plain.child.exitCode).toBe(0);
    expect(await exit(coordinator)).toBe(0);
    const joined = coordinator.logs.filter((l) => l.msg === 'worker joined').map((l) => [l.worker, l.samples]);
    expect(joined).toEqual([
      ['w1 (edited)', 'read by the worker'],
      ['w2 (missing)', 'read by the worker'],
      ['w3 (plain)', 'sent'],
    ]);
  });

  it('worker --dataset refuses what is not a user dataset, naming it', async () => {
    const r = await runCli(['worker', '--connect', 'ws://127.0.0.1:1', '--dataset', 'fashion-mnist']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("'fashion-mnist' is not a user dataset");
  });
});

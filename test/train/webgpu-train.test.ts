// Training on the WebGPU backend, end to end with real processes: `meshgrad train --backend webgpu`
// on every preset (mlp, also with SGD + Nesterov + clipping; cnn, lenet5, char-lstm, char-gru,
// gpt-tiny) for a few steps, each against the same run on the wasm backend (losses equal to 1e-4
// relative); `generate` from the webgpu run's checkpoint; and a mixed
// fleet (one webgpu worker, one wasm worker, --balance even) against `train`. Skipped, with the
// reason printed, where no WebGPU adapter exists (CI installs lavapipe, so it runs there).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { trainSingleProcess } from '../../shared/train/single-process.js';
import { baseConfig, Cluster, relativeDifference } from '../helpers/cluster.js';
import { runCli } from '../helpers/cli.js';
import { mlpTrainConfig } from '../helpers/train-config.js';
import { gpuSkipReason } from '../backend/webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;
const dir = mkdtempSync(join(tmpdir(), 'meshgrad-webgpu-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cluster = new Cluster();
afterEach(async () => {
  await cluster.closeAll();
});

interface Summary {
  readonly trainLoss: number;
  readonly testLoss: number;
  readonly testAccuracy: number;
  readonly steps: number;
}

async function train(backend: string, args: readonly string[], name: string): Promise<{ summary: Summary; stdout: string }> {
  const file = join(dir, `${name}-${backend}.json`);
  const r = await runCli(['train', '--backend', backend, '--threads', '1', '--seed', '3', '--summary-json', file, ...args], { timeoutMs: 240_000 });
  expect(r.code, `${backend} ${name}: ${r.stderr}`).toBe(0);
  return { summary: JSON.parse(readFileSync(file, 'utf8')) as Summary, stdout: r.stdout };
}

function relative(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

suite('train --backend webgpu', () => {
  const cases: Array<[string, string[]]> = [
    ['mlp', ['--model', 'mlp', '--dataset', 'fashion-mnist', '--max-steps', '4', '--batch-size', '64', '--train-samples', '512', '--test-samples', '200']],
    // SGD with Nesterov momentum and gradient clipping, both on the device.
    ['mlp-sgd', ['--model', 'mlp', '--dataset', 'fashion-mnist', '--max-steps', '4', '--batch-size', '64', '--train-samples', '512', '--test-samples', '200', '--optimizer', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--nesterov', '--clip-norm', '0.5']],
    ['cnn', ['--model', 'cnn', '--dataset', 'fashion-mnist', '--max-steps', '3', '--batch-size', '32', '--train-samples', '256', '--test-samples', '100']],
    ['lenet5', ['--model', 'lenet5', '--dataset', 'fashion-mnist', '--max-steps', '3', '--batch-size', '32', '--train-samples', '256', '--test-samples', '100']],
    ['char-lstm', ['--model', 'char-lstm', '--dataset', 'moby-dick', '--max-steps', '3', '--batch-size', '8', '--train-samples', '96', '--val-fraction', '0.25', '--test-samples', '16']],
    ['char-gru', ['--model', 'char-gru', '--dataset', 'moby-dick', '--max-steps', '3', '--batch-size', '8', '--train-samples', '96', '--val-fraction', '0.25', '--test-samples', '16']],
    // --val-fraction carves a small validation split from --train-samples (Moby-Dick's own split is
    // thousands of windows, minutes on a software adapter).
    ['gpt-tiny', ['--model', 'gpt-tiny', '--dataset', 'moby-dick', '--max-steps', '3', '--batch-size', '8', '--train-samples', '96', '--val-fraction', '0.25', '--test-samples', '16']],
  ];
  for (const [name, args] of cases) {
    it(`${name}: the losses of the wasm backend to 1e-4`, { timeout: 300_000 }, async () => {
      const gpu = await train('webgpu', args, name);
      const wasm = await train('wasm', args, name);
      expect(gpu.stdout).toMatch(/backend webgpu \(/);
      expect(gpu.summary.steps).toBe(wasm.summary.steps);
      expect(relative(gpu.summary.trainLoss, wasm.summary.trainLoss), `train loss ${gpu.summary.trainLoss} vs ${wasm.summary.trainLoss}`).toBeLessThan(1e-4);
      expect(relative(gpu.summary.testLoss, wasm.summary.testLoss), `test loss ${gpu.summary.testLoss} vs ${wasm.summary.testLoss}`).toBeLessThan(1e-4);
      expect(gpu.summary.testAccuracy).toBeCloseTo(wasm.summary.testAccuracy, 2);
    });
  }

  it('a checkpoint written on webgpu generates text on webgpu', { timeout: 300_000 }, async () => {
    const ckpt = join(dir, 'gru.safetensors');
    await train('webgpu', ['--model', 'char-gru', '--dataset', 'moby-dick', '--max-steps', '2', '--batch-size', '4', '--train-samples', '32', '--val-fraction', '0.25', '--test-samples', '8', '--save', ckpt], 'char-gru');
    const r = await runCli(['generate', '--backend', 'webgpu', '--checkpoint', ckpt, '--prompt', 'Call me', '--length', '20', '--seed', '1'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('Call me')).toBe(true);
    expect(r.stdout.trim().length).toBeGreaterThanOrEqual(20);
  });
});

suite('a mixed fleet', () => {
  it('one webgpu worker and one wasm worker train the parameters of train (within 1e-4)', { timeout: 300_000 }, async () => {
    const common = { trainSamples: 640, batchSize: 64, maxSteps: 6, testSamples: 100 } as const;
    const single = await trainSingleProcess(mlpTrainConfig(common), { step: () => {}, epoch: () => {} });
    const expected = new Map(single.model.namedParameters().map(([name, p]) => [name, (p.dataSync() as Float32Array).slice()]));
    const coordinator = await cluster.coordinator(baseConfig({ ...common, minWorkers: 2, balance: 'even' }));
    cluster.worker(coordinator.url, ['--backend', 'webgpu', '--threads', '1', '--name', 'gpu']);
    cluster.worker(coordinator.url, ['--backend', 'wasm', '--threads', '1', '--name', 'cpu']);
    const summary = await coordinator.run();
    expect(summary.steps).toBe(6);
    const diff = relativeDifference(coordinator.parameters(), expected);
    console.log(`mixed fleet (webgpu + wasm) vs train: relative difference ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    expect(diff).toBeGreaterThan(0);
  });
});

describe('--backend webgpu without an adapter', () => {
  it('exits non-zero with the reason in one line; --backend auto falls back to wasm', { timeout: 120_000 }, async () => {
    // No Vulkan driver is visible to the child: Dawn finds no adapter.
    const env = { ...process.env, VK_ICD_FILENAMES: join(dir, 'no-such-icd.json'), VK_DRIVER_FILES: join(dir, 'no-such-icd.json') };
    const args = ['--model', 'mlp', '--dataset', 'fashion-mnist', '--max-steps', '1', '--batch-size', '16', '--train-samples', '64', '--test-samples', '16'];
    const r = await runCli(['train', '--backend', 'webgpu', ...args], { env, timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no WebGPU adapter was found; install .*mesa-vulkan-drivers/);
    const auto = await runCli(['train', '--backend', 'auto', ...args], { env, timeoutMs: 60_000 });
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toMatch(/backend wasm \(/);
  });
});

// Checkpoints keep BatchNorm's buffers beside the parameters, under PyTorch's names and dtypes
// (running statistics F32, num_batches_tracked I64): `meshgrad train --save`, the coordinator's
// latest.safetensors and --save, --resume, old files without buffers, and loading into PyTorch.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { averageBuffers } from '../../coordinator/aggregate.js';
import { decodeContribution } from '../../coordinator/contribution.js';
import { latestPath, loadRunCheckpoint } from '../../coordinator/run-checkpoint.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { toWire } from '../../shared/protocol/wire-tensor.js';
import { decodeSafetensors, encodeSafetensors, loadCheckpoint, saveCheckpoint, CheckpointFormatError, type SafeTensor } from '../../shared/checkpoint/index.js';
import { openDataset } from '../../shared/data/registry.js';
import { buildModel, parseModelSpec, type ModelSpec } from '../../shared/nn/spec.js';
import type { Module } from '../../shared/nn/module.js';
import { createOptimizer } from '../../shared/optim/factory.js';
import { evaluate, evaluateYielding } from '../../shared/train/classify.js';
import { EarlyStopping } from '../../shared/train/early-stopping.js';
import { bufferSlots, checkpointParams, loadModelState, paramSlots } from '../../shared/train/params.js';
import { trainSingleProcess } from '../../shared/train/single-process.js';
import { Rng } from '../../shared/util/random.js';
import { baseConfig, Cluster } from '../helpers/cluster.js';
import { runCli } from '../helpers/cli.js';
import { mlpTrainConfig } from '../helpers/train-config.js';

const FASHION = fileURLToPath(new URL('../../data/fashion-mnist/', import.meta.url));
const TORCH_SCRIPT = fileURLToPath(new URL('../fixtures/torch_load_checkpoint.py', import.meta.url));

/** A small CNN with both kinds of BatchNorm (layers 1 and 6). */
const SPEC_JSON = {
  name: 'bn-cnn',
  input: [1, 28, 28],
  layers: [
    { type: 'conv2d', out: 4, kernel: 3 },
    { type: 'batchnorm2d' },
    { type: 'relu' },
    { type: 'maxpool2d', kernel: 2 },
    { type: 'flatten' },
    { type: 'linear', out: 16 },
    { type: 'batchnorm1d' },
    { type: 'relu' },
    { type: 'linear' },
  ],
};
const SPEC: ModelSpec = parseModelSpec(SPEC_JSON);
const BUFFERS = ['1.running_mean', '1.running_var', '1.num_batches_tracked', '6.running_mean', '6.running_var', '6.num_batches_tracked'];
const STEPS = 5;
const TRAIN = { trainSamples: 640, batchSize: 64 } as const;

/** The first `nTrain` / `nTest` samples of the bundled Fashion-MNIST, so evaluation stays quick. */
function writeSubset(dir: string, nTrain: number, nTest: number): void {
  const cut = (file: string, headerBytes: number, n: number, perSample: number): void => {
    const raw = gunzipSync(readFileSync(join(FASHION, file)));
    const out = Buffer.from(raw.subarray(0, headerBytes + n * perSample));
    out.writeUInt32BE(n, 4);
    writeFileSync(join(dir, file), gzipSync(out));
  };
  cut('train-images-idx3-ubyte.gz', 16, nTrain, 784);
  cut('train-labels-idx1-ubyte.gz', 8, nTrain, 1);
  cut('t10k-images-idx3-ubyte.gz', 16, nTest, 784);
  cut('t10k-labels-idx1-ubyte.gz', 8, nTest, 1);
}

/** The header of a safetensors file, parsed by hand (not by the codec under test). */
function rawHeader(bytes: Uint8Array): { dataStart: number; entries: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<string, unknown>;
  delete json.__metadata__;
  return { dataStart: 8 + length, entries: json as ReturnType<typeof rawHeader>['entries'] };
}

function freshModel(): Module {
  return buildModel(SPEC, new Rng(0), { numClasses: 10 }).model;
}

function bufferValues(model: Module): Map<string, Float32Array> {
  return new Map(model.namedBuffers().map(([name, b]) => [name, (b.dataSync() as Float32Array).slice()]));
}

/** Python 3 with torch importable, or null (Debian's python3-torch lives under /usr/bin/python3). */
function findTorchPython(): string | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (probe.status === 0) return python;
  }
  return null;
}
const torchPython = findTorchPython();

let dir = '';
let dataDir = '';
let specFile = '';
let saved = '';
let summary: { testAccuracy: number; testLoss: number; steps: number } = { testAccuracy: NaN, testLoss: NaN, steps: 0 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshgrad-bn-ckpt-'));
  dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  writeSubset(dataDir, TRAIN.trainSamples, 1000);
  specFile = join(dir, 'bn-cnn.json');
  writeFileSync(specFile, JSON.stringify(SPEC_JSON));
  saved = join(dir, 'model.safetensors');
  const summaryFile = join(dir, 'summary.json');
  // The CPU reference backend, so the in-process runs below reproduce the file bit for bit.
  const args = ['train', '--model', specFile, '--data-dir', dataDir, '--backend', 'cpu', '--max-steps', String(STEPS), '--train-samples', String(TRAIN.trainSamples), '--batch-size', String(TRAIN.batchSize), '--save', saved, '--summary-json', summaryFile];
  const run = await runCli(args, { timeoutMs: 120_000 });
  if (run.code !== 0) throw new Error(`meshgrad ${args.join(' ')} failed (${run.code}):\n${run.stderr}\n${run.stdout}`);
  summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as typeof summary;
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('meshgrad train --save with BatchNorm', () => {
  it('saves running_mean, running_var and num_batches_tracked with the values training left', async () => {
    const ckpt = await loadCheckpoint(saved);
    expect(summary.steps).toBe(STEPS);
    for (const name of BUFFERS) expect(ckpt.params.has(name), name).toBe(true);
    // The same run in this process: the file's buffers are exactly the trained model's.
    const reference = await trainSingleProcess(mlpTrainConfig({ model: SPEC, dataDir, ...TRAIN, maxSteps: STEPS }), { step: () => {}, epoch: () => {} });
    const expected = bufferValues(reference.model);
    expect([...expected.keys()]).toEqual(BUFFERS);
    for (const [name, value] of expected) {
      expect(ckpt.params.get(name)!.value, name).toEqual(value);
      expect(ckpt.params.get(name)!.dtype, name).toBe(name.endsWith('num_batches_tracked') ? 'I64' : 'F32');
    }
    expect(expected.get('1.num_batches_tracked')![0]).toBe(STEPS);
    expect(expected.get('6.running_mean')!.some((v) => v !== 0)).toBe(true);
    expect(expected.get('6.running_var')!.some((v) => v !== 1)).toBe(true);
    for (const [name, p] of reference.model.namedParameters()) expect(ckpt.params.get(name)!.value, name).toEqual(p.dataSync());
  });

  it('loads back into a fresh model that scores exactly the test figures the run reported', async () => {
    const test = openDataset('fashion-mnist', { dataDir }).test;
    const model = freshModel();
    expect(loadModelState(model, await loadCheckpoint(saved), saved)).toEqual([]);
    const scored = evaluate(model, test);
    expect(scored.accuracy).toBe(summary.testAccuracy);
    expect(scored.loss).toBe(summary.testLoss);
    // Without the running statistics (what the file used to hold) the same parameters score otherwise.
    const paramsOnly = freshModel();
    const loaded = await loadCheckpoint(saved);
    for (const name of BUFFERS) loaded.params.delete(name);
    expect(loadModelState(paramsOnly, loaded, 'old.safetensors', { allowMissingBuffers: true })).toEqual(BUFFERS);
    expect(evaluate(paramsOnly, test).loss).not.toBeCloseTo(summary.testLoss, 2);
  });

  it('stores parameters and running statistics as F32 and num_batches_tracked as an I64 equal to the steps', () => {
    const bytes = new Uint8Array(readFileSync(saved));
    const { dataStart, entries } = rawHeader(bytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const names = Object.keys(entries).sort();
    expect(names).toEqual([...freshModel().stateDict().keys()].sort());
    for (const [name, e] of Object.entries(entries)) {
      if (name.endsWith('.num_batches_tracked')) {
        expect(e.dtype, name).toBe('I64');
        expect(e.shape, name).toEqual([]);
        expect(e.data_offsets[1] - e.data_offsets[0], name).toBe(8);
        expect(view.getBigInt64(dataStart + e.data_offsets[0], true), name).toBe(BigInt(STEPS));
      } else {
        expect(e.dtype, name).toBe('F32');
      }
    }
    expect(entries['1.running_mean'].shape).toEqual([4]);
    expect(entries['6.running_var'].shape).toEqual([16]);
  });

  it.skipIf(torchPython === null)('loads into the equivalent torch nn.Sequential with load_state_dict(strict=True) (skipped when no python3 can import torch: Debian python3-torch)', async () => {
    const run = spawnSync(torchPython!, [TORCH_SCRIPT, saved, specFile, dataDir], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      dtypes: Record<string, string>;
      stateDictKeys: string[];
      buffers: Record<string, { dtype: string; shape: number[]; values: number[] }>;
      loss: number;
      accuracy: number;
      samples: number;
    };
    expect(result.stateDictKeys.sort()).toEqual(Object.keys(result.dtypes).sort());
    const ckpt = await loadCheckpoint(saved);
    for (const name of BUFFERS) {
      const b = result.buffers[name];
      expect(b.dtype, name).toBe(name.endsWith('num_batches_tracked') ? 'torch.int64' : 'torch.float32');
      expect(Float32Array.from(b.values), name).toEqual(ckpt.params.get(name)!.value);
    }
    expect(result.buffers['6.num_batches_tracked'].values).toEqual([STEPS]);
    // PyTorch, in eval mode with the saved running statistics, scores what meshgrad reported.
    expect(result.samples).toBe(1000);
    expect(Math.abs(result.accuracy - summary.testAccuracy)).toBeLessThanOrEqual(0.002);
    expect(Math.abs(result.loss - summary.testLoss)).toBeLessThan(1e-4 * summary.testLoss);
  });
});

describe('the coordinator saves and restores buffers', () => {
  const cluster = new Cluster();
  afterEach(() => cluster.closeAll());

  const config = (overrides: Parameters<typeof baseConfig>[0]) => baseConfig({ model: SPEC, dataDir, ...TRAIN, ...overrides });
  const workerArgs = (): string[] => ['--data-dir', dataDir, '--threads', '1'];

  it('latest.safetensors and --save hold the buffers; --resume continues them exactly as an uninterrupted run', async () => {
    const straightSave = join(dir, 'straight.safetensors');
    const straight = await cluster.coordinator(config({ maxSteps: 6, save: straightSave }));
    cluster.worker(straight.url, workerArgs());
    const full = await straight.run();
    expect(full.steps).toBe(6);
    const expectedBuffers = straight.buffers();
    const expectedParams = straight.parameters();
    expect(expectedBuffers.get('1.num_batches_tracked')![0]).toBe(6);
    await cluster.closeAll();

    // --save: every buffer, exactly the coordinator's, and the file scores what the run reported.
    const savedRun = await loadCheckpoint(straightSave);
    for (const [name, value] of expectedBuffers) expect(savedRun.params.get(name)?.value, name).toEqual(value);
    expect(savedRun.params.get('6.num_batches_tracked')!.dtype).toBe('I64');
    const model = freshModel();
    loadModelState(model, savedRun, straightSave);
    const scored = await evaluateYielding(model, openDataset('fashion-mnist', { dataDir }).test);
    expect(scored.accuracy).toBe(full.testAccuracy);
    expect(scored.loss).toBe(full.testLoss);

    // 3 steps, then resumed from latest.safetensors to 6.
    const checkpointDir = join(dir, 'b');
    const first = await cluster.coordinator(config({ maxSteps: 3, checkpointDir }));
    cluster.worker(first.url, workerArgs());
    await first.run();
    const atThree = first.buffers();
    await cluster.closeAll();
    const latest = decodeSafetensors(new Uint8Array(readFileSync(latestPath(checkpointDir))));
    expect(latest.tensors.get('1.num_batches_tracked')).toEqual({ dtype: 'I64', shape: [], data: BigInt64Array.of(3n) });
    for (const [name, value] of atThree) if (!name.endsWith('num_batches_tracked')) expect(latest.tensors.get(name)?.data, name).toEqual(value);

    const resumed = await cluster.coordinator(config({ maxSteps: 6, checkpointDir, resume: true }));
    cluster.worker(resumed.url, workerArgs());
    const rest = await resumed.run();
    expect(rest.steps).toBe(6);
    expect(resumed.buffers()).toEqual(expectedBuffers);
    expect(resumed.parameters()).toEqual(expectedParams);
    expect(rest.testAccuracy).toBe(full.testAccuracy);
  }, 300_000);

  it('resumes from an older checkpoint without buffers, which keep their initial values and are reported', async () => {
    const checkpointDir = join(dir, 'c');
    const c = await cluster.coordinator(config({ maxSteps: 2, checkpointDir }));
    cluster.worker(c.url, workerArgs());
    await c.run();
    const params = c.parameters();
    await cluster.closeAll();
    // Rewrite latest.safetensors as meshgrad wrote it before buffers were saved.
    const file = latestPath(checkpointDir);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
    for (const name of BUFFERS) tensors.delete(name);
    writeFileSync(file, encodeSafetensors(tensors, metadata));

    const cfg = config({ maxSteps: 2 });
    const model = freshModel();
    const optimizer = createOptimizer(cfg.optimizer, paramSlots(model), { lr: cfg.lr });
    const identity = { model: cfg.model, dataset: cfg.dataset, seed: cfg.seed, batchSize: cfg.batchSize, optimizer: cfg.optimizer, trainSamples: cfg.trainSamples ?? null };
    const { cursor, missingBuffers } = await loadRunCheckpoint(checkpointDir, model, optimizer, identity);
    expect(cursor.step).toBe(2);
    expect(missingBuffers).toEqual(BUFFERS);
    for (const [name, p] of model.namedParameters()) expect(p.dataSync(), name).toEqual(params.get(name));
    expect(bufferValues(model).get('1.running_var')).toEqual(new Float32Array(4).fill(1));
    // Loaders that evaluate (generate) refuse such a file, naming what it lacks.
    expect(() => loadModelState(freshModel(), { params: new Map() }, 'old.safetensors')).toThrow(/old\.safetensors has no 1\.running_mean, 1\.running_var, 1\.num_batches_tracked/);
  }, 300_000);
});

describe('I64 model tensors in saveCheckpoint / loadCheckpoint', () => {
  const tmp = (): string => join(dir, `${Math.random().toString(36).slice(2)}.safetensors`);

  it('round-trips integral float32 values through I64, and checkpointParams marks num_batches_tracked', async () => {
    const path = tmp();
    await saveCheckpoint(path, { params: [{ name: 'n', shape: [], value: Float32Array.of(2 ** 24), dtype: 'I64' }, { name: 'w', shape: [2], value: Float32Array.of(0.5, -1) }] });
    const loaded = await loadCheckpoint(path);
    expect(loaded.params.get('n')).toEqual({ shape: [], value: Float32Array.of(2 ** 24), dtype: 'I64' });
    expect(loaded.params.get('w')).toEqual({ shape: [2], value: Float32Array.of(0.5, -1), dtype: 'F32' });
    const entries = checkpointParams(freshModel());
    expect(entries.filter((e) => e.dtype === 'I64').map((e) => e.name)).toEqual(['1.num_batches_tracked', '6.num_batches_tracked']);
    expect(entries.map((e) => e.name).slice(-6)).toEqual(BUFFERS);
  });

  it('bufferSlots are the live buffers, so early stopping restores the best epoch\'s running statistics too', () => {
    const model = freshModel();
    const kept = [...paramSlots(model), ...bufferSlots(model)];
    const stopper = new EarlyStopping(1);
    stopper.observe(1, kept, 0);
    const best = bufferValues(model);
    for (const [, b] of model.namedBuffers()) b.dataSync()[0] += 3;
    expect(stopper.observe(2, kept, 1)).toBe(true);
    expect(stopper.restoreBest(kept)).toBe(true);
    expect(bufferValues(model)).toEqual(best);
  });

  it('refuses a non-integral value for I64, and an I64 that float32 cannot hold exactly', async () => {
    await expect(saveCheckpoint(tmp(), { params: [{ name: 'n', shape: [1], value: Float32Array.of(1.5), dtype: 'I64' }] })).rejects.toThrow(/'n' is stored as I64 but element 0 is 1.5/);
    const path = tmp();
    const big: Record<string, SafeTensor> = { n: { dtype: 'I64', shape: [], data: BigInt64Array.of(2n ** 24n + 1n) } };
    writeFileSync(path, encodeSafetensors(big));
    const error: unknown = await loadCheckpoint(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointFormatError);
    expect((error as Error).message).toMatch(/tensor 'n' \(I64\) holds 16777217 at element 0, which meshgrad's float32 buffers cannot hold exactly/);
  });
});

describe('integer buffers in a distributed step', () => {
  it('averages running statistics by samples but takes the smallest count for num_batches_tracked', () => {
    // Worker 2 computed two shards of the step (one reassigned to it), so it counted the step twice.
    const targets = [new Float32Array([0, 0]), Float32Array.of(7)];
    averageBuffers(
      targets,
      [
        { samples: 3, computeMs: 1, grads: [], buffers: [Float32Array.of(1, 10), Float32Array.of(8)] },
        { samples: 1, computeMs: 1, grads: [], buffers: [Float32Array.of(5, 2), Float32Array.of(9)] },
      ],
      [false, true],
    );
    expect([...targets[0]]).toEqual([2, 8]);
    expect([...targets[1]]).toEqual([8]);
  });

  it('refuses a contribution whose count is not a whole number', () => {
    const buffers = [{ name: '1.num_batches_tracked', shape: [], integer: true }];
    const message = (count: number) => ({
      type: 'gradients' as const,
      step: 0,
      version: 0,
      shard: 0,
      samples: 2,
      loss: 1,
      correct: 0,
      computeMs: 1,
      grads: [],
      buffers: [toWire(Float32Array.of(count), [])],
    });
    expect(decodeContribution(message(4), [], 2, undefined, 1, buffers).buffers).toEqual([Float32Array.of(4)]);
    for (const bad of [4.5, -1]) {
      const error: unknown = (() => {
        try {
          return decodeContribution(message(bad), [], 2, undefined, 1, buffers);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as Error).message).toMatch(/buffer 0 \(1\.num_batches_tracked\) is a count but has/);
    }
  });
});

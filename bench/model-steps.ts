/**
 * `--suite models`: training samples/s of the `cnn` preset (batch 64, Fashion-MNIST) and the
 * `gpt-tiny` preset (batch 32, context 64, Moby-Dick) on meshgrad's backends, next to TensorFlow.js
 * where it has the layers (the CNN on its CPU backend; tfjs-wasm has no convolution gradients and
 * tfjs has no attention layer), and next to PyTorch when Debian's python3-torch is installed
 * (`/usr/bin/python3 -c "import torch"`), as a reference that is not part of the npm install.
 *
 * A meshgrad step is exactly the trainer's: batch gather, forward, backward and Adam(W) inside one
 * backend scope.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { setDefaultBackend } from '../shared/backend/default.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { openDataset } from '../shared/data/registry.js';
import { BatchSampler } from '../shared/data/sampler.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel, contextLength, type ModelSpec } from '../shared/nn/spec.js';
import { createOptimizer } from '../shared/optim/factory.js';
import { computeGradients } from '../shared/train/classify.js';
import { attachGrads, detachGrads, paramSlots } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';
import { openMeshgradEngine, type MeshgradEngineId } from './backends.js';
import { timingStats, type TimingStats } from './report.js';

export interface ModelStepRow {
  readonly model: string;
  readonly engine: string;
  readonly batchSize: number;
  readonly timing: TimingStats;
  readonly samplesPerSecond: number;
  readonly firstLoss: number;
  readonly lastLoss: number;
}

export interface ModelStepsResult {
  readonly rows: ModelStepRow[];
  /** meshgrad (best engine) ms ÷ other engine ms per model, keyed "model: engine". */
  readonly notes: string[];
  readonly ok: boolean;
}

interface Options {
  readonly quick?: boolean;
  readonly log?: (line: string) => void;
}

function meshgradSteps(spec: ModelSpec, dataset: string, batchSize: number, engine: { backend: typeof cpu }, warmup: number, timed: number): { times: number[]; losses: number[] } {
  setDefaultBackend(engine.backend);
  try {
    const data = openDataset(dataset, { contextLength: contextLength(spec) });
    const { model } = buildModel(spec, new Rng(1), { numClasses: data.train.numClasses });
    const slots = paramSlots(model);
    const optimizer = createOptimizer(spec.defaults?.optimizer ?? 'adam', slots, { lr: spec.defaults?.lr ?? 1e-3, weightDecay: spec.defaults?.weightDecay, vectorOps: engine.backend.vectorOps?.() });
    const sampler = new BatchSampler({ size: data.train.size, batchSize, seed: 1, dropLast: true });
    const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
    const times: number[] = [];
    const losses: number[] = [];
    let i = 0;
    for (const indices of sampler.epoch(0)) {
      if (i >= warmup + timed) break;
      const started = performance.now();
      const batch = data.train.batch(indices, buffers);
      const loss = engine.backend.scope(() => {
        const r = computeGradients(model, batch);
        attachGrads(model, slots);
        optimizer.step();
        return r.loss;
      });
      detachGrads(model, slots);
      if (i >= warmup) times.push(performance.now() - started);
      losses.push(loss);
      i++;
    }
    return { times, losses };
  } finally {
    setDefaultBackend(cpu);
  }
}

/** The cnn preset in tfjs (NHWC), Adam 1e-3; one step = forward, backward and update in tf.tidy. */
async function tfjsCnnSteps(batchSize: number, warmup: number, timed: number): Promise<{ times: number[]; losses: number[] }> {
  tf.enableProdMode(); // silences the 'install tfjs-node' banner; changes no computation
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu' }),
      tf.layers.dense({ units: 10 }),
    ],
  });
  const optimizer = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  const data = openDataset('fashion-mnist').train;
  const sampler = new BatchSampler({ size: data.size, batchSize, seed: 1, dropLast: true });
  const times: number[] = [];
  const losses: number[] = [];
  let i = 0;
  for (const indices of sampler.epoch(0)) {
    if (i >= warmup + timed) break;
    const started = performance.now();
    const batch = data.batch(indices);
    const loss = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [batchSize, 28, 28, 1]);
      const y = tf.oneHot(tf.tensor1d(batch.y, 'int32'), 10);
      const l = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true);
      return l ? l.dataSync()[0] : NaN;
    });
    if (i >= warmup) times.push(performance.now() - started);
    losses.push(loss);
    i++;
  }
  model.dispose();
  optimizer.dispose();
  return { times, losses };
}

const TORCH_SCRIPT = `
import sys, time, torch, torch.nn as nn
torch.manual_seed(1)
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
m = nn.Sequential(nn.Conv2d(1,32,3,padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32,64,3,padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136,128), nn.ReLU(), nn.Linear(128,10))
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
x = torch.rand(64,1,28,28); y = torch.randint(0,10,(64,))
def step():
    opt.zero_grad(); loss = nn.functional.cross_entropy(m(x), y); loss.backward(); opt.step()
for _ in range(3): step()
t = time.perf_counter()
for _ in range(steps): step()
print((time.perf_counter() - t) / steps * 1000)
`;

/** PyTorch's cnn step (batch 64) in ms with `threads` threads, or null without python3-torch. */
function torchCnnStepMs(threads: number, steps: number): number | null {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return null;
  const r = spawnSync(python, ['-c', TORCH_SCRIPT, String(threads), String(steps)], { encoding: 'utf8', timeout: 300_000 });
  const ms = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(ms) ? ms : null;
}

function row(model: string, engine: string, batchSize: number, run: { times: number[]; losses: number[] }): ModelStepRow {
  const timing = timingStats(run.times);
  return { model, engine, batchSize, timing, samplesPerSecond: (batchSize * 1000) / timing.medianMs, firstLoss: run.losses[0], lastLoss: run.losses[run.losses.length - 1] };
}

export async function runModelStepsSuite(options: Options = {}): Promise<ModelStepsResult> {
  const log = options.log ?? (() => {});
  const quick = options.quick ?? false;
  const rows: ModelStepRow[] = [];
  const notes: string[] = [];
  const engines: MeshgradEngineId[] = ['meshgrad-wasm-1t', 'meshgrad-wasm-2t'];
  for (const [name, dataset, batch, warmup, timed] of [
    ['cnn', 'fashion-mnist', 64, quick ? 1 : 3, quick ? 3 : 20],
    ['gpt-tiny', 'moby-dick', 32, quick ? 1 : 3, quick ? 3 : 20],
  ] as const) {
    for (const id of engines) {
      const engine = await openMeshgradEngine(id);
      try {
        log(`  ${name}: ${engine.description}`);
        rows.push(row(name, engine.description, batch, meshgradSteps(PRESETS[name], dataset, batch, engine, warmup, timed)));
      } finally {
        await engine.close();
      }
    }
  }
  log('  cnn: tfjs-cpu (slow: seconds per step)');
  const tfRow = row('cnn', 'tfjs-cpu', 64, await tfjsCnnSteps(64, 1, quick ? 1 : 2));
  rows.push(tfRow);
  const best = Math.min(...rows.filter((r) => r.model === 'cnn' && r.engine.startsWith('meshgrad')).map((r) => r.timing.medianMs));
  notes.push(`cnn: meshgrad is ${(tfRow.timing.medianMs / best).toFixed(1)}x faster than tfjs-cpu (target >= 10x)`);
  for (const threads of [1, 2]) {
    const ms = quick ? null : torchCnnStepMs(threads, 20);
    if (ms !== null) {
      rows.push({ model: 'cnn', engine: `PyTorch ${threads} thread${threads > 1 ? 's' : ''} (python3-torch, reference)`, batchSize: 64, timing: timingStats([ms]), samplesPerSecond: (64 * 1000) / ms, firstLoss: NaN, lastLoss: NaN });
      notes.push(`cnn: PyTorch ${threads}T ${ms.toFixed(1)} ms/step vs meshgrad ${best.toFixed(1)} ms (ratio ${(best / ms).toFixed(1)}x slower)`);
    }
  }
  notes.push('gpt-tiny: no tfjs comparison (tfjs-layers has no multi-head attention layer)');
  const ok = rows.filter((r) => r.engine.startsWith('meshgrad')).every((r) => Number.isFinite(r.lastLoss) && r.lastLoss < r.firstLoss);
  return { rows, notes, ok };
}

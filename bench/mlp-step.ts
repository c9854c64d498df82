/**
 * The MLP training-step benchmark: one optimizer step of the 784-256-128-10 ReLU MLP on a real
 * Fashion-MNIST batch of 128 (pixels / 255), Adam with lr 1e-3, in meshgrad and in TensorFlow.js
 * (CPU backend, and the WebAssembly backend).
 *
 * The meshgrad step is exactly the single-process trainer's (shared/train/single-process.ts):
 * gather the batch, computeGradients (forward, cross-entropy, backward), attachGrads, Adam step.
 * The tfjs step does the same work the idiomatic tfjs way: the batch gathered by the same Dataset,
 * uploaded as a tensor with one-hot labels, forward through tf.fused.matMul (matmul + bias + ReLU,
 * what tf.layers.dense uses), tf.losses.softmaxCrossEntropy, and optimizer.minimize with
 * tf.train.adam inside tf.tidy, so the live-tensor count stays flat from step to step.
 *
 * Both engines start from the same weights (meshgrad's seeded initialisation, transposed to the
 * [in, out] layout tfjs uses) and see the same sequence of batches, so their first losses agree;
 * that, and the loss going down, show that nobody benchmarks a broken step.
 */

import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BatchBuffers, Dataset } from '../shared/data/dataset.js';
import { loadFashionMnist } from '../shared/data/fashion-mnist.js';
import { BatchSampler } from '../shared/data/sampler.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel } from '../shared/nn/spec.js';
import { createOptimizer } from '../shared/optim/factory.js';
import { computeGradients } from '../shared/train/classify.js';
import { attachGrads, paramSlots } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';
import { mean, timingStats, type TimingStats } from './report.js';

// ---------------------------------------------------------------------------------------------
// TensorFlow.js backends
// ---------------------------------------------------------------------------------------------

export type TfjsBackendName = 'cpu' | 'wasm';

export interface TfjsBackendInfo {
  readonly backend: TfjsBackendName;
  /** A short description, e.g. "tfjs 4.22.0 wasm (SIMD, 1 thread)". */
  readonly description: string;
  readonly simd?: boolean;
  readonly threads?: number;
}

let tfjsConfigured = false;
let wasmPathsSet = false;

/** The folder holding tfjs-backend-wasm's .wasm binaries (node_modules/@tensorflow/tfjs-backend-wasm/dist/). */
export function tfjsWasmDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + sep;
}

/**
 * Makes `name` the active tfjs backend. On first use, switches tfjs to production mode: that only
 * silences tfjs's console warnings (in 4.x the PROD flag gates nothing but backend_util.warn/log),
 * in particular the CPU backend's "install tfjs-node to speed things up" banner. The WASM binaries
 * are loaded from node_modules (tfjs-backend-wasm disables its threaded build under Node, so it
 * runs single-threaded, with SIMD where the runtime has it).
 */
export async function useTfjsBackend(name: TfjsBackendName): Promise<TfjsBackendInfo> {
  if (!tfjsConfigured) {
    tf.enableProdMode();
    tfjsConfigured = true;
  }
  if (name === 'wasm' && !wasmPathsSet) {
    setWasmPaths(tfjsWasmDir());
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) throw new Error(`TensorFlow.js backend '${name}' could not be initialised (active: ${tf.getBackend()})`);
  const version = tf.version.tfjs;
  if (name === 'cpu') return { backend: name, description: `tfjs ${version} cpu (plain JS, 1 thread)` };
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const multithread = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
  const wasm = (tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } }).wasm;
  const threads = multithread ? (wasm?.tfjs?.getThreadsCount?.() ?? NaN) : 1;
  return {
    backend: name,
    description: `tfjs ${version} wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`,
    simd,
    threads,
  };
}

// ---------------------------------------------------------------------------------------------
// The step functions
// ---------------------------------------------------------------------------------------------

export const MLP_BATCH_SIZE = 128;
export const MLP_LR = 1e-3;
export const MLP_SEED = 1;

export interface MlpBenchData {
  readonly train: Dataset;
}

/** Fashion-MNIST's training split (loaded from data/fashion-mnist; pixels become /255 floats when batched). */
export function loadMlpBenchData(): MlpBenchData {
  return { train: loadFashionMnist().train };
}

export type EngineId = 'meshgrad' | 'tfjs-cpu' | 'tfjs-wasm';

/** One engine's training step, ready to call repeatedly; each call takes the next batch. */
export interface TrainStep {
  readonly engine: EngineId;
  readonly description: string;
  /** Runs one full training step and returns that batch's mean loss (before the update). */
  step(): number;
  /** Live tensors the engine holds (tfjs only), to show that a step does not leak. */
  liveTensors(): number | null;
  dispose(): void;
}

export interface StepOptions {
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed?: number;
}

/** An endless supply of batch index lists: the seeded shuffled epochs of BatchSampler, back to back. */
function batchStream(size: number, batchSize: number, seed: number): () => Int32Array {
  const sampler = new BatchSampler({ size, batchSize, seed, dropLast: true });
  if (sampler.numBatches === 0) throw new RangeError(`the dataset (${size} samples) holds no full batch of ${batchSize}`);
  let epoch = 0;
  let batches = sampler.epoch(epoch);
  return () => {
    let next = batches.next();
    if (next.done === true) {
      epoch++;
      batches = sampler.epoch(epoch);
      next = batches.next();
    }
    return next.value as Int32Array;
  };
}

/** meshgrad's training step, exactly as trainSingleProcess does it (without clipping or a schedule). */
export function createMeshgradStep(data: MlpBenchData, options: StepOptions = {}): TrainStep {
  const batchSize = options.batchSize ?? MLP_BATCH_SIZE;
  const seed = options.seed ?? MLP_SEED;
  const { model } = buildModel(PRESETS.mlp, new Rng(seed));
  const slots = paramSlots(model);
  const optimizer = createOptimizer('adam', slots, { lr: options.lr ?? MLP_LR });
  const nextIndices = batchStream(data.train.size, batchSize, seed);
  const buffers: BatchBuffers = { x: new Float32Array(0), y: new Int32Array(0) };
  model.train();
  return {
    engine: 'meshgrad',
    description: 'meshgrad (TypeScript kernels, 1 thread)',
    step(): number {
      const batch = data.train.batch(nextIndices(), buffers);
      const result = computeGradients(model, batch);
      attachGrads(model, slots);
      optimizer.step();
      return result.loss;
    },
    liveTensors: () => null,
    dispose(): void {},
  };
}

interface DenseInit {
  /** [in, out], tfjs's layout. */
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** meshgrad's seeded initial MLP weights, with each weight transposed from [out, in] to [in, out]. */
function initialDenseLayers(seed: number): DenseInit[] {
  const { model } = buildModel(PRESETS.mlp, new Rng(seed));
  const params = model.namedParameters();
  const layers: DenseInit[] = [];
  for (let i = 0; i < params.length; i += 2) {
    const [wName, w] = params[i];
    const [bName, b] = params[i + 1];
    if (!wName.endsWith('.weight') || !bName.endsWith('.bias') || w.rank !== 2) throw new Error(`internal: unexpected MLP parameters ${wName}, ${bName}`);
    const [outF, inF] = w.shape;
    const src = w.dataSync();
    const weight = new Float32Array(inF * outF);
    for (let o = 0; o < outF; o++) for (let k = 0; k < inF; k++) weight[k * outF + o] = src[o * inF + k];
    layers.push({ weight, bias: Float32Array.from(b.dataSync()), inFeatures: inF, outFeatures: outF });
  }
  return layers;
}

/**
 * The same training step in TensorFlow.js on `backend`, which this makes the active backend. Only
 * one tfjs step should be alive at a time (dispose it before creating the next).
 */
export async function createTfjsStep(data: MlpBenchData, backend: TfjsBackendName, options: StepOptions = {}): Promise<TrainStep> {
  const info = await useTfjsBackend(backend);
  const batchSize = options.batchSize ?? MLP_BATCH_SIZE;
  const seed = options.seed ?? MLP_SEED;
  const numClasses = data.train.numClasses;
  const inputSize = data.train.sampleShape.reduce((a, b) => a * b, 1);
  const layers = initialDenseLayers(seed).map((l, i) => ({
    w: tf.variable(tf.tensor2d(l.weight, [l.inFeatures, l.outFeatures]), true, `mlp/dense${i}/kernel`),
    b: tf.variable(tf.tensor1d(l.bias), true, `mlp/dense${i}/bias`),
  }));
  const varList = layers.flatMap((l) => [l.w, l.b]);
  // tfjs's Adam defaults to ε = 1e-7 (its float32 backend epsilon); meshgrad's, like PyTorch's, is 1e-8.
  const optimizer = tf.train.adam(options.lr ?? MLP_LR, 0.9, 0.999, 1e-8);
  const nextIndices = batchStream(data.train.size, batchSize, seed);
  const buffers: BatchBuffers = { x: new Float32Array(0), y: new Int32Array(0) };

  const lossOf = (x: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar => {
    let h: tf.Tensor = x;
    layers.forEach((l, i) => {
      h = tf.fused.matMul({ a: h as tf.Tensor2D, b: l.w, bias: l.b, activation: i < layers.length - 1 ? 'relu' : 'linear' });
    });
    return tf.losses.softmaxCrossEntropy(y, h);
  };

  return {
    engine: backend === 'cpu' ? 'tfjs-cpu' : 'tfjs-wasm',
    description: info.description,
    step(): number {
      const batch = data.train.batch(nextIndices(), buffers);
      const cost = tf.tidy(() => {
        const x = tf.tensor2d(batch.x, [batch.size, inputSize]);
        const y = tf.oneHot(tf.tensor1d(batch.y, 'int32'), numClasses) as tf.Tensor2D;
        const c = optimizer.minimize(() => lossOf(x, y), true, varList);
        if (c === null) throw new Error('internal: optimizer.minimize returned no cost');
        return c;
      });
      const value = cost.dataSync()[0];
      cost.dispose();
      return value;
    },
    liveTensors: () => tf.memory().numTensors,
    dispose(): void {
      optimizer.dispose();
      for (const v of varList) v.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export interface EngineResult {
  readonly engine: EngineId;
  readonly description: string;
  readonly warmupSteps: number;
  readonly timing: TimingStats;
  /** Training samples per second over the timed steps (batch size / mean step time). */
  readonly samplesPerSecond: number;
  /** Loss of the very first (warm-up) step: same weights and batch for every engine. */
  readonly initialLoss: number;
  /** Losses of the timed steps, in order. */
  readonly losses: readonly number[];
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly lossCheck: { readonly passed: boolean; readonly detail: string };
  /** tfjs: live tensors after the warm-up and after the timed steps (equal: no leak). */
  readonly liveTensors: { readonly before: number; readonly after: number } | null;
  /** meshgrad: tfjs median / meshgrad median, i.e. how many times faster meshgrad is. 1 for meshgrad. */
  readonly meshgradSpeedup: number;
  /** The step-0 loss equals meshgrad's to within STEP0_LOSS_TOLERANCE (same weights, same batch). */
  readonly initialLossMatches: boolean;
}

/** Float32 rounding differs between engines, but not by this much on the very first loss. */
export const STEP0_LOSS_TOLERANCE = 1e-4;

export interface MlpStepSuiteResult {
  readonly model: string;
  readonly batchSize: number;
  readonly optimizer: string;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly engines: readonly EngineResult[];
  /** Every engine's loss finite, going down, and equal to meshgrad's at step 0; tfjs's live-tensor count flat. */
  readonly ok: boolean;
}

export interface MlpStepSuiteOptions {
  readonly quick?: boolean;
  readonly warmupSteps?: number;
  readonly timedSteps?: number;
  readonly log?: (line: string) => void;
}

/**
 * Whether the loss went down over the timed steps: the mean of the last quarter below the mean of
 * the first quarter (single batches are noisy, so means, not endpoints). Windows under 8 steps
 * (--quick) are too short for that, and are compared with the loss of the very first step instead.
 */
export function checkLossDecrease(initialLoss: number, losses: readonly number[]): { passed: boolean; detail: string } {
  if (!Number.isFinite(initialLoss) || losses.some((l) => !Number.isFinite(l))) return { passed: false, detail: 'non-finite loss' };
  if (losses.length >= 8) {
    const k = Math.floor(losses.length / 4);
    const first = mean(losses.slice(0, k));
    const last = mean(losses.slice(-k));
    return { passed: last < first, detail: `mean of first ${k} timed ${first.toFixed(3)} -> last ${k} ${last.toFixed(3)}` };
  }
  const k = Math.min(3, losses.length);
  const last = mean(losses.slice(-k));
  return { passed: last < initialLoss, detail: `step-0 loss ${initialLoss.toFixed(3)} -> mean of last ${k} ${last.toFixed(3)}` };
}

async function measure(trainStep: TrainStep, warmupSteps: number, timedSteps: number, batchSize: number): Promise<Omit<EngineResult, 'meshgradSpeedup' | 'initialLossMatches'>> {
  let initialLoss = NaN;
  for (let i = 0; i < warmupSteps; i++) {
    const loss = trainStep.step();
    if (i === 0) initialLoss = loss;
  }
  // Let anything queued (tfjs's async bookkeeping, finalizers) run before the clock starts.
  await new Promise((resolve) => setImmediate(resolve));
  const before = trainStep.liveTensors();
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < timedSteps; i++) {
    const t0 = performance.now();
    const loss = trainStep.step();
    times.push(performance.now() - t0);
    losses.push(loss);
  }
  const after = trainStep.liveTensors();
  if (warmupSteps === 0) initialLoss = losses[0] ?? NaN;
  const timing = timingStats(times);
  return {
    engine: trainStep.engine,
    description: trainStep.description,
    warmupSteps,
    timing,
    samplesPerSecond: (batchSize * 1000) / timing.meanMs,
    initialLoss,
    losses,
    firstLoss: losses[0] ?? NaN,
    lastLoss: losses[losses.length - 1] ?? NaN,
    lossCheck: checkLossDecrease(initialLoss, losses),
    liveTensors: before === null || after === null ? null : { before, after },
  };
}

export async function runMlpStepSuite(options: MlpStepSuiteOptions = {}): Promise<MlpStepSuiteResult> {
  const quick = options.quick ?? false;
  const warmupSteps = options.warmupSteps ?? (quick ? 3 : 10);
  const timedSteps = options.timedSteps ?? (quick ? 5 : 50);
  const log = options.log ?? (() => {});
  const data = loadMlpBenchData();
  const factories: Array<[EngineId, () => Promise<TrainStep>]> = [
    ['meshgrad', () => Promise.resolve(createMeshgradStep(data))],
    ['tfjs-cpu', () => createTfjsStep(data, 'cpu')],
    ['tfjs-wasm', () => createTfjsStep(data, 'wasm')],
  ];
  const measured: Array<Omit<EngineResult, 'meshgradSpeedup' | 'initialLossMatches'>> = [];
  for (const [engine, create] of factories) {
    log(`  ${engine}: ${warmupSteps} warm-up + ${timedSteps} timed steps ...`);
    const trainStep = await create();
    try {
      measured.push(await measure(trainStep, warmupSteps, timedSteps, MLP_BATCH_SIZE));
    } finally {
      trainStep.dispose();
    }
  }
  const reference = measured[0];
  const engines = measured.map(
    (r): EngineResult => ({
      ...r,
      meshgradSpeedup: r.engine === 'meshgrad' ? 1 : r.timing.medianMs / reference.timing.medianMs,
      initialLossMatches: Math.abs(r.initialLoss - reference.initialLoss) <= STEP0_LOSS_TOLERANCE,
    }),
  );
  const ok = engines.every((e) => e.lossCheck.passed && e.initialLossMatches && (e.liveTensors === null || e.liveTensors.after === e.liveTensors.before));
  return { model: 'mlp 784-256-128-10 (ReLU)', batchSize: MLP_BATCH_SIZE, optimizer: `adam lr ${MLP_LR}`, warmupSteps, timedSteps, engines, ok };
}

/**
 * The MLP training-step benchmark: one optimizer step of the 784-256-128-10 ReLU MLP on a real
 * Fashion-MNIST batch of 128 (pixels / 255), Adam with lr 1e-3, in meshgrad (wasm backend with 1
 * and with 2 threads, and the plain TypeScript cpu reference backend) and in TensorFlow.js (CPU
 * backend, and the WebAssembly backend). The same tfjs step also runs on tfjs's WebGPU backend
 * (`createTfjsAsyncStep(data, 'webgpu')`, for the webgpu suite, bench/webgpu-steps.ts): there a
 * value comes back only asynchronously, so that step is awaited.
 *
 * The meshgrad step is exactly the single-process trainer's (shared/train/single-process.ts):
 * gather the batch, then in one `backend.scope` computeGradients (forward, cross-entropy,
 * backward), attachGrads and the Adam step, then detachGrads. On the wasm backend every
 * intermediate is recycled when the scope ends, so the heap must stay flat from step to step.
 * The tfjs step does the same work the idiomatic tfjs way: the batch gathered by the same Dataset,
 * uploaded as a tensor with one-hot labels, forward through tf.fused.matMul (matmul + bias + ReLU,
 * what tf.layers.dense uses), tf.losses.softmaxCrossEntropy, and optimizer.minimize with
 * tf.train.adam inside tf.tidy, so the live-tensor count stays flat from step to step.
 *
 * Every engine starts from the same weights (meshgrad's seeded initialisation, transposed to the
 * [in, out] layout tfjs uses) and sees the same sequence of batches, so their first losses agree;
 * that, and the loss going down, show that nobody benchmarks a broken step.
 */

import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { Backend } from '../shared/backend/backend.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { defaultBackend, setDefaultBackend } from '../shared/backend/default.js';
import type { HeapStats } from '../shared/backend/wasm/heap.js';
import type { BatchBuffers, Dataset } from '../shared/data/dataset.js';
import { loadFashionMnist } from '../shared/data/fashion-mnist.js';
import { BatchSampler } from '../shared/data/sampler.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel } from '../shared/nn/spec.js';
import { createOptimizer } from '../shared/optim/factory.js';
import { computeGradients } from '../shared/train/classify.js';
import { attachGrads, detachGrads, paramSlots } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';
import { MESHGRAD_ENGINES, openMeshgradEngine, type MeshgradEngine, type MeshgradEngineId } from './backends.js';
import { mean, timingStats, type TrainingRunStats } from './report.js';

// ---------------------------------------------------------------------------------------------
// TensorFlow.js backends
// ---------------------------------------------------------------------------------------------

export type TfjsBackendName = 'cpu' | 'wasm' | 'webgpu';
/** The tfjs backends that read values back synchronously (dataSync), which `createTfjsStep` needs. */
export type TfjsSyncBackendName = Exclude<TfjsBackendName, 'webgpu'>;

export interface TfjsBackendInfo {
  readonly backend: TfjsBackendName;
  /** A short description, e.g. "tfjs 4.22.0 wasm (SIMD, 1 thread)" or "tfjs 4.22.0 webgpu (mesa software)". */
  readonly description: string;
  readonly simd?: boolean;
  readonly threads?: number;
}

let tfjsConfigured = false;
let wasmPathsSet = false;
/**
 * The Dawn GPU object that tfjs-backend-webgpu reaches as `navigator.gpu`. Held for the life of
 * the process: once it is collected, Dawn tears its instance down under the live device and the
 * process crashes on the next submit.
 */
let tfjsGpu: unknown = null;
let tfjsWebGpuLoaded: Promise<void> | null = null;

/**
 * Registers tfjs's WebGPU backend in Node: the `webgpu` package (Dawn, an optional dependency,
 * imported by name at run time so that the bench builds without it) provides `navigator.gpu` and
 * the GPU* constants tfjs-backend-webgpu reads as globals, and only then is tfjs-backend-webgpu
 * imported (it registers itself at import time, and only when `navigator.gpu` exists). Bench only:
 * meshgrad's own backend finds the GPU through shared/backend/webgpu/gpu-loader.ts.
 */
function loadTfjsWebGpu(): Promise<void> {
  tfjsWebGpuLoaded ??= (async () => {
    const name = 'webgpu';
    let mod: { create(options: string[]): unknown; globals: Record<string, unknown> };
    try {
      mod = (await import(name)) as typeof mod;
    } catch (error) {
      throw new Error(`tfjs webgpu: the optional 'webgpu' package could not be loaded (${(error as Error).message.split('\n')[0]})`);
    }
    Object.assign(globalThis, mod.globals);
    tfjsGpu = mod.create([]);
    // Node 21+ defines a read-only navigator; defineProperty replaces it where plain assignment would throw.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: tfjsGpu }, configurable: true, writable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
  })();
  return tfjsWebGpuLoaded;
}

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
  if (name === 'webgpu') await loadTfjsWebGpu();
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) throw new Error(`TensorFlow.js backend '${name}' could not be initialised (active: ${tf.getBackend()})`);
  const version = tf.version.tfjs;
  if (name === 'cpu') return { backend: name, description: `tfjs ${version} cpu (plain JS, 1 thread)` };
  if (name === 'webgpu') {
    const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
    return { backend: name, description: `tfjs ${version} webgpu (${[info?.vendor, info?.architecture].filter((v) => v).join(' ') || 'unknown adapter'})` };
  }
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

export type EngineId = MeshgradEngineId | 'tfjs-cpu' | 'tfjs-wasm';

/** The order the suite runs (and prints) the engines in: the headline ones first, in a fresh process. */
export const MLP_ENGINES: readonly EngineId[] = [...MESHGRAD_ENGINES, 'tfjs-wasm', 'tfjs-cpu'];

/** The engine whose step-0 loss the others must reproduce. */
export const REFERENCE_ENGINE: EngineId = 'meshgrad-cpu';

/** Acceptance targets of the wasm backend against tfjs-wasm (single-threaded SIMD). */
export const MLP_TARGETS = { oneThreadVsTfjsWasm: 4, oneThreadMaxMs: 8 } as const;

/** One engine's training step, ready to call repeatedly; each call takes the next batch. */
export interface TrainStep {
  readonly engine: EngineId;
  readonly description: string;
  /** Runs one full training step and returns that batch's mean loss (before the update). */
  step(): number;
  /** Live tensors the engine holds (tfjs only), to show that a step does not leak. */
  liveTensors(): number | null;
  /** The wasm heap's counters (meshgrad on wasm only), to show that a step recycles its memory. */
  memoryStats(): HeapStats | null;
  dispose(): void;
}

/** A training step whose loss comes back asynchronously (a GPU engine); otherwise as TrainStep. */
export interface AsyncTrainStep extends Omit<TrainStep, 'engine' | 'step'> {
  /** e.g. "tfjs-webgpu", "meshgrad-webgpu". */
  readonly engine: string;
  /** Runs one full training step, including reading its loss back, and resolves to that loss. */
  step(): Promise<number>;
}

export interface StepOptions {
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed?: number;
}

/** An endless supply of batch index lists: the seeded shuffled epochs of BatchSampler, back to back. */
export function batchStream(size: number, batchSize: number, seed: number): () => Int32Array {
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

/** Runs fn with `backend` as the default backend for new tensors, as the CLI's --backend makes it. */
function withDefaultBackend<T>(backend: Backend, fn: () => T): T {
  const previous = defaultBackend();
  setDefaultBackend(backend);
  try {
    return fn();
  } finally {
    setDefaultBackend(previous);
  }
}

/**
 * meshgrad's training step, exactly as trainSingleProcess does it (without clipping or a
 * schedule), on `engine`'s backend (default: the cpu reference backend). The model's parameters
 * are created on that backend, and it is the default backend while a step runs.
 */
export function createMeshgradStep(data: MlpBenchData, engine?: MeshgradEngine, options: StepOptions = {}): TrainStep {
  const batchSize = options.batchSize ?? MLP_BATCH_SIZE;
  const seed = options.seed ?? MLP_SEED;
  const backend = engine?.backend ?? cpu;
  const { model } = withDefaultBackend(backend, () => buildModel(PRESETS.mlp, new Rng(seed)));
  const slots = paramSlots(model);
  const optimizer = createOptimizer('adam', slots, { lr: options.lr ?? MLP_LR });
  const nextIndices = batchStream(data.train.size, batchSize, seed);
  const buffers: BatchBuffers = { x: new Float32Array(0), y: new Int32Array(0) };
  model.train();
  return {
    engine: engine?.id ?? 'meshgrad-cpu',
    description: engine?.description ?? 'meshgrad cpu (TypeScript reference kernels, 1 thread)',
    step(): number {
      return withDefaultBackend(backend, () => {
        const batch = data.train.batch(nextIndices(), buffers);
        // One scope per step, as in trainSingleProcess: every intermediate is recycled when it ends.
        const result = backend.scope(() => {
          const r = computeGradients(model, batch);
          attachGrads(model, slots);
          optimizer.step();
          return r;
        });
        detachGrads(model, slots);
        return result.loss;
      });
    },
    liveTensors: () => null,
    memoryStats: () => engine?.memoryStats() ?? null,
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

/** A model written in tfjs for a step: its loss on a batch and the variables it trains. */
export interface TfjsModel {
  /** The batch's input shape without the batch dimension, as the model takes it ([784] for the MLP). */
  readonly inputShape: readonly number[];
  readonly variables: readonly tf.Variable[];
  /** The mean cross-entropy of the batch x (one-hot labels y). */
  lossOf(x: tf.Tensor, y: tf.Tensor2D): tf.Scalar;
}

/** The MLP in tfjs ops, from meshgrad's seeded initial weights: tf.fused.matMul per layer (matmul + bias + ReLU, what tf.layers.dense uses). */
export function mlpTfjsModel(seed: number, inputSize: number): TfjsModel {
  const layers = initialDenseLayers(seed).map((l, i) => ({
    w: tf.variable(tf.tensor2d(l.weight, [l.inFeatures, l.outFeatures]), true, `mlp/dense${i}/kernel`),
    b: tf.variable(tf.tensor1d(l.bias), true, `mlp/dense${i}/bias`),
  }));
  return {
    inputShape: [inputSize],
    variables: layers.flatMap((l) => [l.w, l.b]),
    lossOf(x: tf.Tensor, y: tf.Tensor2D): tf.Scalar {
      let h: tf.Tensor = x;
      layers.forEach((l, i) => {
        h = tf.fused.matMul({ a: h as tf.Tensor2D, b: l.w, bias: l.b, activation: i < layers.length - 1 ? 'relu' : 'linear' });
      });
      return tf.losses.softmaxCrossEntropy(y, h);
    },
  };
}

/** Builds a tfjs model for the dataset (its seed, and the number of values in one sample). */
export type TfjsModelBuilder = (seed: number, inputSize: number) => TfjsModel;

/**
 * The body of a tfjs step on the active backend: the next batch gathered by the Dataset, uploaded
 * with one-hot labels, and optimizer.minimize (Adam) inside tf.tidy; `run` returns the batch's cost
 * tensor, which the caller reads and disposes.
 */
function tfjsStepBody(data: MlpBenchData, build: TfjsModelBuilder, options: StepOptions): { run(): tf.Scalar; dispose(): void } {
  const batchSize = options.batchSize ?? MLP_BATCH_SIZE;
  const seed = options.seed ?? MLP_SEED;
  const numClasses = data.train.numClasses;
  const model = build(seed, data.train.sampleShape.reduce((a, b) => a * b, 1));
  const varList = [...model.variables];
  // tfjs's Adam defaults to ε = 1e-7 (its float32 backend epsilon); meshgrad's, like PyTorch's, is 1e-8.
  const optimizer = tf.train.adam(options.lr ?? MLP_LR, 0.9, 0.999, 1e-8);
  const nextIndices = batchStream(data.train.size, batchSize, seed);
  const buffers: BatchBuffers = { x: new Float32Array(0), y: new Int32Array(0) };
  return {
    run(): tf.Scalar {
      const batch = data.train.batch(nextIndices(), buffers);
      return tf.tidy(() => {
        const x = tf.tensor(batch.x, [batch.size, ...model.inputShape]);
        const y = tf.oneHot(tf.tensor1d(batch.y, 'int32'), numClasses) as tf.Tensor2D;
        const c = optimizer.minimize(() => model.lossOf(x, y), true, varList);
        if (c === null) throw new Error('internal: optimizer.minimize returned no cost');
        return c;
      });
    },
    dispose(): void {
      optimizer.dispose();
      for (const v of varList) v.dispose();
    },
  };
}

/**
 * The same training step in TensorFlow.js on `backend`, which this makes the active backend. Only
 * one tfjs step should be alive at a time (dispose it before creating the next).
 */
export async function createTfjsStep(data: MlpBenchData, backend: TfjsSyncBackendName, options: StepOptions = {}): Promise<TrainStep> {
  const info = await useTfjsBackend(backend);
  const body = tfjsStepBody(data, mlpTfjsModel, options);
  return {
    engine: backend === 'cpu' ? 'tfjs-cpu' : 'tfjs-wasm',
    description: info.description,
    step(): number {
      const cost = body.run();
      const value = cost.dataSync()[0];
      cost.dispose();
      return value;
    },
    liveTensors: () => tf.memory().numTensors,
    memoryStats: () => null,
    dispose: () => body.dispose(),
  };
}

/**
 * A tfjs training step on any backend, the loss read back with `await data()` (tfjs-webgpu has no
 * synchronous read in Node): `build` gives the model (default: the MLP). Only one tfjs step should
 * be alive at a time.
 */
export async function createTfjsAsyncStep(data: MlpBenchData, backend: TfjsBackendName, options: StepOptions = {}, build: TfjsModelBuilder = mlpTfjsModel): Promise<AsyncTrainStep> {
  const info = await useTfjsBackend(backend);
  const body = tfjsStepBody(data, build, options);
  return {
    engine: `tfjs-${backend}`,
    description: info.description,
    async step(): Promise<number> {
      const cost = body.run();
      try {
        return (await cost.data())[0];
      } finally {
        cost.dispose();
      }
    },
    liveTensors: () => tf.memory().numTensors,
    memoryStats: () => null,
    dispose: () => body.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export interface EngineResult extends TrainingRunStats {
  readonly engine: EngineId;
  /** tfjs: live tensors after the warm-up and after the timed steps (equal: no leak). */
  readonly liveTensors: { readonly before: number; readonly after: number } | null;
  /** meshgrad on wasm: the heap after the warm-up and after the timed steps (no growth: no leak). */
  readonly heap: { readonly before: HeapStats; readonly after: HeapStats; readonly flat: boolean } | null;
  /** tfjs-wasm median / this engine's median: how many times faster than tfjs-wasm (> 1: faster). */
  readonly speedupVsTfjsWasm: number;
  /** The step-0 loss equals the reference engine's (meshgrad cpu) within STEP0_LOSS_TOLERANCE. */
  readonly initialLossMatches: boolean;
  /** max |loss − reference engine's loss| over the timed steps (same batches): drift of float32 rounding. */
  readonly maxLossDifference: number;
}

/** Float32 rounding differs between engines, but not by this much on the very first loss. */
export const STEP0_LOSS_TOLERANCE = 1e-4;

export interface MlpTargetCheck {
  /** tfjs-wasm median / meshgrad wasm 1-thread median. */
  readonly oneThreadVsTfjsWasm: number;
  readonly oneThreadMs: number;
  /** tfjs-wasm median / meshgrad wasm 2-thread median. */
  readonly twoThreadsVsTfjsWasm: number;
  readonly twoThreadsMs: number;
  /** meshgrad wasm 1-thread median / 2-thread median (> 1: the second thread helps). */
  readonly twoThreadScaling: number;
  /** ≥ MLP_TARGETS.oneThreadVsTfjsWasm and ≤ MLP_TARGETS.oneThreadMaxMs. */
  readonly oneThreadMet: boolean;
  /** 2 threads faster than 1. */
  readonly twoThreadsMet: boolean;
}

export interface MlpStepSuiteResult {
  readonly model: string;
  readonly batchSize: number;
  readonly optimizer: string;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly engines: readonly EngineResult[];
  readonly targets: typeof MLP_TARGETS;
  /** Null when a wasm engine or tfjs-wasm was not run. */
  readonly targetCheck: MlpTargetCheck | null;
  /**
   * Every engine's loss finite, going down, and equal to the reference's at step 0; tfjs's
   * live-tensor count and the wasm heap flat. (The speed targets are reported, not checked here.)
   */
  readonly ok: boolean;
}

export interface MlpStepSuiteOptions {
  readonly quick?: boolean;
  readonly warmupSteps?: number;
  readonly timedSteps?: number;
  /** The engines to run, in order (default: MLP_ENGINES). */
  readonly engines?: readonly EngineId[];
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

/** The heap did not grow: neither the bytes in use nor the memory reserved from the runtime. */
export function heapFlat(before: HeapStats, after: HeapStats): boolean {
  return after.bytesInUse <= before.bytesInUse && after.bytesReserved <= before.bytesReserved;
}

type Measured = Omit<EngineResult, 'speedupVsTfjsWasm' | 'initialLossMatches' | 'maxLossDifference'>;

/** A step `measureSteps` can time: synchronous (TrainStep) or awaited (AsyncTrainStep, a GPU engine's). */
export type MeasurableStep = Pick<TrainStep, 'description' | 'liveTensors' | 'memoryStats'> & { step(): number | Promise<number> };

/** One engine's timed steps, with the tfjs live-tensor and wasm heap counts around them. */
export type StepMeasurement = Omit<Measured, 'engine'>;

/**
 * `warmupSteps` untimed steps, then `timedSteps` timed ones; an awaited step's time runs until its
 * loss is back (for a GPU engine: the step's read-back). A synchronous step is not awaited.
 */
export async function measureSteps(trainStep: MeasurableStep, warmupSteps: number, timedSteps: number, batchSize: number): Promise<StepMeasurement> {
  const run = (): number | Promise<number> => trainStep.step();
  let initialLoss = NaN;
  for (let i = 0; i < warmupSteps; i++) {
    const r = run();
    const loss = typeof r === 'number' ? r : await r;
    if (i === 0) initialLoss = loss;
  }
  // Let anything queued (tfjs's async bookkeeping, finalizers) run before the clock starts.
  await new Promise((resolve) => setImmediate(resolve));
  const before = trainStep.liveTensors();
  const heapBefore = trainStep.memoryStats();
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < timedSteps; i++) {
    const t0 = performance.now();
    const r = run();
    const loss = typeof r === 'number' ? r : await r;
    times.push(performance.now() - t0);
    losses.push(loss);
  }
  const after = trainStep.liveTensors();
  const heapAfter = trainStep.memoryStats();
  if (warmupSteps === 0) initialLoss = losses[0] ?? NaN;
  const timing = timingStats(times);
  return {
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
    heap: heapBefore === null || heapAfter === null ? null : { before: heapBefore, after: heapAfter, flat: heapFlat(heapBefore, heapAfter) },
  };
}

async function measure(trainStep: TrainStep, warmupSteps: number, timedSteps: number, batchSize: number): Promise<Measured> {
  return { engine: trainStep.engine, ...(await measureSteps(trainStep, warmupSteps, timedSteps, batchSize)) };
}

async function createStep(data: MlpBenchData, engine: EngineId): Promise<{ step: TrainStep; close(): Promise<void> }> {
  if (engine === 'tfjs-cpu' || engine === 'tfjs-wasm') {
    const step = await createTfjsStep(data, engine === 'tfjs-cpu' ? 'cpu' : 'wasm');
    return { step, close: async () => step.dispose() };
  }
  const opened = await openMeshgradEngine(engine);
  try {
    const step = createMeshgradStep(data, opened);
    return {
      step,
      close: async () => {
        step.dispose();
        await opened.close();
      },
    };
  } catch (err) {
    await opened.close();
    throw err;
  }
}

export async function runMlpStepSuite(options: MlpStepSuiteOptions = {}): Promise<MlpStepSuiteResult> {
  const quick = options.quick ?? false;
  const warmupSteps = options.warmupSteps ?? (quick ? 3 : 10);
  const timedSteps = options.timedSteps ?? (quick ? 5 : 50);
  const log = options.log ?? (() => {});
  const data = loadMlpBenchData();
  const order = options.engines ?? MLP_ENGINES;
  const measured: Measured[] = [];
  for (const engine of order) {
    log(`  ${engine}: ${warmupSteps} warm-up + ${timedSteps} timed steps ...`);
    const { step, close } = await createStep(data, engine);
    try {
      measured.push(await measure(step, warmupSteps, timedSteps, MLP_BATCH_SIZE));
    } finally {
      await close();
    }
  }
  const byId = (id: EngineId): Measured | undefined => measured.find((m) => m.engine === id);
  const reference = byId(REFERENCE_ENGINE) ?? measured[0];
  const tfjsWasm = byId('tfjs-wasm');
  const engines = measured.map(
    (r): EngineResult => ({
      ...r,
      speedupVsTfjsWasm: tfjsWasm ? tfjsWasm.timing.medianMs / r.timing.medianMs : NaN,
      initialLossMatches: Math.abs(r.initialLoss - reference.initialLoss) <= STEP0_LOSS_TOLERANCE,
      maxLossDifference: r.losses.reduce((worst, l, i) => Math.max(worst, Math.abs(l - (reference.losses[i] ?? NaN))), 0),
    }),
  );
  const one = byId('meshgrad-wasm-1t');
  const two = byId('meshgrad-wasm-2t');
  let targetCheck: MlpTargetCheck | null = null;
  if (one && two && tfjsWasm) {
    const oneThreadVsTfjsWasm = tfjsWasm.timing.medianMs / one.timing.medianMs;
    const twoThreadScaling = one.timing.medianMs / two.timing.medianMs;
    targetCheck = {
      oneThreadVsTfjsWasm,
      oneThreadMs: one.timing.medianMs,
      twoThreadsVsTfjsWasm: tfjsWasm.timing.medianMs / two.timing.medianMs,
      twoThreadsMs: two.timing.medianMs,
      twoThreadScaling,
      oneThreadMet: oneThreadVsTfjsWasm >= MLP_TARGETS.oneThreadVsTfjsWasm && one.timing.medianMs <= MLP_TARGETS.oneThreadMaxMs,
      twoThreadsMet: twoThreadScaling > 1,
    };
  }
  const ok = engines.every(
    (e) => e.lossCheck.passed && e.initialLossMatches && (e.liveTensors === null || e.liveTensors.after === e.liveTensors.before) && (e.heap === null || e.heap.flat),
  );
  return {
    model: 'mlp 784-256-128-10 (ReLU)',
    batchSize: MLP_BATCH_SIZE,
    optimizer: `adam lr ${MLP_LR}`,
    warmupSteps,
    timedSteps,
    engines,
    targets: MLP_TARGETS,
    targetCheck,
    ok,
  };
}

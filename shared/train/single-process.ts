/**
 * Single-process training: the reference that distributed runs must reproduce. Each step draws the
 * next batch of a seeded per-epoch permutation, computes gradients, optionally clips them, sets the
 * scheduled learning rate and steps the optimizer. Evaluation on the test split ends each epoch.
 */

import { performance } from 'node:perf_hooks';
import { saveCheckpoint } from '../checkpoint/checkpoint.js';
import { firstSamples, trainValSplit } from '../data/dataset.js';
import { describeDataset, openDataset } from '../data/registry.js';
import { BatchSampler } from '../data/sampler.js';
import { buildModel, contextLength, type ModelSpec } from '../nn/spec.js';
import type { Module } from '../nn/module.js';
import { clipGradNorm } from '../optim/clip.js';
import { createOptimizer, createSchedule, type OptimizerName, type ScheduleName } from '../optim/factory.js';
import { Rng } from '../util/random.js';
import { EarlyStopping } from './early-stopping.js';
import { checkBatchSize, checkModelFitsDataset } from './fit.js';
import { backendOf, computeGradients, evaluateAsync, onHost, recordGradients, settle, type EvalResult, type StepResult } from './classify.js';
import { clipGradNormOnDevice, DeviceMirror } from './device-state.js';
import { DeviceOptimizer } from '../optim/device-optimizer.js';
import { attachGrads, bufferSlots, checkpointParams, detachGrads, paramSlots } from './params.js';

export interface TrainConfig {
  readonly model: ModelSpec;
  /** How the user named the model (`--model`: a preset or a file), for messages; default its name. */
  readonly modelSource?: string;
  readonly dataset: string;
  readonly dataDir?: string;
  /** Passes over the training set; Infinity: as many as maxSteps needs. */
  readonly epochs: number;
  readonly batchSize: number;
  readonly optimizer: OptimizerName;
  readonly lr: number;
  readonly momentum?: number;
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
  readonly schedule: ScheduleName;
  readonly warmupSteps: number;
  readonly clipNorm?: number;
  readonly labelSmoothing: number;
  readonly seed: number;
  readonly maxSteps?: number;
  /** Train on the first N samples of the training split only (quick runs and tests). */
  readonly trainSamples?: number;
  /** Evaluate on the first N samples of the test split only (quick runs and tests; default all). */
  readonly testSamples?: number;
  /** Hold out this fraction of the training split (seeded) for validation each epoch (default 0). */
  readonly valFraction?: number;
  /** Stop when the validation loss has not improved for this many epochs, keeping the best parameters. */
  readonly earlyStoppingPatience?: number;
  readonly save?: string;
}

export interface StepEvent {
  readonly epoch: number;
  readonly step: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly samplesPerSecond: number;
  readonly lr: number;
  /** Distributed runs: where the step's time went. */
  readonly timing?: StepTiming;
}

export interface StepTiming {
  /** From dispatching the batch to the new parameters being sent. */
  readonly stepMs: number;
  /** The longest compute time reported by a worker for this step. */
  readonly slowestComputeMs: number;
  /** Averaging the gradients and stepping the optimizer. */
  readonly updateMs: number;
}

export interface EpochEvent {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  readonly test: EvalResult;
  /** The held-out validation split, when there is one. */
  readonly val?: EvalResult;
  readonly seconds: number;
  /** Resident set size of the process at the end of the epoch. */
  readonly rssBytes?: number;
}

export interface TrainReporter {
  step(event: StepEvent): void;
  epoch(event: EpochEvent): void;
}

export interface TrainSummary {
  readonly testAccuracy: number;
  readonly testLoss: number;
  /** Mean training loss over the last epoch trained (partial if --max-steps cut it). */
  readonly trainLoss: number;
  readonly steps: number;
  readonly samples: number;
  readonly wallSeconds: number;
}

export async function trainSingleProcess(config: TrainConfig, reporter: TrainReporter): Promise<{ summary: TrainSummary; model: Module }> {
  const started = performance.now();
  const datasetOptions = { dataDir: config.dataDir, contextLength: contextLength(config.model) };
  // What can be checked before reading any data is; the rest (a text's vocabulary size, the split's size) right after.
  const description = describeDataset(config.dataset, datasetOptions);
  checkModelFitsDataset(config.model, config.modelSource ?? config.model.name, config.dataset, description);
  checkBatchSize(config);
  const data = openDataset(config.dataset, datasetOptions);
  checkModelFitsDataset(config.model, config.modelSource ?? config.model.name, config.dataset, { ...description, numClasses: data.train.numClasses });
  const pool = firstSamples(data.train, config.trainSamples);
  const testSet = firstSamples(data.test, config.testSamples);
  const valFraction = config.valFraction ?? 0;
  if (config.earlyStoppingPatience !== undefined && !(valFraction > 0)) throw new Error('early stopping needs a validation split: pass --val-fraction as well');
  // A dataset with its own validation split (contiguous text) uses it; others hold out a seeded fraction.
  const { train, val } = valFraction > 0 ? trainValSplit(pool, valFraction, config.seed) : { train: pool, val: data.val ?? null };
  checkBatchSize(config, train.size);
  const stopper = config.earlyStoppingPatience !== undefined ? new EarlyStopping(config.earlyStoppingPatience) : null;
  const rng = new Rng(config.seed);
  const { model } = buildModel(config.model, rng, { numClasses: data.train.numClasses });
  const backend = backendOf(model);
  // A model on a device (WebGPU) trains through host copies of its parameters (shared/train/device-state.ts).
  const mirror = onHost(model.parameters()[0]) ? null : await DeviceMirror.create(model);
  const slots = mirror ? mirror.slots : paramSlots(model);
  // What early stopping keeps of the best epoch: the parameters and the buffers (running statistics).
  const kept = [...slots, ...(mirror ? mirror.bufferSlots : bufferSlots(model))];
  const optimizerOptions = { lr: config.lr, momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay };
  // On a device the update runs there too (shared/optim/device-optimizer.ts): no parameter leaves it.
  const deviceOptimizer = mirror ? new DeviceOptimizer(config.optimizer, model.parameters(), optimizerOptions) : null;
  const optimizer: { lr: number; step(): void } = deviceOptimizer ?? createOptimizer(config.optimizer, slots, { ...optimizerOptions, vectorOps: backend.vectorOps?.() });
  const sampler = new BatchSampler({ size: train.size, batchSize: config.batchSize, seed: config.seed });
  // epochs may be Infinity (--max-steps alone); an empty sampler then still plans 0 steps, not NaN.
  const plannedSteps = sampler.numBatches === 0 ? 0 : Math.min(config.maxSteps ?? Infinity, sampler.numBatches * config.epochs);
  const schedule = createSchedule(config.schedule, { base: config.lr, totalSteps: plannedSteps, warmupSteps: config.warmupSteps || undefined });
  const buffers = { x: new Float32Array(0), y: new Int32Array(0) };

  let step = 0;
  let samples = 0;
  let lastTrainLoss = NaN;
  let test: EvalResult = { loss: NaN, accuracy: NaN, samples: 0 };
  model.train();
  for (let epoch = 0; epoch < config.epochs && step < plannedSteps; epoch++) {
    const epochStart = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let labelsSeen = 0;
    let windowStart = performance.now();
    let windowSamples = 0;
    for (const indices of sampler.epoch(epoch)) {
      if (step >= plannedSteps) break;
      const batch = train.batch(indices, buffers);
      let result: StepResult;
      if (mirror === null) {
        // One scope per step: every intermediate (activations, gradients) is recycled when it ends.
        result = backend.scope(() => {
          const r = computeGradients(model, batch, config.labelSmoothing);
          attachGrads(model, slots);
          if (config.clipNorm !== undefined) clipGradNorm(slots, config.clipNorm);
          optimizer.lr = schedule.lrAt(step);
          optimizer.step();
          return r;
        });
        detachGrads(model, slots);
      } else {
        // The whole step is recorded on the device; only its loss and correct count are read back.
        const figures = backend.scope(() => {
          const f = recordGradients(model, batch, config.labelSmoothing);
          if (config.clipNorm !== undefined) clipGradNormOnDevice(model.parameters(), config.clipNorm);
          optimizer.lr = schedule.lrAt(step);
          optimizer.step();
          return f;
        });
        result = await settle(figures);
        model.zeroGrad();
      }
      step++;
      samples += batch.size;
      lossSum += result.loss * batch.size;
      correct += result.correct;
      labelsSeen += result.labels;
      seen += batch.size;
      windowSamples += batch.size;
      const now = performance.now();
      reporter.step({
        epoch,
        step,
        stepsPerEpoch: sampler.numBatches,
        totalSteps: plannedSteps,
        loss: result.loss,
        samplesPerSecond: (windowSamples * 1000) / Math.max(now - windowStart, 1e-3),
        lr: optimizer.lr,
      });
      if (now - windowStart > 2000) {
        windowStart = now;
        windowSamples = 0;
      }
    }
    lastTrainLoss = lossSum / seen;
    const valResult = val ? await evaluateAsync(model, val) : undefined;
    test = await evaluateAsync(model, testSet);
    if (mirror && stopper) await Promise.all([mirror.pullParams(), mirror.pullBuffers()]);
    reporter.epoch({ epoch, trainLoss: lastTrainLoss, trainAccuracy: correct / labelsSeen, test, val: valResult, seconds: (performance.now() - epochStart) / 1000, rssBytes: process.memoryUsage().rss });
    if (stopper && valResult && stopper.observe(valResult.loss, kept, epoch)) break;
  }

  if (stopper?.restoreBest(kept)) {
    mirror?.pushParams();
    mirror?.pushBuffers();
    // The run ends with the parameters (and buffers) of its best validation epoch; the test figures follow them.
    test = await evaluateAsync(model, testSet);
  }
  if (config.save) {
    if (mirror) await Promise.all([mirror.pullParams(), mirror.pullBuffers()]);
    await saveCheckpoint(config.save, {
      params: mirror ? mirror.checkpointParams(model) : checkpointParams(model),
      meta: { model: config.model, dataset: config.dataset, steps: step, seed: config.seed, numClasses: data.train.numClasses, vocabulary: data.vocabulary?.toJSON() },
    });
  }
  const summary: TrainSummary = {
    testAccuracy: test.accuracy,
    testLoss: test.loss,
    trainLoss: lastTrainLoss,
    steps: step,
    samples,
    wallSeconds: (performance.now() - started) / 1000,
  };
  return { summary, model };
}

/**
 * The single-process training loop over a built model and datasets already split: each step draws
 * the next batch of a seeded per-epoch permutation, computes gradients, optionally clips them,
 * sets the scheduled learning rate and steps the optimizer; each epoch ends with the validation
 * (when given) and test evaluations. `trainSingleProcess` (a model spec and a dataset name) and
 * the library's `fit` (a Module and Dataset objects) both run it.
 */

import { performance } from 'node:perf_hooks';
import type { Dataset } from '../data/dataset.js';
import { BatchSampler } from '../data/sampler.js';
import type { Module } from '../nn/module.js';
import { clipGradNorm } from '../optim/clip.js';
import { createOptimizer, createSchedule, type OptimizerName, type ScheduleName } from '../optim/factory.js';
import { DeviceOptimizer } from '../optim/device-optimizer.js';
import type { EarlyStopping } from './early-stopping.js';
import { objectiveFor, type LossName } from './objective.js';
import { backendOf, computeGradients, evaluateAsync, onHost, recordGradients, settle, type EvalResult, type StepResult } from './classify.js';
import { clipGradNormOnDevice, DeviceMirror } from './device-state.js';
import { attachGrads, bufferSlots, detachGrads, paramSlots } from './params.js';
import type { TrainReporter } from './single-process.js';
import { FRESH_CURSOR, type LoopCheckpoints, type TrainCursor } from './train-checkpoint.js';

/** The optimisation settings the loop reads (TrainConfig has them all). */
export interface LoopSettings {
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
  /** The loss (default: the training set's task's, cross-entropy or mse; shared/train/objective.ts). */
  readonly loss?: LossName;
  /** --loss huber: where the squared error turns linear (default 1). */
  readonly huberDelta?: number;
  readonly seed: number;
  readonly maxSteps?: number;
}

export interface LoopData {
  readonly train: Dataset;
  /** Evaluated at the end of each epoch; null: no test figures (NaN). */
  readonly test: Dataset | null;
  readonly val: Dataset | null;
}

export interface LoopOutcome {
  readonly steps: number;
  readonly samples: number;
  /** Mean training loss over the last epoch trained. */
  readonly trainLoss: number;
  /** The last test evaluation (after restoring the best epoch under early stopping). */
  readonly test: EvalResult;
  /** Non-null when the model lives on a device: its host copies of the parameters and buffers. */
  readonly mirror: DeviceMirror | null;
}

const NO_FIGURES: EvalResult = { loss: NaN, accuracy: NaN, samples: 0 };

/** Trains `model` in place on `data.train`; see the file header. */
export async function runTrainingLoop(model: Module, data: LoopData, config: LoopSettings, reporter: TrainReporter, stopper: EarlyStopping | null = null, checkpoints: LoopCheckpoints | null = null): Promise<LoopOutcome> {
  const { train, val } = data;
  const objective = objectiveFor(train, config);
  const evaluateTest = async (): Promise<EvalResult> => (data.test ? evaluateAsync(model, data.test, undefined, objective) : NO_FIGURES);
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
  // --resume: the checkpoint's state is loaded and the run goes on from its cursor (train-checkpoint.ts).
  const resumed = checkpoints ? await checkpoints.start(model, optimizer, mirror) : null;
  let position: TrainCursor = resumed ?? FRESH_CURSOR;

  let step = position.step;
  let samples = position.samples;
  let lastTrainLoss = position.lastTrainLoss;
  let test: EvalResult = NO_FIGURES;
  let stopped = false;
  model.train();
  for (let epoch = position.epoch; epoch < config.epochs && step < plannedSteps && !stopped; epoch++) {
    const epochStart = performance.now();
    // A resumed epoch goes on from the checkpoint's batch, with its running figures.
    const carried = epoch === position.epoch ? position : FRESH_CURSOR;
    let batchInEpoch = carried.batch;
    let lossSum = carried.epochLossSum;
    let correct = carried.epochCorrect;
    let seen = carried.epochSeen;
    let labelsSeen = carried.epochLabels;
    let windowStart = performance.now();
    let windowSamples = 0;
    for (const indices of sampler.epoch(epoch, batchInEpoch)) {
      if (step >= plannedSteps) break;
      const batch = train.batch(indices, buffers);
      let result: StepResult;
      if (mirror === null) {
        // One scope per step: every intermediate (activations, gradients) is recycled when it ends.
        result = backend.scope(() => {
          const r = computeGradients(model, batch, objective);
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
          const f = recordGradients(model, batch, objective);
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
      batchInEpoch++;
      position = { epoch, batch: batchInEpoch, step, version: step, samples, epochLossSum: lossSum, epochCorrect: correct, epochSeen: seen, epochLabels: labelsSeen, lastTrainLoss };
      if (checkpoints && (await checkpoints.afterStep(position))) {
        // Stopped (a signal, or a failed checkpoint under --checkpoint-failure stop): the epoch is not evaluated.
        stopped = true;
        break;
      }
    }
    if (stopped) break;
    lastTrainLoss = lossSum / seen;
    const valResult = val ? await evaluateAsync(model, val, undefined, objective) : undefined;
    test = await evaluateTest();
    if (mirror && stopper) await Promise.all([mirror.pullParams(), mirror.pullBuffers()]);
    reporter.epoch({ epoch, trainLoss: lastTrainLoss, trainAccuracy: objective.loss === 'cross-entropy' ? correct / labelsSeen : NaN, test, val: valResult, seconds: (performance.now() - epochStart) / 1000, rssBytes: process.memoryUsage().rss });
    if (batchInEpoch >= sampler.numBatches) position = { ...FRESH_CURSOR, epoch: epoch + 1, step, version: step, samples, lastTrainLoss };
    if (stopper && valResult && stopper.observe(valResult.loss, kept, epoch)) break;
  }

  if (!stopped && stopper?.restoreBest(kept)) {
    mirror?.pushParams();
    mirror?.pushBuffers();
    // The run ends with the parameters (and buffers) of its best validation epoch; the test figures follow them.
    test = await evaluateTest();
  }
  // Resumed from the checkpoint of a run that had ended: nothing left to train, the figures are the final parameters'.
  if (resumed !== null && !stopped && test === NO_FIGURES) test = await evaluateTest();
  await checkpoints?.finish(position);
  return { steps: step, samples, trainLoss: lastTrainLoss, test, mirror };
}

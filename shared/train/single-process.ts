/**
 * Single-process training: the reference that distributed runs must reproduce. Each step draws the
 * next batch of a seeded per-epoch permutation, computes gradients, optionally clips them, sets the
 * scheduled learning rate and steps the optimizer. Evaluation on the test split ends each epoch.
 * This file opens the dataset and builds the model from its spec; the loop is in loop.ts.
 */

import { performance } from 'node:perf_hooks';
import { saveCheckpoint } from '../checkpoint/checkpoint.js';
import { firstSamples, trainValSplit } from '../data/dataset.js';
import { describeDataset, openDataset } from '../data/registry.js';
import { buildModel, contextLength, imageSize, type ModelSpec } from '../nn/spec.js';
import type { Module } from '../nn/module.js';
import type { OptimizerName, ScheduleName } from '../optim/factory.js';
import { Rng } from '../util/random.js';
import { EarlyStopping } from './early-stopping.js';
import { checkBatchSize, checkModelFitsDataset } from './fit.js';
import type { EvalResult } from './classify.js';
import { runTrainingLoop } from './loop.js';
import { taskOfLoss, type LossName } from './objective.js';
import { checkpointParams } from './params.js';
import type { LoopCheckpoints } from './train-checkpoint.js';

export interface TrainConfig {
  readonly model: ModelSpec;
  /** How the user named the model (`--model`: a preset or a file), for messages; default its name. */
  readonly modelSource?: string;
  readonly dataset: string;
  readonly dataDir?: string;
  /** csv:/tsv: datasets: the label column's name (--label); default the last column. */
  readonly labelColumn?: string;
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
  /** The loss: cross-entropy (default for class labels), or mse / huber (regression: a csv:'s --label column read as numeric targets). */
  readonly loss?: LossName;
  /** --loss huber: where the squared error turns linear (default 1). */
  readonly huberDelta?: number;
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
  /** Regression runs: the test split's root mean squared error. */
  readonly testRmse?: number;
  /** Mean training loss over the last epoch trained (partial if --max-steps cut it). */
  readonly trainLoss: number;
  readonly steps: number;
  readonly samples: number;
  readonly wallSeconds: number;
}

/** `checkpoints`: --checkpoint-dir and --resume (train-checkpoint.ts's TrainCheckpointer); none: neither. */
export async function trainSingleProcess(config: TrainConfig, reporter: TrainReporter, checkpoints: LoopCheckpoints | null = null): Promise<{ summary: TrainSummary; model: Module }> {
  const started = performance.now();
  const datasetOptions = { dataDir: config.dataDir, contextLength: contextLength(config.model), imageSize: imageSize(config.model), labelColumn: config.labelColumn, task: taskOfLoss(config.loss) };
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
  const { steps: step, samples, trainLoss: lastTrainLoss, test, mirror } = await runTrainingLoop(model, { train, test: testSet, val }, config, reporter, stopper, checkpoints);
  if (config.save) {
    if (mirror) await Promise.all([mirror.pullParams(), mirror.pullBuffers()]);
    await saveCheckpoint(config.save, {
      params: mirror ? mirror.checkpointParams(model) : checkpointParams(model),
      meta: { model: config.model, dataset: config.dataset, steps: step, seed: config.seed, numClasses: data.train.numClasses, ...(data.classNames ? { classNames: [...data.classNames] } : {}), ...(config.loss && config.loss !== 'cross-entropy' ? { loss: config.loss } : {}), vocabulary: data.vocabulary?.toJSON() },
    });
  }
  const summary: TrainSummary = {
    testAccuracy: test.accuracy,
    testLoss: test.loss,
    ...(test.rmse !== undefined ? { testRmse: test.rmse } : {}),
    trainLoss: lastTrainLoss,
    steps: step,
    samples,
    wallSeconds: (performance.now() - started) / 1000,
  };
  return { summary, model };
}

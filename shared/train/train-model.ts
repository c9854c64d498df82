/**
 * `fit`: trains any classification Module (a preset, a spec-built model or the caller's own
 * subclass) on Dataset objects, with the same step code as `meshgrad train` (runTrainingLoop in
 * loop.ts: computeGradients, the optimizers and schedules of shared/optim, evaluateAsync).
 */

import { performance } from 'node:perf_hooks';
import { saveCheckpoint } from '../checkpoint/checkpoint.js';
import type { Dataset } from '../data/dataset.js';
import type { Module } from '../nn/module.js';
import type { OptimizerName, ScheduleName } from '../optim/factory.js';
import { EarlyStopping } from './early-stopping.js';
import type { LossName } from './objective.js';
import { runTrainingLoop } from './loop.js';
import { checkpointParams } from './params.js';
import type { EpochEvent, StepEvent, TrainSummary } from './single-process.js';

export interface FitOptions {
  readonly train: Dataset;
  /** Evaluated after each epoch (without one the test figures are NaN). */
  readonly test?: Dataset;
  /** Evaluated after each epoch; needed by earlyStoppingPatience. */
  readonly val?: Dataset;
  /** Passes over `train` (default 1). */
  readonly epochs?: number;
  /** Default 32; at most train.size. */
  readonly batchSize?: number;
  /** Default 'adam'. */
  readonly optimizer?: OptimizerName;
  /** Default 1e-3. */
  readonly lr?: number;
  /** SGD only. */
  readonly momentum?: number;
  /** SGD only. */
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
  /** Learning-rate schedule (default 'constant'). */
  readonly schedule?: ScheduleName;
  /** Linear warmup steps (default 0). */
  readonly warmupSteps?: number;
  /** Clip the global gradient norm to this. */
  readonly clipNorm?: number;
  /** Default 0. */
  readonly labelSmoothing?: number;
  /** The loss: default cross-entropy, or mse for a regression dataset (task: 'regression'); 'huber' too. */
  readonly loss?: LossName;
  /** loss 'huber': where the squared error turns linear (default 1). */
  readonly huberDelta?: number;
  /** Seeds the batch order (default 0). The model's initial parameters are the caller's. */
  readonly seed?: number;
  /** Stop after this many optimizer steps. */
  readonly maxSteps?: number;
  /** Stop when the validation loss has not improved for this many epochs, keeping the best parameters. */
  readonly earlyStoppingPatience?: number;
  /** Called after every optimizer step. */
  readonly onStep?: (event: StepEvent) => void;
  /** Called after every epoch's evaluations. */
  readonly onEpoch?: (event: EpochEvent) => void;
  /** Write the trained model's parameters and buffers here (a safetensors checkpoint). */
  readonly save?: string;
}

export interface FitResult extends TrainSummary {
  /** Every epoch's figures, in order. */
  readonly history: readonly EpochEvent[];
}

/** Trains `model` in place; see FitOptions for the defaults. */
export async function fit(model: Module, options: FitOptions): Promise<FitResult> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`fit: batchSize must be a positive integer, got ${batchSize}`);
  if (batchSize > options.train.size) throw new RangeError(`fit: batchSize ${batchSize} is larger than the training set (${options.train.size} samples)`);
  const epochs = options.epochs ?? 1;
  if (!(epochs >= 0)) throw new RangeError(`fit: epochs must be >= 0, got ${epochs}`);
  if (options.earlyStoppingPatience !== undefined && options.val === undefined) throw new Error('fit: earlyStoppingPatience needs a val dataset');
  if (model.parameters().length === 0) throw new Error('fit: the model has no parameters (register them with registerParameter or registerModule)');
  const stopper = options.earlyStoppingPatience !== undefined ? new EarlyStopping(options.earlyStoppingPatience) : null;
  const history: EpochEvent[] = [];
  const outcome = await runTrainingLoop(
    model,
    { train: options.train, test: options.test ?? null, val: options.val ?? null },
    {
      epochs,
      batchSize,
      optimizer: options.optimizer ?? 'adam',
      lr: options.lr ?? 1e-3,
      momentum: options.momentum,
      nesterov: options.nesterov,
      weightDecay: options.weightDecay,
      schedule: options.schedule ?? 'constant',
      warmupSteps: options.warmupSteps ?? 0,
      clipNorm: options.clipNorm,
      labelSmoothing: options.labelSmoothing ?? 0,
      loss: options.loss,
      huberDelta: options.huberDelta,
      seed: options.seed ?? 0,
      maxSteps: options.maxSteps,
    },
    {
      step: (event) => options.onStep?.(event),
      epoch: (event) => {
        history.push(event);
        options.onEpoch?.(event);
      },
    },
    stopper,
  );
  const { mirror } = outcome;
  if (options.save) {
    if (mirror) await Promise.all([mirror.pullParams(), mirror.pullBuffers()]);
    await saveCheckpoint(options.save, { params: mirror ? mirror.checkpointParams(model) : checkpointParams(model), meta: { steps: outcome.steps, seed: options.seed ?? 0, numClasses: options.train.numClasses } });
  }
  return {
    testAccuracy: outcome.test.accuracy,
    testLoss: outcome.test.loss,
    ...(outcome.test.rmse !== undefined ? { testRmse: outcome.test.rmse } : {}),
    trainLoss: outcome.trainLoss,
    steps: outcome.steps,
    samples: outcome.samples,
    wallSeconds: (performance.now() - started) / 1000,
    history,
  };
}

/**
 * `meshgrad/train`: training and evaluation. `train(model, { train, test, epochs, ... })` (also
 * `fit`) trains any Module on Dataset objects (classification, or regression with loss 'mse' / 'huber'); `train({ model: 'mlp', dataset:
 * 'fashion-mnist', ... })` is `meshgrad train` from code (a spec or preset and a bundled dataset).
 * Both run the same loop and report through onStep / onEpoch callbacks. evaluate / evaluateAsync
 * score a model; computeGradients is one step's forward, loss and backward for custom loops.
 */

import { Module } from '../shared/nn/module.js';
import { resolveModelOption, type ModelOption } from './model-option.js';
import { fit, type FitOptions, type FitResult } from '../shared/train/train-model.js';
import { trainSingleProcess, type EpochEvent, type StepEvent, type TrainConfig, type TrainSummary } from '../shared/train/single-process.js';

export { fit, type FitOptions, type FitResult } from '../shared/train/train-model.js';
export { trainSingleProcess, type EpochEvent, type StepEvent, type StepTiming, type TrainConfig, type TrainReporter, type TrainSummary } from '../shared/train/single-process.js';
export { evaluate, evaluateAsync, computeGradients, batchInput, type EvalResult, type StepResult } from '../shared/train/classify.js';
export { runTrainingLoop, type LoopData, type LoopSettings, type LoopOutcome } from '../shared/train/loop.js';
export { saveModel, loadModel } from '../shared/train/model-file.js';
export { LOSS_NAMES, objectiveFor, type LossName, type Objective } from '../shared/train/objective.js';

/** `meshgrad train`'s settings from code: everything but model and dataset has the CLI's default. */
export interface TrainRunOptions extends Partial<Omit<TrainConfig, 'model' | 'dataset'>> {
  /** A preset name (mlp, cnn, ...), a spec file's path, a parsed spec, or a model written in code (defineModel). */
  readonly model: ModelOption;
  /** A bundled dataset's name (openDataset): fashion-mnist, moby-dick, ... */
  readonly dataset: string;
  readonly onStep?: (event: StepEvent) => void;
  readonly onEpoch?: (event: EpochEvent) => void;
}

export interface TrainRunResult {
  readonly summary: TrainSummary;
  readonly model: Module;
}

/** Trains the caller's model on Dataset objects (as `fit`). */
export function train(model: Module, options: FitOptions): Promise<FitResult>;
/** Builds a model from a spec or preset and trains it on a bundled dataset (as `meshgrad train`). */
export function train(options: TrainRunOptions): Promise<TrainRunResult>;
export function train(modelOrOptions: Module | TrainRunOptions, options?: FitOptions): Promise<FitResult | TrainRunResult> {
  if (modelOrOptions instanceof Module) {
    if (options === undefined) throw new TypeError('train(model, options): the options (at least { train: dataset }) are missing');
    return fit(modelOrOptions, options);
  }
  const { onStep, onEpoch, model, ...rest } = modelOrOptions;
  const { spec, source } = resolveModelOption(model);
  const config: TrainConfig = {
    epochs: rest.maxSteps !== undefined && rest.epochs === undefined ? Infinity : 1,
    batchSize: spec.defaults?.batchSize ?? 128,
    optimizer: spec.defaults?.optimizer ?? 'adam',
    lr: spec.defaults?.lr ?? 1e-3,
    weightDecay: spec.defaults?.weightDecay,
    clipNorm: spec.defaults?.clipNorm,
    schedule: 'constant',
    warmupSteps: 0,
    labelSmoothing: 0,
    seed: 1,
    ...rest,
    model: spec,
    modelSource: rest.modelSource ?? source,
  };
  return trainSingleProcess(config, { step: (e) => onStep?.(e), epoch: (e) => onEpoch?.(e) });
}

/** `meshgrad train`: single-process training from the command line. */

import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkDatasetName, knownDatasets } from '../shared/data/registry.js';
import { USER_DATASET_FORMS } from '../shared/data/user-datasets.js';
import { presetNames } from '../shared/nn/presets.js';
import { resolveModelSpec } from '../shared/nn/resolve.js';
import { loadedModelSpec, loadModelFile } from '../shared/nn/user-model.js';
import { OPTIMIZER_NAMES, SCHEDULE_NAMES, type OptimizerName, type ScheduleName } from '../shared/optim/factory.js';
import { trainSingleProcess, type TrainConfig } from '../shared/train/single-process.js';
import { LOSS_NAMES, type LossName } from '../shared/train/objective.js';
import { fraction, integer, nonNegativeFloat, nonNegativeInt, positiveFloat, positiveInt } from './flags.js';
import { createReporter, type Output } from './progress.js';
import { addBackendOptions, configureBackend, type BackendFlags } from './backend-options.js';
import { preflight } from './preflight.js';
import { RunRecorder, runConfigOf } from './run-record.js';

export interface TrainFlags extends BackendFlags {
  model: string;
  /** A module file defining the model in code (defineModel), instead of --model. */
  module?: string;
  dataset: string;
  dataDir?: string;
  /** csv:/tsv: datasets: the label column (--label). */
  label?: string;
  /** Unset when not given: 1, or unbounded when --max-steps is given (see resolveEpochs). */
  epochs?: number;
  batchSize?: number;
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  schedule: ScheduleName;
  warmupSteps: number;
  clipNorm?: number;
  labelSmoothing: number;
  loss?: LossName;
  huberDelta: number;
  seed: number;
  maxSteps?: number;
  trainSamples?: number;
  testSamples?: number;
  valFraction: number;
  earlyStoppingPatience?: number;
  save?: string;
  summaryJson?: string;
  metricsCsv?: string;
}

function env(option: Option, name: string): Option {
  return option.env(`MESHGRAD_${name}`);
}

/** The training flags shared by `train` and (later) the coordinator. */
export function addTrainingOptions(cmd: Command): Command {
  return cmd
    .addOption(env(new Option('--model <name|file>', `model preset (${presetNames().join(', ')}) or a JSON model spec file`).default('mlp'), 'MODEL'))
    .addOption(env(new Option('--module <file>', 'a JavaScript module file that default-exports defineModel({ name, input, create }): a model written in code, instead of --model (every worker is given the same file; docs/training.md)').conflicts('model'), 'MODULE'))
    .addOption(env(new Option('--dataset <name>', `a bundled dataset (${knownDatasets().join(', ')}) or your own files: ${USER_DATASET_FORMS.join(', ')} (docs/training.md)`).argParser(datasetName).default('fashion-mnist'), 'DATASET'))
    .addOption(env(new Option('--data-dir <dir>', "read the dataset files from this directory instead of the bundled copy (a user dataset's relative path is taken from it)"), 'DATA_DIR'))
    .addOption(env(new Option('--label <column>', 'csv:/tsv: datasets: the column holding the class labels, or the numeric target with --loss mse/huber (default: the last column)'), 'LABEL'))
    .addOption(env(new Option('--epochs <n>', 'passes over the training set (default: 1; with --max-steps and no --epochs, as many as the steps need; with both, whichever ends first)').argParser(positiveInt), 'EPOCHS'))
    .addOption(env(new Option('--batch-size <n>', "global batch size (default: the model's, else 128)").argParser(positiveInt), 'BATCH_SIZE'))
    .addOption(env(new Option('--optimizer <name>', "optimizer (default: the model's, else adam)").choices(OPTIMIZER_NAMES), 'OPTIMIZER'))
    .addOption(env(new Option('--lr <rate>', "learning rate (default: the model's, else 1e-3)").argParser(positiveFloat), 'LR'))
    .addOption(env(new Option('--momentum <m>', 'SGD momentum').argParser(nonNegativeFloat), 'MOMENTUM'))
    .addOption(env(new Option('--nesterov', 'SGD with Nesterov momentum'), 'NESTEROV'))
    .addOption(env(new Option('--weight-decay <wd>', 'weight decay (L2 for sgd/adam, decoupled for adamw)').argParser(nonNegativeFloat), 'WEIGHT_DECAY'))
    .addOption(env(new Option('--schedule <name>', 'learning-rate schedule').choices(SCHEDULE_NAMES).default('constant'), 'SCHEDULE'))
    .addOption(env(new Option('--warmup-steps <n>', 'linear learning-rate warm-up steps').argParser(nonNegativeInt).default(0), 'WARMUP_STEPS'))
    .addOption(env(new Option('--clip-norm <norm>', 'clip gradients to this global L2 norm').argParser(positiveFloat), 'CLIP_NORM'))
    .addOption(env(new Option('--label-smoothing <eps>', 'label smoothing of the cross-entropy target').argParser(fraction).default(0), 'LABEL_SMOOTHING'))
    .addOption(env(new Option('--loss <name>', "the loss: cross-entropy over class labels, or mse / huber for regression (a csv: dataset's --label column is then read as numeric targets; figures: loss and RMSE)").choices(LOSS_NAMES).default('cross-entropy'), 'LOSS'))
    .addOption(env(new Option('--huber-delta <d>', '--loss huber: where the squared error turns linear (torch.nn.HuberLoss delta)').argParser(positiveFloat).default(1), 'HUBER_DELTA'))
    .addOption(env(new Option('--seed <n>', 'seed of every random choice').argParser(integer).default(1), 'SEED'))
    .addOption(env(new Option('--max-steps <n>', 'stop after this many optimizer steps; without --epochs, run as many epochs as that takes (with --epochs, whichever ends first)').argParser(positiveInt), 'MAX_STEPS'))
    .addOption(env(new Option('--train-samples <n>', 'train on the first n training samples only').argParser(positiveInt), 'TRAIN_SAMPLES'))
    .addOption(env(new Option('--test-samples <n>', 'evaluate on the first n test samples only (quick checks; default: all)').argParser(positiveInt), 'TEST_SAMPLES'))
    .addOption(env(new Option('--val-fraction <f>', 'hold out this fraction of the training split for validation each epoch').argParser(fraction).default(0), 'VAL_FRACTION'))
    .addOption(env(new Option('--early-stopping-patience <epochs>', 'stop when validation loss has not improved for this many epochs; keep the best parameters (needs --val-fraction)').argParser(positiveInt), 'EARLY_STOPPING_PATIENCE'))
    .addOption(env(new Option('--save <file>', 'write the trained model here (parameters and buffers, safetensors)'), 'SAVE'))
    .addOption(env(new Option('--summary-json <file>', 'write a JSON summary of the run here (the final figures, the per-epoch history and the configuration; `meshgrad report` draws it)'), 'SUMMARY_JSON'))
    .addOption(env(new Option('--metrics-csv <file>', 'write one row per epoch here as the run goes (epoch, step, train/val/test loss and accuracy, lr, seconds; flushed each epoch); a .jsonl name writes JSON lines'), 'METRICS_CSV'));
}

function datasetName(value: string): string {
  try {
    return checkDatasetName(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * --epochs, else unbounded when --max-steps is given (it alone runs that many steps), else 1.
 * With both, the run ends at whichever comes first.
 */
export function resolveEpochs(flags: Pick<TrainFlags, 'epochs' | 'maxSteps'>): number {
  if (flags.epochs !== undefined) return flags.epochs;
  return flags.maxSteps !== undefined ? Infinity : 1;
}

/** Loads --module's file (and registers its model) when given: the first thing a command does, since later checks build the model. */
export async function loadModuleFlag(flags: Pick<TrainFlags, 'module'>): Promise<void> {
  if (flags.module !== undefined) await loadModelFile(flags.module);
}

export function trainConfigFrom(flags: TrainFlags): TrainConfig {
  const model = flags.module !== undefined ? loadedModelSpec(flags.module) : resolveModelSpec(flags.model);
  return {
    model,
    modelSource: flags.module ?? flags.model,
    dataset: flags.dataset,
    dataDir: flags.dataDir,
    labelColumn: flags.label,
    epochs: resolveEpochs(flags),
    batchSize: flags.batchSize ?? model.defaults?.batchSize ?? 128,
    optimizer: flags.optimizer ?? model.defaults?.optimizer ?? 'adam',
    lr: flags.lr ?? model.defaults?.lr ?? 1e-3,
    momentum: flags.momentum,
    nesterov: flags.nesterov,
    weightDecay: flags.weightDecay ?? model.defaults?.weightDecay,
    schedule: flags.schedule,
    warmupSteps: flags.warmupSteps,
    clipNorm: flags.clipNorm ?? model.defaults?.clipNorm,
    labelSmoothing: flags.labelSmoothing,
    loss: flags.loss,
    ...(flags.loss === 'huber' ? { huberDelta: flags.huberDelta } : {}),
    seed: flags.seed,
    maxSteps: flags.maxSteps,
    trainSamples: flags.trainSamples,
    testSamples: flags.testSamples,
    valFraction: flags.valFraction,
    earlyStoppingPatience: flags.earlyStoppingPatience,
    save: flags.save,
  };
}

export function trainCommand(out: Output, interactive: boolean): Command {
  const cmd = new Command('train').description('train a model in this process');
  addBackendOptions(addTrainingOptions(cmd));
  cmd.action(async (flags: TrainFlags) => {
    await loadModuleFlag(flags);
    const config = trainConfigFrom(flags);
    // Before any data is read: the model against the dataset, the batch, and every output path.
    preflight(config, { save: flags.save, summaryJson: flags.summaryJson, metricsCsv: flags.metricsCsv });
    const active = await configureBackend(flags);
    let recorder: RunRecorder;
    try {
      recorder = new RunRecorder(runConfigOf('train', config, { name: flags.backend, description: active.description }), { metricsFile: flags.metricsCsv });
    } catch (err) {
      await active.close();
      throw err;
    }
    out.write(`training ${config.model.name} on ${config.dataset}: ${Number.isFinite(config.epochs) ? `${config.epochs} epoch(s)` : `${config.maxSteps} steps`}, batch ${config.batchSize}, ${config.optimizer} lr ${config.lr}, seed ${config.seed}, backend ${active.description}`);
    const { summary } = await trainSingleProcess(config, recorder.wrap(createReporter(out, interactive))).finally(() => Promise.all([active.close(), recorder.close()]));
    out.write(`${summary.testRmse !== undefined ? `test RMSE ${summary.testRmse.toPrecision(5)}` : `test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%`}, test loss ${summary.testLoss.toFixed(4)}, ${summary.steps} steps in ${summary.wallSeconds.toFixed(1)} s`);
    out.write(`peak resident memory ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
    if (config.save) out.write(`saved parameters to ${config.save}`);
    if (flags.metricsCsv) out.write(`wrote ${recorder.history.length} epoch(s) of metrics to ${flags.metricsCsv}`);
    if (flags.summaryJson) {
      // The existing figures first, then the configuration and the per-epoch history.
      await writeFile(flags.summaryJson, `${JSON.stringify({ ...summary, ...recorder.record() }, null, 2)}\n`);
      out.write(`wrote summary to ${flags.summaryJson}`);
    }
  });
  return cmd;
}

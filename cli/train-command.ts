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
import { checkResume, preflight, PreflightError } from './preflight.js';
import { latestPath, resolveResume, trainIdentity, TrainCheckpointer, type CheckpointFailurePolicy } from '../shared/train/train-checkpoint.js';
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

/** `--resume` alone (or MESHGRAD_RESUME=true / 1 / always) must resume; `auto` resumes when it can; anything else names a checkpoint. */
export type TrainResume = true | 'always' | 'auto' | { readonly path: string };

function trainResume(value: string): TrainResume {
  if (value === 'auto') return 'auto';
  if (value === 'always' || value === 'true' || value === '1') return 'always';
  if (value === '') throw new InvalidArgumentError('give a checkpoint file or directory, auto, or nothing after --resume');
  return { path: value };
}

/** `train`'s checkpoint flags: the coordinator's names, environment variables and meanings (coordinator/command.ts). */
export interface TrainCheckpointFlags {
  checkpointDir?: string;
  checkpointEvery?: number;
  checkpointFailure: CheckpointFailurePolicy;
  resume?: TrainResume;
}

function addCheckpointOptions(cmd: Command): Command {
  return cmd
    .addOption(env(new Option('--checkpoint-dir <dir>', 'write checkpoints here (latest.safetensors: parameters, buffers, optimizer state, data cursor and random streams, written atomically)'), 'CHECKPOINT_DIR'))
    .addOption(env(new Option('--checkpoint-every <steps>', 'checkpoint every n steps (and always at the end; needs --checkpoint-dir)').argParser(positiveInt), 'CHECKPOINT_EVERY'))
    .addOption(env(new Option('--checkpoint-failure <policy>', "when a periodic checkpoint cannot be written (a full disk; a warning, the previous checkpoint kept): 'continue' training, or 'stop' the run as SIGTERM does (--save and --summary-json written) and exit 1").choices(['continue', 'stop']).default('continue'), 'CHECKPOINT_FAILURE'))
    .addOption(env(new Option('--resume [when]', "continue a run exactly where its checkpoint ended: alone, from --checkpoint-dir's latest.safetensors; 'auto': only if there is one, else start a new run (for restarted containers); or a checkpoint file (or a directory holding latest.safetensors). With --checkpoint-dir, SIGINT/SIGTERM stop at the next step with a checkpoint").argParser(trainResume), 'RESUME'));
}

/**
 * The checkpointer of a train run (null without --checkpoint-dir and --resume), after the checks
 * that need no data: --checkpoint-every without a directory, a device backend, and the checkpoint
 * to resume (it must exist and match this run). Throws a PreflightError naming the flag and value.
 */
function trainCheckpointer(flags: TrainCheckpointFlags & BackendFlags, config: TrainConfig, out: Output): TrainCheckpointer | null {
  if (flags.checkpointEvery !== undefined && flags.checkpointDir === undefined) throw new PreflightError(`--checkpoint-every ${flags.checkpointEvery}: needs --checkpoint-dir, where the checkpoints go`);
  if (flags.checkpointDir === undefined && flags.resume === undefined) return null;
  if (flags.backend === 'webgpu') throw new PreflightError(`--backend webgpu: checkpoints (--checkpoint-dir, --resume) need a host backend, wasm or cpu: the device optimizer's state is not checkpointed`);
  const resume = flags.resume === undefined ? null : flags.resume === true ? 'always' : flags.resume;
  let resumeFrom: string | null = null;
  if (resume !== null) {
    try {
      resumeFrom = resolveResume(resume, flags.checkpointDir);
    } catch (err) {
      throw new PreflightError((err as Error).message);
    }
    if (resumeFrom !== null) checkResume(typeof resume === 'object' ? resume.path : resume, resumeFrom, config);
  }
  const log = { info: (line: string) => out.write(line), warn: (line: string) => process.stderr.write(`meshgrad: warning: ${line}\n`) };
  return new TrainCheckpointer({ dir: flags.checkpointDir, every: flags.checkpointEvery, failure: flags.checkpointFailure, resumeFrom }, trainIdentity(config), log);
}

/** With --checkpoint-dir, the first SIGINT/SIGTERM stops at the next step with a checkpoint, as the coordinator does; a second one forces out. */
function stopOnSignals(checkpointer: TrainCheckpointer | null, dir: string | undefined): () => void {
  if (checkpointer === null || dir === undefined) return () => {};
  let signals = 0;
  const stop = (): void => {
    if (++signals > 1) process.exit(130);
    checkpointer.requestStop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
}

export function trainCommand(out: Output, interactive: boolean): Command {
  const cmd = new Command('train').description('train a model in this process');
  addCheckpointOptions(addBackendOptions(addTrainingOptions(cmd)));
  cmd.action(async (flags: TrainFlags & TrainCheckpointFlags) => {
    await loadModuleFlag(flags);
    const config = trainConfigFrom(flags);
    // Before any data is read: the checkpoint to resume, the model against the dataset, the batch, and every output path.
    const checkpointer = trainCheckpointer(flags, config, out);
    preflight(config, { save: flags.save, summaryJson: flags.summaryJson, metricsCsv: flags.metricsCsv, checkpointDir: flags.checkpointDir });
    const active = await configureBackend(flags);
    let recorder: RunRecorder;
    try {
      // A run resumed from --checkpoint-dir continues the history it keeps there (history.json).
      const continuing = flags.checkpointDir !== undefined && checkpointer?.resumesFrom === latestPath(flags.checkpointDir);
      recorder = new RunRecorder(runConfigOf('train', config, { name: flags.backend, description: active.description }), { metricsFile: flags.metricsCsv, checkpointDir: flags.checkpointDir, resume: continuing });
    } catch (err) {
      await active.close();
      throw err;
    }
    // The stop on signals is in place before the first line, so a signal after it always stops with a checkpoint.
    const ckpt = checkpointer;
    const unhook = stopOnSignals(ckpt, flags.checkpointDir);
    out.write(`training ${config.model.name} on ${config.dataset}: ${Number.isFinite(config.epochs) ? `${config.epochs} epoch(s)` : `${config.maxSteps} steps`}, batch ${config.batchSize}, ${config.optimizer} lr ${config.lr}, seed ${config.seed}, backend ${active.description}`);
    const { summary } = await trainSingleProcess(config, recorder.wrap(createReporter(out, interactive)), ckpt).finally(() => Promise.all([active.close(), recorder.close(), unhook()]));
    if (ckpt?.interrupted) out.write(`stopped after ${summary.steps} steps${ckpt.written ? `; checkpoint ${ckpt.written}` : ''}`);
    else out.write(`${summary.testRmse !== undefined ? `test RMSE ${summary.testRmse.toPrecision(5)}` : `test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%`}, test loss ${summary.testLoss.toFixed(4)}, ${summary.steps} steps in ${summary.wallSeconds.toFixed(1)} s`);
    if (ckpt?.written && !ckpt.interrupted) out.write(`checkpoint: ${ckpt.written}`);
    out.write(`peak resident memory ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
    if (config.save) out.write(`saved parameters to ${config.save}`);
    if (flags.metricsCsv) out.write(`wrote ${recorder.history.length} epoch(s) of metrics to ${flags.metricsCsv}`);
    if (flags.summaryJson) {
      // The existing figures first, then the configuration and the per-epoch history.
      await writeFile(flags.summaryJson, `${JSON.stringify({ ...summary, ...recorder.record() }, null, 2)}\n`);
      out.write(`wrote summary to ${flags.summaryJson}`);
    }
    // A checkpoint that could not be written (the final one, or a periodic one under --checkpoint-failure stop): exit 1, after everything else was written.
    if (ckpt?.failure) throw new Error(ckpt.failure);
  });
  return cmd;
}

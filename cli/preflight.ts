/**
 * Checks a command makes before it loads data or trains: that the model fits the dataset and the
 * batch the training split, and that every file or directory the run will write can be written.
 * Each failure is one line naming the flag and the value, so an hour of training is not lost to
 * a typo in --save.
 */

import { closeSync, mkdirSync, openSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { describeDataset } from '../shared/data/registry.js';
import { taskOfLoss } from '../shared/train/objective.js';
import { contextLength, imageSize } from '../shared/nn/spec.js';
import { checkBatchSize, checkModelFitsDataset } from '../shared/train/fit.js';
import type { TrainConfig } from '../shared/train/single-process.js';
import { checkResumeCheckpoint, trainIdentity } from '../shared/train/train-checkpoint.js';

export class PreflightError extends Error {}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : String(e.message ?? err);
}

/**
 * Makes `dir` exist as a directory (as the write would, with its parents) and proves it writable
 * by creating and removing a file in it. `what` names the flag and value in the message.
 */
function ensureWritableDirectory(what: string, dir: string): void {
  const abs = resolve(dir);
  // The nearest existing ancestor must be a directory: a regular file there cannot hold the path.
  for (let p = abs; ; p = dirname(p)) {
    const st = statOrNull(p);
    if (st) {
      if (!st.isDirectory()) throw new PreflightError(`${what}: cannot write there: ${p} is a file, not a directory`);
      break;
    }
    if (dirname(p) === p) break;
  }
  try {
    mkdirSync(abs, { recursive: true });
  } catch (err) {
    throw new PreflightError(`${what}: cannot create the directory ${abs} (${reason(err)})`);
  }
  const probe = join(abs, `.meshgrad-write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (err) {
    throw new PreflightError(`${what}: the directory ${abs} is not writable (${reason(err)})`);
  }
  try {
    unlinkSync(probe);
  } catch {
    // Written but not removable: the write itself will work; nothing to report.
  }
}

/** A file the run writes (--save and --summary-json at the end, --metrics-csv as it goes): its directory must be writable and the path not a directory. */
export function checkWritableFile(flag: string, path: string): void {
  const what = `${flag} ${path}`;
  const st = statOrNull(path);
  if (st?.isDirectory()) throw new PreflightError(`${what}: is a directory; give a file name`);
  ensureWritableDirectory(what, dirname(resolve(path)));
}

/** A directory the run writes into (--checkpoint-dir). */
export function checkWritableDirectory(flag: string, dir: string): void {
  ensureWritableDirectory(`${flag} ${dir}`, dir);
}

export interface Outputs {
  readonly save?: string;
  readonly summaryJson?: string;
  readonly metricsCsv?: string;
  readonly checkpointDir?: string;
}

/** Every output path the flags name is writable (directories created as the writes would). */
export function checkOutputs(outputs: Outputs): void {
  if (outputs.checkpointDir !== undefined) checkWritableDirectory('--checkpoint-dir', outputs.checkpointDir);
  if (outputs.save !== undefined) checkWritableFile('--save', outputs.save);
  if (outputs.summaryJson !== undefined) checkWritableFile('--summary-json', outputs.summaryJson);
  if (outputs.metricsCsv !== undefined) checkWritableFile('--metrics-csv', outputs.metricsCsv);
}

/**
 * The checks of a training run that need no data: the model against what the dataset declares,
 * the batch against --train-samples, then the outputs (last: they create directories).
 */
export function preflight(config: TrainConfig, outputs: Outputs): void {
  const description = describeDataset(config.dataset, { dataDir: config.dataDir, contextLength: contextLength(config.model), imageSize: imageSize(config.model), labelColumn: config.labelColumn, task: taskOfLoss(config.loss) });
  checkModelFitsDataset(config.model, config.modelSource ?? config.model.name, config.dataset, description);
  checkBatchSize(config);
  checkOutputs(outputs);
}

/**
 * `train --resume`: `path` (the checkpoint the flag's `value` names, train-checkpoint.ts's
 * resolveResume) is a complete checkpoint of `train` with this run's model, dataset, seed, batch
 * size, optimizer, --train-samples and --val-fraction. Run before checkOutputs, so a refused resume
 * writes nothing.
 */
export function checkResume(value: string, path: string, config: TrainConfig): void {
  try {
    checkResumeCheckpoint(`--resume ${value}${value === path ? '' : ` (${path})`}`, path, trainIdentity(config));
  } catch (err) {
    throw new PreflightError((err as Error).message);
  }
}

/**
 * Checkpoints of a single-process run (`meshgrad train --checkpoint-dir DIR --checkpoint-every N
 * --resume`), in the coordinator's file format (coordinator/run-checkpoint.ts): DIR/latest.safetensors,
 * written atomically, holding the model's parameters and buffers, the optimizer's state (Adam's
 * moments and step count) and, in the metadata, the data cursor (epoch, batch within the epoch's
 * seeded permutation, step, the epoch's running loss and accuracy sums) and the run identity (model
 * spec, dataset, seed, batch size, optimizer, --train-samples) that a resumed run must share. What
 * only a single process has goes under `meta.train`: the states of the model's random streams
 * (dropout masks are drawn from them step after step), the epoch's label count, the last epoch's
 * mean training loss, and --val-fraction (it chooses the training split).
 *
 * A run resumed from a checkpoint continues exactly where the one that wrote it was: its parameters
 * after the last step, its figures and its test loss are those of a run that was never interrupted,
 * as long as the flags that shape the run are the same. The learning rate is the schedule's at the
 * step; a cosine schedule's length comes from --epochs / --max-steps, so a resumed run on another
 * plan follows another curve (the constant schedule and its warm-up do not depend on it).
 */

import { randomUUID } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { sweepTempFiles } from '../checkpoint/atomic.js';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.js';
import { decodeSafetensors } from '../checkpoint/safetensors.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/types.js';
import { Rng, type RngState } from '../util/random.js';
import { firstJsonDifference, LATEST, latestPath, type RunCursor, type RunIdentity } from '../../coordinator/run-checkpoint.js';
import type { CheckpointFailurePolicy } from '../../coordinator/config.js';
import type { DeviceMirror } from './device-state.js';
import { checkpointParams, loadModelState } from './params.js';

export { LATEST, latestPath };
export type { CheckpointFailurePolicy };

/** Where a training loop is: the coordinator's cursor, plus what the single-process loop also keeps. */
export interface TrainCursor extends RunCursor {
  /** Labels scored so far in `epoch` (the accuracy's denominator: tokens for a language model). */
  readonly epochLabels: number;
  /** Mean training loss of the last epoch that ended (NaN before the first). */
  readonly lastTrainLoss: number;
}

export const FRESH_CURSOR: TrainCursor = { epoch: 0, batch: 0, step: 0, version: 0, samples: 0, epochLossSum: 0, epochCorrect: 0, epochSeen: 0, epochLabels: 0, lastTrainLoss: NaN };

/**
 * What runTrainingLoop (loop.ts) asks of its checkpoints: the state to start from, a chance to
 * write one after each step, and the end-of-run checkpoint.
 */
export interface LoopCheckpoints {
  /** Before the first step: loads the --resume checkpoint into `model` and `optimizer`; the cursor to start from (null: a new run). */
  start(model: Module, optimizer: object, mirror: DeviceMirror | null): Promise<TrainCursor | null>;
  /** After each step (`cursor` counts it): writes the periodic checkpoint when one is due; true: stop the run now. */
  afterStep(cursor: TrainCursor): Promise<boolean>;
  /** The run has ended (or stopped): the final checkpoint. */
  finish(cursor: TrainCursor): Promise<void>;
}

/** The settings of a single-process run that a resumed run must share (the coordinator's, and --val-fraction). */
export interface TrainIdentity extends Omit<RunIdentity, 'runId'> {
  readonly valFraction: number;
}

/** The parts of TrainConfig (single-process.ts) the identity is made of. */
export interface IdentitySource {
  readonly model: unknown;
  readonly dataset: string;
  readonly seed: number;
  readonly batchSize: number;
  readonly optimizer: string;
  readonly trainSamples?: number;
  readonly valFraction?: number;
}

export function trainIdentity(config: IdentitySource): TrainIdentity {
  return { model: config.model, dataset: config.dataset, seed: config.seed, batchSize: config.batchSize, optimizer: config.optimizer, trainSamples: config.trainSamples ?? null, valFraction: config.valFraction ?? 0 };
}

/** What `meta.train` holds (see the header). Floats that JSON cannot hold (NaN, ±Infinity) are strings. */
interface TrainExtras {
  readonly randomStreams: RngState[];
  readonly epochLabels: number;
  readonly lastTrainLoss: number | string;
  readonly epochLossSum: number | string;
  readonly valFraction: number;
}

interface TrainCheckpointMeta {
  readonly cursor: RunCursor;
  readonly identity: RunIdentity;
  readonly train: TrainExtras;
}

const asJsonNumber = (v: number): number | string => (Number.isFinite(v) ? v : String(v));
const fromJsonNumber = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The checkpoint `--resume` names: `auto` is the newest (the only, atomically written)
 * DIR/latest.safetensors of --checkpoint-dir, or none (a new run); `always` (`--resume` alone) is
 * that file, which must exist; any other value is a checkpoint file, or a directory holding
 * latest.safetensors. Throws, naming the value, when the checkpoint is not there.
 */
export function resolveResume(resume: 'always' | 'auto' | { readonly path: string }, checkpointDir: string | undefined): string | null {
  if (resume === 'auto') {
    if (checkpointDir === undefined) return null;
    const path = latestPath(checkpointDir);
    return isFile(path) ? path : null;
  }
  if (resume === 'always') {
    if (checkpointDir === undefined) throw new Error('--resume needs --checkpoint-dir (or the checkpoint to resume: --resume PATH, or --resume auto)');
    const path = latestPath(checkpointDir);
    if (!isFile(path)) throw new Error(`--resume: no checkpoint at ${path} (--resume auto starts a new run when there is none)`);
    return path;
  }
  const st = statOrNull(resume.path);
  if (st === null) throw new Error(`--resume ${resume.path}: no such file or directory`);
  if (!st.isDirectory()) return resume.path;
  const path = join(resume.path, LATEST);
  if (!isFile(path)) throw new Error(`--resume ${resume.path}: the directory holds no ${LATEST}`);
  return path;
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function isFile(path: string): boolean {
  return statOrNull(path)?.isFile() === true;
}

/** The flag that sets each identity setting, for messages. */
const IDENTITY_FLAGS = { dataset: '--dataset', seed: '--seed', batchSize: '--batch-size', optimizer: '--optimizer', trainSamples: '--train-samples' } as const;

/** The training-checkpoint metadata of a checkpoint's `meshgrad.meta`, checked against this run; errors start with `what`. */
function checkedMeta(what: string, meta: Record<string, unknown>, expected: TrainIdentity): TrainCheckpointMeta {
  const { cursor, identity, train } = meta;
  if (!isObject(cursor) || !isObject(identity)) throw new Error(`${what}: not a training checkpoint (no cursor or run identity in its metadata; --save writes the model alone: resume from --checkpoint-dir's ${LATEST})`);
  if (!isObject(train)) throw new Error(`${what}: written by \`meshgrad coordinator\` (or \`local\`), not \`train\`: it has no random-stream states to continue from`);
  for (const key of ['model', 'dataset', 'seed', 'batchSize', 'optimizer', 'trainSamples'] as const) {
    if (JSON.stringify(identity[key]) === JSON.stringify(expected[key])) continue;
    // A model spec is long: name its first difference rather than print both.
    if (key === 'model') throw new Error(`${what}: written with a different model spec: ${firstJsonDifference(identity.model, expected.model) ?? 'its JSON differs'} (checkpoint vs this run)`);
    const shown = (v: unknown): string => (v === null || v === undefined ? 'none' : typeof v === 'string' ? v : JSON.stringify(v));
    throw new Error(`${what}: written with ${IDENTITY_FLAGS[key]} ${shown(identity[key])}, this run has ${shown(expected[key])}`);
  }
  if (train.valFraction !== expected.valFraction) throw new Error(`${what}: written with --val-fraction ${JSON.stringify(train.valFraction)}, this run has ${expected.valFraction}`);
  return { cursor: cursor as unknown as RunCursor, identity: identity as unknown as RunIdentity, train: train as unknown as TrainExtras };
}

/**
 * The checks of a resume that need no data (cli/preflight.ts): the file is a complete checkpoint
 * written by `train` with this run's settings. Throws, the message starting with `what`.
 */
export function checkResumeCheckpoint(what: string, path: string, expected: TrainIdentity): void {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`${what}: cannot read ${path} (${(err as Error).message})`);
  }
  let metaJson: string | undefined;
  try {
    metaJson = decodeSafetensors(bytes, path).metadata['meshgrad.meta'];
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  let meta: unknown = {};
  try {
    meta = metaJson === undefined ? {} : JSON.parse(metaJson);
  } catch {
    // Not JSON: reported as a checkpoint without a cursor below.
  }
  checkedMeta(what, isObject(meta) ? meta : {}, expected);
}

/**
 * The generators a model's forward draws from (dropout masks), in reseedRandomStreams' order:
 * Module keeps them (registerRandomStream) without a way to read or set their state, so this reads
 * its list; a change there fails loudly here rather than resuming with other masks.
 */
function randomStreams(model: Module): Rng[] {
  return model.namedModules().flatMap(([name, m]) => {
    const streams = (m as unknown as { ownStreams?: unknown }).ownStreams;
    if (!Array.isArray(streams) || !streams.every((r) => r instanceof Rng)) throw new Error(`internal: cannot read the random streams of module '${name}' for a checkpoint`);
    return streams as Rng[];
  });
}

/** Puts `rng` in `state` (the generators are held by the layers, so the object must stay). */
function setRngState(rng: Rng, state: RngState): void {
  Object.assign(rng, Rng.fromState(state));
  if (JSON.stringify(rng.state()) !== JSON.stringify(Rng.fromState(state).state())) throw new Error('internal: could not restore a random stream from a checkpoint');
}

function isHostOptimizer(o: object): o is Optimizer {
  return typeof (o as Partial<Optimizer>).stateDict === 'function' && typeof (o as Partial<Optimizer>).loadStateDict === 'function';
}

export interface TrainCheckpointSettings {
  /** --checkpoint-dir: where latest.safetensors is written (none: no checkpoints are written). */
  readonly dir?: string;
  /** --checkpoint-every: steps between periodic checkpoints (none: only the final one). */
  readonly every?: number;
  /** --checkpoint-failure (default 'continue'). */
  readonly failure?: CheckpointFailurePolicy;
  /** The checkpoint to continue from (resolveResume), or none: a new run. */
  readonly resumeFrom?: string | null;
}

export interface CheckpointLog {
  info(line: string): void;
  warn(line: string): void;
}

/** The LoopCheckpoints of `meshgrad train` (see the header). */
export class TrainCheckpointer implements LoopCheckpoints {
  private model: Module | null = null;
  private optimizer: Optimizer | null = null;
  private runId: string = randomUUID();
  private stopRequested = false;
  private lastCheckpointStep: number | null = null;
  /** Set when the run stopped before its end: a signal (requestStop), or a failed checkpoint under --checkpoint-failure stop. */
  interrupted = false;
  /** Checkpoints that could not be written (periodic and final). */
  failures = 0;
  /** Why the run must exit non-zero (the final checkpoint, or a periodic one under 'stop', failed); null: all went well. */
  failure: string | null = null;
  /** The final checkpoint written (null: none). */
  written: string | null = null;

  constructor(
    private readonly settings: TrainCheckpointSettings,
    private readonly identity: TrainIdentity,
    private readonly log: CheckpointLog,
  ) {}

  /** The checkpoint the run continues from (null: a new run). */
  get resumesFrom(): string | null {
    return this.settings.resumeFrom ?? null;
  }

  /** SIGINT/SIGTERM: stop after the step in flight; the final checkpoint then holds it. */
  requestStop(): void {
    this.stopRequested = true;
  }

  async start(model: Module, optimizer: object, mirror: DeviceMirror | null): Promise<TrainCursor | null> {
    if (mirror !== null || !isHostOptimizer(optimizer)) throw new Error('--checkpoint-dir / --resume: the model is on a device (webgpu), whose optimizer state is not checkpointed; train with --backend wasm or cpu');
    this.model = model;
    this.optimizer = optimizer;
    const dir = this.settings.dir;
    if (dir !== undefined) {
      const { removed } = await sweepTempFiles(dir).catch(() => ({ removed: [] as string[] }));
      if (removed.length > 0) this.log.info(`removed ${removed.length} left-over temporary file(s) from ${dir}`);
    }
    const path = this.settings.resumeFrom ?? null;
    if (path === null) return null;
    const ckpt = await loadCheckpoint(path);
    const meta = checkedMeta(`--resume ${path}`, ckpt.meta, this.identity);
    loadModelState(model, ckpt, path);
    if (!ckpt.optimizer) throw new Error(`--resume ${path}: has no optimizer state`);
    try {
      optimizer.loadStateDict(ckpt.optimizer);
    } catch (err) {
      throw new Error(`--resume ${path}: ${(err as Error).message}`);
    }
    const streams = randomStreams(model);
    const states = meta.train.randomStreams;
    if (!Array.isArray(states) || states.length !== streams.length) throw new Error(`--resume ${path}: holds ${Array.isArray(states) ? states.length : 'no'} random stream state(s), the model has ${streams.length}`);
    streams.forEach((rng, i) => setRngState(rng, states[i]));
    this.runId = meta.identity.runId;
    if (dir !== undefined && path === latestPath(dir)) this.lastCheckpointStep = meta.cursor.step;
    this.log.info(`resumed from ${path} at step ${meta.cursor.step} (epoch ${meta.cursor.epoch + 1}, batch ${meta.cursor.batch})`);
    return {
      ...meta.cursor,
      epochLossSum: fromJsonNumber(meta.train.epochLossSum),
      epochLabels: meta.train.epochLabels,
      lastTrainLoss: fromJsonNumber(meta.train.lastTrainLoss),
    };
  }

  async afterStep(cursor: TrainCursor): Promise<boolean> {
    // A host step never waits on I/O: yield to the event loop, so that a signal's handler (requestStop) runs between steps.
    if (this.settings.dir !== undefined) await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.stopRequested) {
      this.interrupted = true;
      return true;
    }
    const every = this.settings.every;
    if (this.settings.dir === undefined || every === undefined || cursor.step % every !== 0) return false;
    const failure = await this.write(cursor, 'periodic');
    if (failure !== null && this.settings.failure === 'stop') {
      this.failure = failure;
      this.interrupted = true;
      return true;
    }
    return false;
  }

  async finish(cursor: TrainCursor): Promise<void> {
    if (this.settings.dir === undefined) return;
    const failure = await this.write(cursor, 'final');
    if (failure === null) this.written = latestPath(this.settings.dir);
    else this.failure ??= failure;
  }

  /** Writes DIR/latest.safetensors; a failure (a full disk) is reported and returned, the previous checkpoint kept. */
  private async write(cursor: TrainCursor, kind: 'periodic' | 'final'): Promise<string | null> {
    const model = this.model;
    const optimizer = this.optimizer;
    if (model === null || optimizer === null) throw new Error('internal: a checkpoint before the run started');
    const path = latestPath(this.settings.dir!);
    const { epochLabels, lastTrainLoss, ...run } = cursor;
    const train: TrainExtras = {
      randomStreams: randomStreams(model).map((r) => r.state()),
      epochLabels,
      lastTrainLoss: asJsonNumber(lastTrainLoss),
      epochLossSum: asJsonNumber(run.epochLossSum),
      valFraction: this.identity.valFraction,
    };
    const { valFraction: _, ...identity } = this.identity;
    try {
      await saveCheckpoint(path, {
        params: checkpointParams(model),
        optimizer: optimizer.stateDict(),
        meta: { cursor: { ...run, epochLossSum: Number.isFinite(run.epochLossSum) ? run.epochLossSum : null }, identity: { runId: this.runId, ...identity }, train },
      });
    } catch (err) {
      this.failures++;
      const cause = err instanceof Error ? err.message : String(err);
      const previous = this.lastCheckpointStep === null ? 'there is no earlier checkpoint' : `the previous checkpoint (step ${this.lastCheckpointStep}) is kept`;
      const failure = `checkpoint at step ${cursor.step} failed: ${cause}; ${previous}`;
      if (kind === 'final') this.log.warn(`final ${failure}`);
      else this.log.warn(`${failure}; ${this.settings.failure === 'stop' ? 'stopping the run (--checkpoint-failure stop)' : 'training goes on (--checkpoint-failure continue)'}`);
      return failure;
    }
    this.lastCheckpointStep = cursor.step;
    return null;
  }
}

/**
 * What a run leaves behind to be looked at afterwards (issue 15): the per-epoch history and the
 * run's configuration, added to the --summary-json file (beside its existing top-level fields),
 * streamed to --metrics-csv as the epochs end (CSV, or JSON lines for a `.jsonl` name), and, with
 * --checkpoint-dir, kept in `history.json` beside latest.safetensors so that `meshgrad report` can
 * read a checkpoint directory and a resumed run continues the history it had.
 *
 * The history is taken from the reporter's events (`train` and the coordinator report epochs the
 * same way): a RunRecorder wraps the TrainReporter, remembers the last step's number and learning
 * rate, and turns each epoch event into an EpochRecord. Nothing in the training loops changes.
 */

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/checkpoint/atomic.js';
import type { ModelSpec } from '../shared/nn/spec.js';
import type { EpochEvent, StepEvent, TrainConfig, TrainReporter } from '../shared/train/single-process.js';
import type { CoordinatorConfig } from '../coordinator/config.js';

/** One epoch's figures; `epoch` counts from 1 (as the progress lines do). Absent figures are null. */
export interface EpochRecord {
  readonly epoch: number;
  /** Optimizer steps taken when the epoch ended (over the whole run). */
  readonly step: number;
  readonly trainLoss: number | null;
  readonly trainAccuracy: number | null;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly testLoss: number | null;
  readonly testAccuracy: number | null;
  /** Regression runs (--loss mse or huber): the splits' root mean squared error; null otherwise. */
  readonly valRmse: number | null;
  readonly testRmse: number | null;
  /** The learning rate of the epoch's last step. */
  readonly lr: number | null;
  /** Wall seconds of the epoch, its evaluation included. */
  readonly seconds: number | null;
}

/** The columns of --metrics-csv, in order, and the EpochRecord field each one holds. */
export const METRICS_COLUMNS: readonly (readonly [string, keyof EpochRecord])[] = [
  ['epoch', 'epoch'],
  ['step', 'step'],
  ['train_loss', 'trainLoss'],
  ['train_accuracy', 'trainAccuracy'],
  ['val_loss', 'valLoss'],
  ['val_accuracy', 'valAccuracy'],
  ['test_loss', 'testLoss'],
  ['test_accuracy', 'testAccuracy'],
  ['val_rmse', 'valRmse'],
  ['test_rmse', 'testRmse'],
  ['lr', 'lr'],
  ['seconds', 'seconds'],
];

/** The run's configuration as the summary JSON and the report show it. */
export interface RunConfigRecord {
  readonly command: 'train' | 'coordinator' | 'local';
  readonly model: ModelSpec;
  /** How --model named it (a preset or a file). */
  readonly modelSource: string;
  readonly dataset: string;
  readonly dataDir: string | null;
  readonly optimizer: {
    readonly name: string;
    readonly lr: number;
    readonly momentum: number | null;
    readonly nesterov: boolean;
    readonly weightDecay: number | null;
    readonly schedule: string;
    readonly warmupSteps: number;
    readonly clipNorm: number | null;
    readonly labelSmoothing: number;
  };
  /** The loss minimised: cross-entropy, mse or huber (with its delta). */
  readonly loss: string;
  readonly huberDelta: number | null;
  readonly batchSize: number;
  readonly seed: number;
  /** null: unbounded (--max-steps alone). */
  readonly epochs: number | null;
  readonly maxSteps: number | null;
  readonly trainSamples: number | null;
  readonly testSamples: number | null;
  readonly valFraction: number;
  readonly earlyStoppingPatience: number | null;
  /** --backend as given, and what it became (e.g. "wasm (simd, 2 threads)"). */
  readonly backend: string;
  readonly backendDescription: string | null;
  /** coordinator and local runs only. */
  readonly distributed?: {
    /** `local`: the worker processes started; `coordinator`: null (workers join by themselves). */
    readonly workers: number | null;
    readonly minWorkers: number;
    readonly balance: string;
    readonly syncEvery: number;
    readonly outerLr: number | null;
    readonly outerMomentum: number | null;
    readonly compress: string;
    readonly bucketMb: number | null;
    readonly checkpointDir: string | null;
    readonly checkpointEvery: number | null;
    readonly resumed: boolean;
  };
}

/** What the summary JSON gains: its configuration and its history. */
export interface RunRecord {
  readonly config: RunConfigRecord;
  readonly history: readonly EpochRecord[];
}

/** The history file a run with --checkpoint-dir keeps beside latest.safetensors. */
export const HISTORY_FILE = 'history.json';

export function historyPath(checkpointDir: string): string {
  return join(checkpointDir, HISTORY_FILE);
}

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
const finiteOrNull = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : v);

export function runConfigOf(command: RunConfigRecord['command'], config: TrainConfig, backend: { name: string; description?: string }): RunConfigRecord {
  return {
    command,
    model: config.model,
    modelSource: config.modelSource ?? config.model.name,
    dataset: config.dataset,
    dataDir: orNull(config.dataDir),
    optimizer: {
      name: config.optimizer,
      lr: config.lr,
      momentum: orNull(config.momentum),
      nesterov: config.nesterov === true,
      weightDecay: orNull(config.weightDecay),
      schedule: config.schedule,
      warmupSteps: config.warmupSteps,
      clipNorm: orNull(config.clipNorm),
      labelSmoothing: config.labelSmoothing,
    },
    loss: config.loss ?? 'cross-entropy',
    huberDelta: config.loss === 'huber' ? (config.huberDelta ?? 1) : null,
    batchSize: config.batchSize,
    seed: config.seed,
    epochs: Number.isFinite(config.epochs) ? config.epochs : null,
    maxSteps: orNull(config.maxSteps),
    trainSamples: orNull(config.trainSamples),
    testSamples: orNull(config.testSamples),
    valFraction: config.valFraction ?? 0,
    earlyStoppingPatience: orNull(config.earlyStoppingPatience),
    backend: backend.name,
    backendDescription: orNull(backend.description),
  };
}

/** A coordinator's or local's configuration: the training settings plus workers and balance. */
export function distributedConfigOf(command: 'coordinator' | 'local', config: CoordinatorConfig, backend: { name: string; description?: string }, workers: number | null): RunConfigRecord {
  return {
    ...runConfigOf(command, config, backend),
    distributed: {
      workers,
      minWorkers: config.minWorkers,
      balance: config.balance,
      syncEvery: config.syncEvery ?? 1,
      outerLr: orNull(config.outerLr),
      outerMomentum: orNull(config.outerMomentum),
      compress: config.compress ?? 'none',
      bucketMb: config.bucketBytes === undefined ? null : config.bucketBytes / (1024 * 1024),
      checkpointDir: orNull(config.checkpointDir),
      checkpointEvery: orNull(config.checkpointEvery),
      resumed: config.resume,
    },
  };
}

/** The record of one epoch event, given the last step's number and learning rate. */
export function epochRecordOf(e: EpochEvent, step: number, lr: number | null): EpochRecord {
  return {
    epoch: e.epoch + 1,
    step,
    trainLoss: finiteOrNull(e.trainLoss),
    trainAccuracy: finiteOrNull(e.trainAccuracy),
    valLoss: finiteOrNull(e.val?.loss),
    valAccuracy: finiteOrNull(e.val?.accuracy),
    testLoss: finiteOrNull(e.test.loss),
    testAccuracy: finiteOrNull(e.test.accuracy),
    valRmse: finiteOrNull(e.val?.rmse),
    testRmse: finiteOrNull(e.test.rmse),
    lr: finiteOrNull(lr ?? undefined),
    seconds: finiteOrNull(e.seconds),
  };
}

/** A CSV field: numbers as JavaScript writes them (full precision), null as an empty field. */
function csvField(v: number | null): string {
  return v === null ? '' : String(v);
}

export function csvHeader(): string {
  return `${METRICS_COLUMNS.map(([name]) => name).join(',')}\n`;
}

export function csvRow(r: EpochRecord): string {
  return `${METRICS_COLUMNS.map(([, key]) => csvField(r[key])).join(',')}\n`;
}

/** A JSON line of --metrics-csv FILE.jsonl: the CSV's column names as keys. */
export function jsonLine(r: EpochRecord): string {
  return `${JSON.stringify(Object.fromEntries(METRICS_COLUMNS.map(([name, key]) => [name, r[key]])))}\n`;
}

/** `.jsonl` writes JSON lines; any other name CSV. */
export function metricsFormat(path: string): 'csv' | 'jsonl' {
  return path.toLowerCase().endsWith('.jsonl') ? 'jsonl' : 'csv';
}

/** Reads a history.json a run kept in its checkpoint directory; null when there is none. */
export function readHistoryFile(path: string): RunRecord | null {
  if (!existsSync(path)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const v = value as Partial<RunRecord> | null;
  if (v === null || typeof v !== 'object' || !Array.isArray(v.history) || typeof v.config !== 'object' || v.config === null) {
    throw new Error(`${path}: not a meshgrad run history (no 'history' array and 'config' object)`);
  }
  return v as RunRecord;
}

export interface RecorderOptions {
  /** --metrics-csv: the file the epochs are streamed to. */
  readonly metricsFile?: string;
  /** --checkpoint-dir: history.json is kept there. */
  readonly checkpointDir?: string;
  /** A resumed run continues the history its checkpoint directory holds. */
  readonly resume?: boolean;
}

/**
 * Collects a run's epochs from its reporter's events and writes them where the flags ask. Open it
 * after the preflight checks (they prove the paths writable) and before training: the metrics file
 * is created with its header then. Each epoch's row is written and fsynced before the next epoch
 * starts, so a killed run keeps every epoch it finished.
 */
export class RunRecorder {
  private readonly epochs: EpochRecord[] = [];
  private fd: number | null = null;
  private readonly format: 'csv' | 'jsonl';
  private lastStep = 0;
  private lastLr: number | null = null;
  /** history.json writes, in order (each one atomic). */
  private pending: Promise<void> = Promise.resolve();
  private writeError: unknown = null;

  constructor(readonly config: RunConfigRecord, private readonly options: RecorderOptions = {}) {
    this.format = metricsFormat(options.metricsFile ?? '');
    if (options.checkpointDir !== undefined && options.resume === true) {
      const kept = readHistoryFile(historyPath(options.checkpointDir));
      if (kept) this.epochs.push(...kept.history);
      const last = this.epochs.at(-1);
      if (last) this.lastStep = last.step;
    } else if (options.checkpointDir !== undefined) {
      // A new run in a used directory: an earlier run's history must not pass for this one's.
      rmSync(historyPath(options.checkpointDir), { force: true });
    }
    if (options.metricsFile !== undefined) {
      try {
        this.fd = openSync(options.metricsFile, 'w');
      } catch (err) {
        throw new Error(`--metrics-csv ${options.metricsFile}: cannot open it for writing (${(err as Error).message})`);
      }
      if (this.format === 'csv') this.write(csvHeader());
      for (const r of this.epochs) this.write(this.line(r));
      this.flush();
    }
  }

  get history(): readonly EpochRecord[] {
    return this.epochs;
  }

  /** What the summary JSON gains. */
  record(): RunRecord {
    return { config: this.config, history: [...this.epochs] };
  }

  /** `inner`, with every epoch also recorded (before `inner` sees it). */
  wrap(inner: TrainReporter): TrainReporter {
    return {
      step: (e: StepEvent) => {
        this.lastStep = e.step;
        this.lastLr = e.lr;
        inner.step(e);
      },
      epoch: (e: EpochEvent) => {
        this.addEpoch(epochRecordOf(e, this.lastStep, this.lastLr));
        inner.epoch(e);
      },
    };
  }

  addEpoch(r: EpochRecord): void {
    // A resumed run repeats the epoch its checkpoint was in: its new figures replace the old ones.
    while (this.epochs.length > 0 && this.epochs[this.epochs.length - 1].epoch >= r.epoch) this.epochs.pop();
    this.epochs.push(r);
    if (this.fd !== null) {
      this.write(this.line(r));
      this.flush();
    }
    if (this.options.checkpointDir !== undefined) {
      const path = historyPath(this.options.checkpointDir);
      const bytes = new TextEncoder().encode(`${JSON.stringify(this.record(), null, 2)}\n`);
      this.pending = this.pending.then(() => writeFileAtomic(path, bytes)).catch((err: unknown) => {
        this.writeError ??= err;
      });
    }
  }

  /** Waits for the history file, closes the metrics file; throws the first write error, naming the file. */
  async close(): Promise<void> {
    await this.pending;
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    // Thrown once: a second close (a `finally` after the first) does not repeat it over another error.
    const err = this.writeError;
    this.writeError = null;
    if (err !== null) throw err instanceof Error ? err : new Error(String(err));
  }

  private line(r: EpochRecord): string {
    return this.format === 'csv' ? csvRow(r) : jsonLine(r);
  }

  private write(text: string): void {
    if (this.fd === null) return;
    try {
      writeSync(this.fd, text);
    } catch (err) {
      throw new Error(`--metrics-csv ${this.options.metricsFile}: write failed (${(err as Error).message})`);
    }
  }

  private flush(): void {
    if (this.fd === null) return;
    try {
      fsyncSync(this.fd);
    } catch {
      // A file system without fsync (some pipes, /dev/stdout): the write itself went through.
    }
  }
}

/**
 * `meshgrad/distributed`: data-parallel training from code. `startCoordinator` listens for workers
 * and returns the Coordinator (`await c.run()` trains and resolves with the summary; `c.url` is
 * what workers connect to; `c.requestStop()`, `c.close()`); `runWorker` joins a coordinator and
 * computes gradients until the run ends. Models are specs, presets, or written in code with
 * `defineModel` (each worker loads the same file: `module`), and every worker builds the same
 * one; datasets are bundled ones by name (or sent by the coordinator: sendSamples).
 */

import { Coordinator, type CoordinatorSummary } from '../coordinator/coordinator.js';
import type { CoordinatorConfig } from '../coordinator/config.js';
import { resolveModelOption, type ModelOption } from './model-option.js';
import type { EpochEvent, StepEvent } from '../shared/train/single-process.js';
import { silentLogger, type Logger } from '../shared/util/log.js';
import { MeshWorker, type WorkerConfig, type WorkerOutcome } from '../worker/worker.js';

export { Coordinator, type CoordinatorSummary } from '../coordinator/coordinator.js';
export type { BalanceMode, CheckpointFailurePolicy, CoordinatorConfig } from '../coordinator/config.js';
export { MeshWorker, type WorkerConfig, type WorkerOutcome } from '../worker/worker.js';
export type { CompressionMode } from '../shared/protocol/wire-compressed.js';
export { silentLogger, type Logger, type LogFields } from '../shared/util/log.js';

/** A coordinator's settings: model, dataset and token are required; the rest default as the CLI's flags do. */
export interface StartCoordinatorOptions extends Partial<Omit<CoordinatorConfig, 'model' | 'dataset' | 'token'>> {
  /** A preset name (mlp, cnn, ...), a spec file's path, a parsed spec, or a model written in code (defineModel). */
  readonly model: ModelOption;
  /** A bundled dataset's name: fashion-mnist, moby-dick, ... */
  readonly dataset: string;
  /** The shared secret workers must present. */
  readonly token: string;
  readonly onStep?: (event: StepEvent) => void;
  readonly onEpoch?: (event: EpochEvent) => void;
  /** Where the coordinator's log lines go (default: nowhere). */
  readonly logger?: Logger;
}

/** Builds the run and starts listening (port 0 by default: any free port, see `.url`). */
export async function startCoordinator(options: StartCoordinatorOptions): Promise<Coordinator> {
  const { onStep, onEpoch, logger, model, ...rest } = options;
  const { spec, source } = resolveModelOption(model);
  const config: CoordinatorConfig = {
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
    host: '127.0.0.1',
    port: 0,
    minWorkers: 1,
    stepTimeoutMs: 30_000,
    heartbeatMs: 5_000,
    resume: false,
    sendSamples: false,
    balance: 'throughput',
    ...rest,
    model: spec,
    modelSource: rest.modelSource ?? source,
  };
  return Coordinator.start(config, { step: (e) => onStep?.(e), epoch: (e) => onEpoch?.(e) }, logger ?? silentLogger);
}

/** A worker's settings: the coordinator's URL and token are required; the rest default as the CLI's flags do. */
export interface RunWorkerOptions extends Partial<Omit<WorkerConfig, 'url' | 'token'>> {
  /** ws://host:port, e.g. a started coordinator's `.url`. */
  readonly url: string;
  readonly token: string;
  /** Where the worker's log lines go (default: nowhere). */
  readonly logger?: Logger;
}

/** A worker with the given settings, not yet running: `await w.run()`; `w.stop()` leaves the run. */
export function createWorker(options: RunWorkerOptions): MeshWorker {
  const { logger, ...rest } = options;
  const config: WorkerConfig = { localData: true, backoffInitialMs: 250, backoffMaxMs: 10_000, maxPayload: 1024 * 1024 * 1024, ...rest };
  return new MeshWorker(config, logger ?? silentLogger);
}

/** Joins the coordinator at `options.url` and works until the run ends; resolves with how it ended. */
export function runWorker(options: RunWorkerOptions): Promise<WorkerOutcome> {
  return createWorker(options).run();
}

/** A coordinator and `workers` in-process workers (threads of this process), run to the end. */
export async function trainLocal(options: StartCoordinatorOptions & { readonly workers?: number; readonly workerOptions?: Partial<RunWorkerOptions> }): Promise<CoordinatorSummary> {
  const { workers = 2, workerOptions = {}, ...coordinatorOptions } = options;
  const coordinator = await startCoordinator({ minWorkers: workers, ...coordinatorOptions });
  const started = Array.from({ length: workers }, (_, i) => createWorker({ name: `worker-${i}`, threads: 1, ...workerOptions, url: coordinator.url, token: options.token }));
  const outcomes = started.map((w) => w.run());
  try {
    return await coordinator.run();
  } finally {
    for (const w of started) w.stop();
    await Promise.allSettled(outcomes);
    await coordinator.close();
  }
}

/**
 * The coordinator: owns the authoritative parameters, the optimizer and the data cursor, and runs
 * synchronous data-parallel SGD over whatever workers are connected. Each step it cuts the next
 * global batch (the same seeded order as single-process training) into shards, one per active
 * worker, waits for every shard's gradient — redoing the shards of workers that fail — averages
 * them weighted by sample count, steps the optimizer once and sends the new parameters to all.
 */

import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { sweepTempFiles } from '../shared/checkpoint/atomic.js';
import { saveCheckpoint } from '../shared/checkpoint/checkpoint.js';
import { firstSamples, trainValSplit, SubsetDataset, type Dataset } from '../shared/data/dataset.js';
import { datasetFingerprint, type DatasetFingerprint } from '../shared/data/fingerprint.js';
import { openDataset } from '../shared/data/registry.js';
import { BatchSampler, epochPermutation } from '../shared/data/sampler.js';
import type { Module } from '../shared/nn/module.js';
import { buildModel, contextLength, imageSize } from '../shared/nn/spec.js';
import { moduleJoinProblem } from './model-check.js';
import type { CharVocabulary } from '../shared/data/text.js';
import { clipGradNorm, gradNorm } from '../shared/optim/clip.js';
import { createOptimizer, createSchedule } from '../shared/optim/factory.js';
import type { LrSchedule } from '../shared/optim/schedule.js';
import type { Optimizer, ParamSlot } from '../shared/optim/types.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { PROTOCOL_VERSION, type AssignMessage, type GradBucketMessage, type GradientsMessage, type JoinMessage, type Message, type WelcomeMessage } from '../shared/protocol/messages.js';
import { isCompressionMode, type CompressionMode } from '../shared/protocol/wire-compressed.js';
import { toWire, type WireTensor } from '../shared/protocol/wire-tensor.js';
import { checkBatchSize } from '../shared/train/fit.js';
import { backendOf, evaluateUnlessAbandoned, type EvalResult } from '../shared/train/classify.js';
import { EarlyStopping } from '../shared/train/early-stopping.js';
import { objectiveFor, taskOfLoss, type Objective } from '../shared/train/objective.js';
import type { VectorOps } from '../shared/optim/vector-ops.js';
import { bufferSlots, checkpointParams, paramSlots } from '../shared/train/params.js';
import type { TrainReporter, TrainSummary } from '../shared/train/single-process.js';
import { deferred, type Deferred } from '../shared/util/deferred.js';
import type { Logger } from '../shared/util/log.js';
import { Rng } from '../shared/util/random.js';
import { averageBuffers, sumInto } from './aggregate.js';
import type { CoordinatorConfig } from './config.js';
import { createCoordinatorMetrics, type CoordinatorMetrics, type WorkerFailureKind } from './metrics.js';
import { decodeContribution, decodeGradients, type ParamInfo } from './contribution.js';
import { RoundBuckets } from './buckets.js';
import { bucketRange, planBuckets } from '../shared/protocol/buckets.js';
import { ParamView } from './downlink.js';
import { latestPath, loadRunCheckpoint, saveRunCheckpoint, type RunCursor, type RunIdentity } from './run-checkpoint.js';
import { StepRound, type Shard } from './step-round.js';
import { Transport, type Connection } from './transport.js';
import { MAX_CONSECUTIVE_REJECTS, WorkerLink, type WorkerShare } from './worker-link.js';

export interface CoordinatorSummary extends TrainSummary {
  /** Workers active at the end of the run. */
  readonly workers: number;
  /** Workers that joined over the whole run. */
  readonly workersJoined: number;
  /** Every worker that joined, in joining order, with the shards and samples it computed. */
  readonly workerShares: readonly WorkerShare[];
  readonly interrupted: boolean;
  /** The checkpoint written at the end (null without --checkpoint-dir, or when it could not be written). */
  readonly checkpoint: string | null;
  /** Checkpoints this process could not write (periodic and final). */
  readonly checkpointFailures: number;
  /**
   * Why the run did not end as asked (the CLI exits 1 with it once --save and the summary are
   * written): the final checkpoint could not be written, or a periodic one with
   * --checkpoint-failure stop. Null when all went well.
   */
  readonly failure: string | null;
}

/**
 * The outer optimizer's defaults (--outer-lr, --outer-momentum) for H = --sync-every: DiLoCo's
 * 0.7 with Nesterov momentum 0.9 from H = 16 on; plain averaging of the workers' parameters (lr 1,
 * no momentum) below. Measured on the cnn preset, 400 steps, 2 workers (docs/training.md): at H = 4
 * momentum 0.9 ended 4 points below plain averaging, at H = 16 1.3 points above it.
 */
export function defaultOuterOptimizer(syncEvery: number): { lr: number; momentum: number } {
  return syncEvery >= 16 ? { lr: 0.7, momentum: 0.9 } : { lr: 1, momentum: 0 };
}

/** Gradient bucket size by default (--bucket-mb 0.25). */
export const DEFAULT_BUCKET_BYTES = 256 * 1024;

/** How long a stop waits for the step in flight by default (--stop-timeout). */
export const DEFAULT_STOP_TIMEOUT_MS = 5000;

/**
 * A step is late for a worker once that worker has held its shard for STRAGGLER_FACTOR times the
 * median of the last STRAGGLER_WINDOW step durations, and at least STRAGGLER_FLOOR_MS; before any
 * step has been timed (the first one carries the workers' warm-up), STRAGGLER_FIRST_MS.
 */
export const STRAGGLER_FACTOR = 3;
export const STRAGGLER_FLOOR_MS = 1000;
export const STRAGGLER_FIRST_MS = 10_000;
const STRAGGLER_WINDOW = 21;

/**
 * A shard is copied to an idle worker (a speculative re-run) once it has been held for
 * SPECULATION_FACTOR times the median time recent shards took from assignment to result, and at
 * least SPECULATION_FLOOR_MS; with fewer than SPECULATION_MIN_SAMPLES shards timed (the first
 * carry the workers' warm-up), after STRAGGLER_FIRST_MS. The factor is high enough that ordinary
 * jitter rarely launches a copy: a copy that loses costs its worker one shard's compute.
 */
export const SPECULATION_FACTOR = 2.5;
export const SPECULATION_FLOOR_MS = 100;
const SPECULATION_MIN_SAMPLES = 3;
const SHARD_LATENCY_WINDOW = 32;

/** WebSocket close codes the coordinator uses (4000–4999 are application codes). */
export const CLOSE_CODES = { deadline: 4001, refused: 4002, misbehaving: 4003, finished: 4004, shutdown: 4005, silent: 4006, joinTimeout: 4007 } as const;

/** How long a connection may stay without sending `join` by default (--join-timeout). */
export const DEFAULT_JOIN_TIMEOUT_MS = 10_000;

export class Coordinator {
  readonly runId: string;
  private readonly vocabulary: CharVocabulary | null;
  /** The classes' names where the dataset names them (a CSV's labels, image folders), for checkpoints. */
  private readonly classNames: readonly string[] | null;
  private transport!: Transport;
  private readonly model: Module;
  private readonly slots: ParamSlot[];
  private readonly paramInfo: ParamInfo[];
  private readonly bufferInfo: ParamInfo[];
  private readonly optimizer: Optimizer;
  /** Optimizer steps per round: H with local updates (--sync-every), else 1. */
  private readonly syncEvery: number;
  private readonly schedule: LrSchedule;
  private readonly sampler: BatchSampler;
  /** The training split (after --train-samples): workers' sample indices refer to it. */
  private readonly pool: Dataset;
  /** The loss the workers minimise and the evaluations report (shared/train/objective.ts). */
  private readonly objective: Objective;
  /** The training split's fingerprint, sent to workers that read their samples themselves. */
  private readonly datasetCheck: DatasetFingerprint;
  /** What the run trains on: `pool`, less the validation samples when --val-fraction holds some out. */
  private readonly train: Dataset;
  /** train's sample i is pool's sample trainIndex[i] (null: the same index). */
  private readonly trainIndex: Int32Array | null;
  private readonly val: Dataset | null;
  private readonly test: Dataset;
  private readonly plannedSteps: number;
  private readonly workers = new Map<number, WorkerLink>();
  private workersJoined = 0;
  private readonly workerShares: WorkerShare[] = [];
  private round: StepRound | null = null;
  private roundDone: Deferred<void> | null = null;
  private membershipChanged: Deferred<void> = deferred();
  private stopRequested = false;
  private stopSignal: Deferred<void> = deferred();
  /** Fires --stop-timeout after a stop request: the step in flight (or evaluation) is then abandoned. */
  private stopTimer: NodeJS.Timeout | null = null;
  private abandoning = false;
  private readonly abandonSignal: Deferred<void> = deferred();
  /** Workers that still held shards of an abandoned step: their connections are not waited for. */
  private readonly unresponsive = new Set<number>();
  /** Wall times (ms) of the last completed steps, for the straggler threshold. */
  private readonly recentStepMs: number[] = [];
  /** Times (ms) of the last accepted shards from assignment to result, for the speculation deadline. */
  private readonly recentShardMs: number[] = [];
  private speculationTimer: NodeJS.Timeout | null = null;
  /** The first parameter of each gradient bucket (one bucket: whole-gradient messages). */
  private readonly bucketStarts: number[];
  /** The current round's buckets (null without buckets, or between rounds). */
  private roundBuckets: RoundBuckets | null = null;
  private readonly bucketScratch: Float64Array[][] = [];
  /** Joins that arrived while a round had stepped some buckets: welcomed once the step is sent. */
  private readonly deferredJoins: Array<{ conn: Connection; msg: JoinMessage }> = [];
  /** Workers already reported late in the current round. */
  private readonly lateWarned = new Set<number>();
  private checkpointFailures = 0;
  /** A step abandoned with some buckets applied (null: none): nothing may be saved then. */
  private mixedStep: number | null = null;
  /** The step of the newest checkpoint in --checkpoint-dir this run knows of (null: none). */
  private lastCheckpointStep: number | null = null;
  private failure: string | null = null;
  private dismissed = false;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private cursor: RunCursor = { epoch: 0, batch: 0, step: 0, version: 0, samples: 0, epochLossSum: 0, epochCorrect: 0, epochSeen: 0 };
  private sampleBuffers = { x: new Float32Array(0), y: new Int32Array(0) };
  private readonly sumScratch: Float64Array[] = [];
  private readonly vectorOps: VectorOps | null;
  /** Recycled gradient buffers per parameter, so decoding a contribution allocates nothing. */
  private readonly gradPool: Float32Array[][] = [];
  /** Per-epoch use count of every training sample, when auditing. */
  readonly sampleUsage = new Map<number, Uint16Array>();
  /** When the current round's first and last contributions were accepted (straggler wait). */
  private acceptedAt: { first: number; last: number } | null = null;
  private lastDeadlineCheck = 0;
  /** The last step's gradient norm before clipping, when --clip-norm clipped it (else null). */
  private clippedFrom: number | null = null;
  /** Early stopping on the validation loss (its memory is not checkpointed: a resumed run starts it afresh). */
  private readonly stopper: EarlyStopping | null;
  private finished = false;
  private closed = false;
  /** --compress: the gradients' and the parameter updates' wire format. */
  readonly compression: CompressionMode;
  /** With compression, the parameters as the workers hold them (null: they hold the exact ones). */
  private downlink: ParamView | null = null;

  private constructor(
    private readonly config: CoordinatorConfig,
    private readonly reporter: TrainReporter,
    private readonly log: Logger,
    readonly metrics: CoordinatorMetrics,
  ) {
    this.runId = randomUUID();
    const compression: unknown = config.compress ?? 'none';
    if (!isCompressionMode(compression)) throw new Error(`--compress ${String(compression)}: not a compression mode (none, fp16, bf16 or int8)`);
    this.compression = compression;
    const data = openDataset(config.dataset, { dataDir: config.dataDir, contextLength: contextLength(config.model), imageSize: imageSize(config.model), labelColumn: config.labelColumn, task: taskOfLoss(config.loss) });
    this.objective = objectiveFor(data.train, config);
    this.vocabulary = data.vocabulary ?? null;
    this.classNames = data.classNames ?? null;
    this.datasetCheck = datasetFingerprint(data.train);
    this.pool = firstSamples(data.train, config.trainSamples);
    const valFraction = config.valFraction ?? 0;
    if (config.earlyStoppingPatience !== undefined && !(valFraction > 0)) throw new Error('early stopping needs a validation split: pass --val-fraction as well');
    // As in single-process training: a seeded fraction of the training split, else the dataset's own.
    if (valFraction > 0) {
      const split = trainValSplit(this.pool, valFraction, config.seed);
      this.train = split.train;
      this.val = split.val;
      const subset = split.train as SubsetDataset;
      this.trainIndex = Int32Array.from({ length: subset.size }, (_, i) => subset.baseIndex(i));
    } else {
      this.train = this.pool;
      this.val = data.val ?? null;
      this.trainIndex = null;
    }
    this.stopper = config.earlyStoppingPatience !== undefined ? new EarlyStopping(config.earlyStoppingPatience) : null;
    this.test = firstSamples(data.test, config.testSamples);
    checkBatchSize(config, this.train.size);
    this.syncEvery = config.syncEvery ?? 1;
    if (!Number.isInteger(this.syncEvery) || this.syncEvery < 1) throw new Error(`--sync-every ${String(config.syncEvery)}: must be a whole number of steps, at least 1`);
    if (this.syncEvery > 1 && config.clipNorm !== undefined) throw new Error('--clip-norm does not apply with --sync-every > 1 (workers step on their own); leave one of them out');
    // The same initialisation as single-process training with this seed.
    this.model = buildModel(config.model, new Rng(config.seed), { numClasses: this.train.numClasses }).model;
    this.slots = paramSlots(this.model);
    this.vectorOps = backendOf(this.model).vectorOps?.() ?? null;
    this.paramInfo = this.model.namedParameters().map(([name, p]) => ({ name, shape: p.shape }));
    const integerBuffers = this.model.integerBufferNames();
    this.bufferInfo = this.model.namedBuffers().map(([name, b]) => ({ name, shape: b.shape, integer: integerBuffers.has(name) }));
    // Local updates send one parameter change per H steps: no buckets (nothing to overlap with).
    this.bucketStarts = this.syncEvery > 1 ? [0] : planBuckets(this.slots.map((s) => s.value.byteLength), config.bucketBytes ?? DEFAULT_BUCKET_BYTES);
    // With local updates the coordinator's optimizer is the outer one (DiLoCo: SGD with Nesterov
    // momentum over the averaged parameter change); the run's optimizer runs on the workers.
    const outer = defaultOuterOptimizer(this.syncEvery);
    const outerMomentum = config.outerMomentum ?? outer.momentum;
    this.optimizer =
      this.syncEvery > 1
        ? createOptimizer('sgd', this.slots, { lr: config.outerLr ?? outer.lr, momentum: outerMomentum, nesterov: outerMomentum > 0 })
        : createOptimizer(config.optimizer, this.slots, {
            lr: config.lr,
            momentum: config.momentum,
            nesterov: config.nesterov,
            weightDecay: config.weightDecay,
            vectorOps: this.vectorOps ?? undefined,
          });
    this.sampler = new BatchSampler({ size: this.train.size, batchSize: config.batchSize, seed: config.seed });
    // epochs may be Infinity (--max-steps alone); an empty sampler then still plans 0 steps, not NaN.
    this.plannedSteps = this.sampler.numBatches === 0 ? 0 : Math.min(config.maxSteps ?? Infinity, this.sampler.numBatches * config.epochs);
    this.schedule = createSchedule(config.schedule, { base: config.lr, totalSteps: this.plannedSteps, warmupSteps: config.warmupSteps || undefined });
    metrics.common.setRunInfo({ model: config.model.name, dataset: config.dataset, optimizer: config.optimizer, compression: this.compression });
    metrics.learningRate.set(config.lr);
    // The slots' grads hold the last averaged gradient until the next step's sum (optimizers
    // never write to them); with --clip-norm they are clipped in place, so the pre-clip norm is kept.
    metrics.setGradientNorm(() => (this.cursor.step === 0 ? NaN : this.clippedFrom ?? gradNorm(this.slots)));
    metrics.setWorkerCounts(() => ({ active: this.activeWorkers.length, joining: Math.max(0, (this.transport?.connectionCount ?? 0) - this.workers.size) }));
  }

  /** Builds the run and starts listening; training starts with `run()`. Metrics go to `metrics` (a fresh registry by default). */
  static async start(config: CoordinatorConfig, reporter: TrainReporter, log: Logger, metrics: CoordinatorMetrics = createCoordinatorMetrics()): Promise<Coordinator> {
    const c = new Coordinator(config, reporter, log, metrics);
    if (config.checkpointDir) await c.sweep(config.checkpointDir);
    if (config.resume) await c.resume();
    // The workers' copy starts from the parameters this run starts from (a resumed run's included).
    if (c.compression !== 'none') c.downlink = new ParamView(c.compression, c.slots.map((s) => s.value));
    const paramBytes = c.slots.reduce((s, p) => s + p.value.byteLength, 0);
    c.transport = await Transport.listen(
      // A gradients frame is one float32 per parameter plus a little framing; allow 2x and 1 MiB.
      { host: config.host, port: config.port, token: config.token, maxPayload: 2 * paramBytes + (1 << 20), logger: log, wire: metrics.common.wire, handshakeTimeoutMs: config.handshakeTimeoutMs },
      {
        opened: (conn) => c.onOpened(conn),
        message: (conn, msg) => c.onMessage(conn, msg),
        rejected: (conn, err) => c.onRejectedFrame(conn, err),
        closed: (conn, code, reason) => c.onClosed(conn, code, reason),
        refused: (reason) => metrics.refused(reason),
      },
    );
    log.info('coordinator listening', { url: c.transport.url, runId: c.runId, parameters: c.model.parameterCount(), minWorkers: config.minWorkers, gradientBuckets: c.bucketStarts.length });
    return c;
  }

  get url(): string {
    return this.transport.url;
  }

  get port(): number {
    return this.transport.port;
  }

  /** Listening and accepting workers: not stopping, finished or closed (/readyz). */
  get accepting(): boolean {
    return this.transport !== undefined && !this.stopRequested && !this.finished && !this.closed;
  }

  get activeWorkers(): WorkerLink[] {
    return [...this.workers.values()].filter((w) => w.state === 'active');
  }

  /** The current buffers (BatchNorm running statistics), by name (copies). */
  buffers(): Map<string, Float32Array> {
    return new Map(this.model.namedBuffers().map(([name, b]) => [name, (b.dataSync() as Float32Array).slice()]));
  }

  /** The current parameters, by name (copies). */
  parameters(): Map<string, Float32Array> {
    return new Map(this.slots.map((s) => [s.name, s.value.slice()]));
  }

  /** The parameters as the workers hold them, by name (copies): with --compress, the view; else the parameters. */
  workerParameters(): Map<string, Float32Array> {
    const held = this.downlink?.current;
    return new Map(this.slots.map((s, i) => [s.name, (held ? held[i] : s.value).slice()]));
  }

  /** What a joining worker starts from: the workers' parameters, full float32. */
  private wireParams(): WireTensor[] {
    const held = this.downlink?.current;
    return this.slots.map((s, i) => toWire(held ? held[i] : s.value, this.paramInfo[i].shape));
  }

  private identity(): Omit<RunIdentity, 'runId'> {
    const c = this.config;
    return { model: c.model, dataset: c.dataset, seed: c.seed, batchSize: c.batchSize, optimizer: c.optimizer, trainSamples: c.trainSamples ?? null };
  }

  /** Removes the temp files of checkpoint writes that a killed coordinator left in `dir`. */
  private async sweep(dir: string): Promise<void> {
    try {
      const { removed, kept } = await sweepTempFiles(dir);
      if (removed.length > 0) this.log.info('removed left-over temporary files', { dir, count: removed.length, files: removed });
      if (kept.length > 0) this.log.warn('left temporary files of a live process alone', { dir, files: kept });
    } catch (err) {
      this.log.warn('could not sweep left-over temporary files', { dir, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private async resume(): Promise<void> {
    if (!this.config.checkpointDir) throw new Error('--resume needs --checkpoint-dir');
    const { cursor, runId, missingBuffers } = await loadRunCheckpoint(this.config.checkpointDir, this.model, this.optimizer, this.identity());
    this.cursor = cursor;
    this.lastCheckpointStep = cursor.step;
    (this as { runId: string }).runId = runId;
    if (missingBuffers.length > 0) this.log.warn('checkpoint has no buffers (written by an older meshgrad): they restart from their initial values', { buffers: missingBuffers });
    this.log.info('resumed from checkpoint', { dir: this.config.checkpointDir, step: cursor.step, epoch: cursor.epoch + 1, batch: cursor.batch });
  }

  /**
   * Asks the run to stop at the next step boundary (SIGINT/SIGTERM): checkpoint, tell workers,
   * return. A step still in flight after --stop-timeout is abandoned (a frozen worker must not
   * hold the stop): the checkpoint holds the last completed step, and a resume redoes that one.
   */
  requestStop(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    const timeoutMs = this.config.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.log.info('stop requested: finishing the current step', { stopTimeoutMs: timeoutMs });
    this.stopSignal.resolve();
    this.stopTimer = setTimeout(() => {
      this.abandoning = true;
      this.abandonSignal.resolve();
    }, timeoutMs);
    this.stopTimer.unref();
  }

  // ---- messages -------------------------------------------------------------------------------

  /** Connections that have not joined yet, with the timer that closes them if they never do. */
  private readonly joinTimers = new Map<number, NodeJS.Timeout>();

  private onOpened(conn: Connection): void {
    const ms = this.config.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
    const timer = setTimeout(() => {
      this.joinTimers.delete(conn.id);
      if (this.workers.has(conn.id) || !conn.open) return;
      this.log.warn('connection closed: no join', { connection: conn.id, remote: conn.remote, joinTimeoutMs: ms });
      conn.close(CLOSE_CODES.joinTimeout, `no join within ${ms} ms`);
      // A peer that ignores the close handshake is cut off.
      setTimeout(() => conn.terminate(), 2000).unref();
    }, ms);
    timer.unref();
    this.joinTimers.set(conn.id, timer);
  }

  private clearJoinTimer(conn: Connection): void {
    const t = this.joinTimers.get(conn.id);
    if (t) clearTimeout(t);
    this.joinTimers.delete(conn.id);
  }

  /**
   * A frame the transport refused (already answered with its error). A `gradients` frame that
   * failed validation from a joined worker is a rejected contribution like any other: the shard it
   * names — or, when its step/shard cannot be read, every shard this worker holds in the current
   * round — goes back to the pool at once, and it counts toward the consecutive-rejections rule.
   */
  private onRejectedFrame(conn: Connection, err: ProtocolError): void {
    if (err.frame?.type !== 'gradients' && err.frame?.type !== 'gradbucket') return;
    const link = this.workers.get(conn.id);
    if (!link || link.state !== 'active') return;
    link.lastSeen = Date.now();
    const { step, version, shard } = err.frame;
    if (step !== undefined) link.answered(step, shard);
    else link.outstanding.clear();
    const round = this.round;
    let released = 0;
    if (round && (step === undefined || step === round.step) && (version === undefined || version === round.version)) {
      const named = shard === undefined ? undefined : round.find(shard);
      const holds = named && named.status === 'assigned' && named.workerId === link.id;
      released = round.release(link.id, holds ? named.id : undefined);
    }
    this.rejectContribution(link, err, step, released > 0);
  }

  /** Counts a rejected contribution (metric, consecutive rejections) and redoes the released work. */
  private rejectContribution(link: WorkerLink, err: ProtocolError, step: number | undefined, released: boolean): void {
    link.consecutiveRejects++;
    this.metrics.gradient('rejected', err.code);
    this.log.warn('rejected a contribution', { worker: link.label, code: err.code, reason: err.message, step, consecutive: link.consecutiveRejects });
    if (link.consecutiveRejects >= MAX_CONSECUTIVE_REJECTS) this.drop(link, `${link.consecutiveRejects} rejected contributions in a row`, CLOSE_CODES.misbehaving, 'rejected');
    else if (released) this.dispatch();
  }

  private onMessage(conn: Connection, msg: Message): void {
    const link = this.workers.get(conn.id);
    if (link) link.lastSeen = Date.now();
    switch (msg.type) {
      case 'join':
        return this.onJoin(conn, msg);
      case 'gradients':
        return this.contribution(link, (joined) => this.onGradients(joined, msg));
      case 'gradbucket':
        return this.contribution(link, (joined) => this.onGradBucket(joined, msg));
      case 'heartbeat':
        return;
      case 'error':
        this.log.warn('worker reported an error', { worker: link?.label ?? conn.id, code: msg.code, message: msg.message });
        if (link && msg.step !== undefined) link.answered(msg.step);
        return;
      case 'leave':
        if (link) this.drop(link, `left (${msg.reason}${msg.message ? `: ${msg.message}` : ''})`, 1000, 'leave');
        else conn.close(1000, 'bye');
        return;
      default:
        throw new ProtocolError('UNEXPECTED', `a worker does not send '${msg.type}' messages`);
    }
  }

  /** Runs a `gradients` / `gradbucket` handler for a joined worker; a protocol error is counted (stale or rejected) and passed on to the transport. */
  private contribution(link: WorkerLink | undefined, handle: (link: WorkerLink) => void): void {
    try {
      if (!link || link.state !== 'active') throw new ProtocolError('UNEXPECTED', 'gradients before join');
      handle(link);
    } catch (err) {
      if (err instanceof ProtocolError) this.metrics.gradient(err.code === 'STALE_STEP' ? 'stale' : 'rejected', err.code);
      throw err;
    }
  }

  private onJoin(conn: Connection, msg: JoinMessage): void {
    if (this.workers.has(conn.id)) throw new ProtocolError('UNEXPECTED', 'already joined');
    this.clearJoinTimer(conn);
    if (msg.protocol !== PROTOCOL_VERSION) {
      this.metrics.refused('protocol_version');
      conn.sendError('VERSION_MISMATCH', `protocol version ${msg.protocol} is not supported; the coordinator speaks version ${PROTOCOL_VERSION}`);
      conn.send({ type: 'leave', reason: 'refused', message: `protocol version ${msg.protocol} != ${PROTOCOL_VERSION}` });
      conn.close(CLOSE_CODES.refused, 'protocol version mismatch');
      return;
    }
    if (this.roundBuckets?.stepped.some(Boolean)) {
      // Some of this step's buckets already hold the next version: welcome it once the step is sent.
      this.deferredJoins.push({ conn, msg });
      return;
    }
    if (this.stopRequested) {
      this.metrics.refused('shutting_down');
      conn.send({ type: 'leave', reason: 'shutdown', message: 'the coordinator is stopping' });
      conn.close(CLOSE_CODES.shutdown, 'shutting down');
      return;
    }
    const modelProblem = moduleJoinProblem(this.config.model, msg.capabilities.module);
    if (modelProblem) {
      this.metrics.refused('model');
      this.log.warn('worker refused', { worker: msg.name ?? conn.id, reason: modelProblem });
      conn.send({ type: 'leave', reason: 'refused', message: modelProblem });
      conn.close(CLOSE_CODES.refused, 'model mismatch');
      return;
    }
    const wantsSamples = this.config.sendSamples || !msg.capabilities.datasets.includes(this.config.dataset);
    const link = new WorkerLink(conn, msg.name ?? '', wantsSamples, msg.capabilities.threads);
    this.workers.set(conn.id, link);
    this.workersJoined++;
    this.workerShares.push(link.share);
    this.metrics.membership('join');
    conn.send({
      type: 'welcome',
      workerId: `w${conn.id}`,
      runId: this.runId,
      model: this.config.model,
      dataset: this.config.dataset,
      numClasses: this.train.numClasses,
      sendSamples: wantsSamples,
      ...(this.config.labelColumn !== undefined ? { datasetOptions: { labelColumn: this.config.labelColumn } } : {}),
      ...(wantsSamples ? {} : { datasetCheck: { ...this.datasetCheck, sampleShape: [...this.datasetCheck.sampleShape] } }),
      seed: this.config.seed,
      labelSmoothing: this.config.labelSmoothing,
      ...(this.objective.loss !== 'cross-entropy' ? { objective: { ...this.objective } } : {}),
      heartbeatMs: this.config.heartbeatMs,
      compression: this.compression,
      version: this.cursor.version,
      params: this.wireParams(),
      paramNames: this.paramInfo.map((p) => p.name),
      buffers: this.wireBuffers(),
      bufferNames: this.bufferInfo.map((b) => b.name),
      buckets: this.bucketStarts.length > 1 ? this.bucketStarts : undefined,
      local: this.syncEvery > 1 ? this.innerSettings() : undefined,
    });
    this.log.info('worker joined', { worker: link.label, remote: conn.remote, threads: link.threads, device: msg.capabilities.device, samples: wantsSamples ? 'sent' : 'read by the worker', ...(msg.capabilities.adapter ? { adapter: msg.capabilities.adapter } : {}), active: this.activeWorkers.length });
    this.onMembershipChange();
  }

  private onGradients(link: WorkerLink, msg: GradientsMessage): void {
    const round = this.round;
    const expected = link.outstanding.has(`${msg.step}/${msg.shard}`);
    link.answered(msg.step, msg.shard);
    const current = round !== null && msg.step === round.step && msg.version === round.version;
    const lost = current ? round.find(msg.shard) : undefined;
    if (expected && (!current || (lost?.status === 'discarded' && lost.workerId === link.id))) {
      // A late result for a shard another worker already covered (a speculative re-run won, or
      // the step went on without it): dropped, counted, and no error to the worker.
      this.metrics.gradient('discarded', 'none');
      this.log.debug('discarded a late result', { worker: link.label, step: msg.step, shard: msg.shard, currentStep: round?.step ?? null });
      this.scheduleSpeculation();
      return;
    }
    if (!round || !current) {
      throw new ProtocolError('STALE_STEP', `gradients for step ${msg.step} (version ${msg.version}); the current step is ${round ? `${round.step} (version ${round.version})` : 'none'}`);
    }
    const shard = round.find(msg.shard);
    if (!shard || shard.status !== 'assigned' || shard.workerId !== link.id) {
      throw new ProtocolError('NOT_ASSIGNED', `shard ${msg.shard} of step ${msg.step} is not assigned to this worker`);
    }
    let result;
    const rb = this.roundBuckets;
    try {
      let params: readonly ParamInfo[] = this.paramInfo;
      let offset = 0;
      if (rb && msg.bucket !== undefined) {
        if (msg.bucket >= rb.count) throw new ProtocolError('BAD_MESSAGE', `gradients for shard ${msg.shard} name bucket ${String(msg.bucket)}; the run has buckets 0..${rb.count - 1}`);
        for (let k = 0; k < rb.count; k++) {
          if (k !== msg.bucket && !rb.isCounted(shard, k)) throw new ProtocolError('BAD_MESSAGE', `gradients end shard ${msg.shard} before its bucket ${k} came`);
        }
        const range = this.bucket(msg.bucket);
        params = this.paramInfo.slice(range.start, range.end);
        offset = range.start;
      } else if (msg.bucket !== undefined) throw new ProtocolError('BAD_MESSAGE', `gradients name bucket ${msg.bucket}; this run sends whole gradients`);
      // Without `bucket`, the message carries every parameter's gradient (a worker that does not send buckets).
      result = decodeContribution(msg, params, shard.indices.length, (i, n) => this.takeGradArray(i, n), this.train.labelsPerSample ?? 1, this.bufferInfo, offset, this.compression);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // The shard goes back to the pool (possibly to this worker again); repeat offenders are dropped.
      link.conn.sendError(err.code, err.message, msg.step);
      round.release(link.id, shard.id);
      this.rejectContribution(link, err, msg.step, true);
      return;
    }
    link.consecutiveRejects = 0;
    link.share.shards++;
    link.share.samples += msg.samples;
    this.metrics.gradient('accepted', 'none');
    const now = performance.now();
    if (this.acceptedAt) this.acceptedAt.last = now;
    else this.acceptedAt = { first: now, last: now };
    link.recordThroughput(msg.samples, msg.computeMs);
    this.recentShardMs.push(Date.now() - shard.assignedAt);
    if (this.recentShardMs.length > SHARD_LATENCY_WINDOW) this.recentShardMs.shift();
    const bucketGrads = result.grads;
    if (rb) result = { ...result, grads: [] };
    const { discarded } = round.finish(shard, result);
    if (rb && msg.bucket !== undefined) this.addBucket(rb, shard, msg.bucket, bucketGrads);
    else if (rb) {
      for (let k = 0; k < rb.count; k++) {
        const range = this.bucket(k);
        this.addBucket(rb, shard, k, bucketGrads.slice(range.start, range.end));
      }
    }
    if (shard.speculative) this.metrics.speculation('copy_won');
    else if (discarded.length > 0) this.metrics.speculation('original_won');
    if (round.complete) this.roundDone?.resolve();
    else this.scheduleSpeculation();
  }

  /** The learning rate of the last step: the optimizer's, or with local updates the inner one's. */
  private currentLr(): number {
    return this.syncEvery > 1 ? this.schedule.lrAt(Math.max(0, this.cursor.step - 1)) : this.optimizer.lr;
  }

  /** The workers' inner optimizer with local updates: the run's optimizer settings. */
  private innerSettings(): NonNullable<WelcomeMessage['local']> {
    const c = this.config;
    return {
      syncEvery: this.syncEvery,
      optimizer: c.optimizer,
      lr: c.lr,
      ...(c.momentum !== undefined ? { momentum: c.momentum } : {}),
      ...(c.nesterov !== undefined ? { nesterov: c.nesterov } : {}),
      ...(c.weightDecay !== undefined ? { weightDecay: c.weightDecay } : {}),
    };
  }

  /** Bucket k's parameter range [start, end). */
  private bucket(k: number): { start: number; end: number } {
    return bucketRange(this.bucketStarts, this.slots.length, k);
  }

  /** A recycled (or new) array for parameter i's gradient. */
  private takeGradArray(i: number, n: number): Float32Array {
    return this.gradPool[i]?.pop() ?? (this.vectorOps ? this.vectorOps.alloc(n) : new Float32Array(n));
  }

  /** One bucket of a shard's gradients, sent while the worker's backward goes on. */
  private onGradBucket(link: WorkerLink, msg: GradBucketMessage): void {
    const round = this.round;
    const rb = this.roundBuckets;
    if (!round || !rb || msg.step !== round.step || msg.version !== round.version) {
      // A bucket of a shard this worker still owes from a step that went on without it.
      if (link.outstanding.has(`${msg.step}/${msg.shard}`)) return;
      throw new ProtocolError('STALE_STEP', `gradient bucket for step ${msg.step} (version ${msg.version}); the current step is ${round ? `${round.step} (version ${round.version})` : 'none'}`);
    }
    const shard = round.find(msg.shard);
    if (!shard || shard.workerId !== link.id || (shard.status !== 'assigned' && shard.status !== 'discarded')) {
      throw new ProtocolError('NOT_ASSIGNED', `shard ${msg.shard} of step ${msg.step} is not assigned to this worker`);
    }
    if (shard.status === 'discarded') return; // its group is covered by the member that won
    let grads: Float32Array[];
    try {
      if (msg.bucket >= rb.count) throw new ProtocolError('BAD_MESSAGE', `gradient bucket ${msg.bucket}; the run has buckets 0..${rb.count - 1}`);
      const range = this.bucket(msg.bucket);
      grads = decodeGradients(msg.grads, this.paramInfo.slice(range.start, range.end), range.start, (i, n) => this.takeGradArray(i, n), this.compression);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      link.conn.sendError(err.code, err.message, msg.step);
      round.release(link.id, shard.id);
      this.rejectContribution(link, err, msg.step, true);
      return;
    }
    this.addBucket(rb, shard, msg.bucket, grads);
  }

  /** Counts a bucket (once per group of samples) and, once its sum is complete, steps and sends it. */
  private addBucket(rb: RoundBuckets, shard: Shard, k: number, grads: readonly Float32Array[]): void {
    const { start } = this.bucket(k);
    const outcome = rb.add(shard, k, grads);
    if (outcome === 'duplicate') grads.forEach((g, i) => (this.gradPool[start + i] ??= []).push(g));
    if (outcome !== 'complete') return;
    this.sumBucket(rb, k);
    // With --clip-norm the step needs the whole gradient's norm: every bucket is stepped at the
    // end. Once a stop is requested, too: a step abandoned with some buckets stepped would leave
    // parameters of two versions, which no checkpoint may hold.
    if (this.config.clipNorm !== undefined || this.stopRequested) return;
    this.stepBucket(rb, k);
    // The last bucket goes with the buffers, once the round has completed.
    if (!rb.stepped.every(Boolean)) {
      this.broadcastBucket(k, this.round!.version + 1, false);
      rb.sent[k] = true;
    }
  }

  private stepBucket(rb: RoundBuckets, k: number): void {
    if (!rb.stepped.some(Boolean)) this.optimizer.lr = this.schedule.lrAt(this.cursor.step);
    const range = this.bucket(k);
    this.optimizer.stepRange(range.start, range.end);
    rb.markStepped(k);
  }

  /** Writes bucket k's summed gradient into its slots' grads (shard-group order, float64, rounded once). */
  private sumBucket(rb: RoundBuckets, k: number): void {
    const { start, end } = this.bucket(k);
    const contributions = rb.contributions(k).map((grads) => ({ samples: 0, computeMs: 0, grads }));
    sumInto(this.slots.slice(start, end), contributions, (this.bucketScratch[k] ??= []), this.vectorOps ?? undefined);
  }

  /** Sends bucket k's parameters of `version` to every active worker (with the buffers: the version's last message). */
  private broadcastBucket(k: number, version: number, withBuffers: boolean): void {
    this.broadcastFrame(this.paramsFrame(version, this.bucket(k), k, withBuffers));
  }

  /**
   * A `params` frame for parameters [start, end) of `version`: the values, or with --compress the
   * compressed update of the workers' view (which it advances); `bucket` names a bucket's frame.
   */
  private paramsFrame(version: number, { start, end }: { start: number; end: number }, bucket: number | undefined, withBuffers: boolean): Buffer {
    const shapes = this.paramInfo.slice(start, end).map((p) => p.shape);
    const values = this.slots.slice(start, end).map((s) => s.value);
    return encodeMessage({
      type: 'params',
      version,
      ...(bucket !== undefined ? { bucket } : {}),
      ...(this.downlink ? { delta: true, params: this.downlink.delta(values, shapes, start) } : { params: values.map((v, i) => toWire(v, shapes[i])) }),
      ...(withBuffers ? { buffers: this.wireBuffers() } : {}),
    });
  }

  private broadcastFrame(frame: Buffer): void {
    for (const w of this.activeWorkers) w.conn.sendFrame(frame, 'params');
  }

  /** Welcomes the workers whose join waited for the step to be sent. */
  private welcomeDeferred(): void {
    for (const { conn, msg } of this.deferredJoins.splice(0)) if (conn.open) this.onJoin(conn, msg);
  }

  private onClosed(conn: Connection, code: number, reason: string): void {
    this.clearJoinTimer(conn);
    const link = this.workers.get(conn.id);
    if (link && link.state === 'active') this.drop(link, `disconnected (${code}${reason ? ` ${reason}` : ''})`, null, 'disconnect');
  }

  /** Removes a worker from the run; its unfinished shards are redone by the others. */
  private drop(link: WorkerLink, why: string, closeCode: number | null, kind: 'leave' | WorkerFailureKind): void {
    if (link.state === 'dropped') return;
    link.state = 'dropped';
    this.metrics.membership(kind === 'leave' ? 'leave' : 'drop');
    if (kind !== 'leave') this.metrics.workerFailure(kind);
    this.workers.delete(link.id);
    const released = this.round?.release(link.id) ?? 0;
    this.log.warn('worker dropped', { worker: link.label, reason: why, redoneShards: released, active: this.activeWorkers.length });
    if (closeCode !== null) link.conn.close(closeCode, why);
    this.onMembershipChange();
  }

  private onMembershipChange(): void {
    this.membershipChanged.resolve();
    this.membershipChanged = deferred();
    this.dispatch();
  }

  // ---- steps ----------------------------------------------------------------------------------

  /** Sends the current round's pending shards to the active workers, if there are enough of them. */
  private dispatch(): void {
    const round = this.round;
    if (!round || round.pending().length === 0) return;
    // In connection order, not join order: with the same workers the pieces of a batch go to the
    // same workers whichever join message arrived first (their dropout streams are seeded per worker).
    const active = this.activeWorkers.sort((a, b) => a.id - b.id);
    if (active.length < this.config.minWorkers || active.length === 0) return;
    // Workers still holding a shard that was copied for being late sit out until they answer.
    const punctual = active.filter((w) => !w.late);
    if (punctual.length === 0 || punctual.length === active.length) {
      for (const shard of round.dispatch(this.weights(active), Date.now())) this.sendAssignment(round, shard);
    } else if (this.config.balance === 'even') {
      // The split stays that of every active worker (so the run's bits do not depend on who was
      // late); the late workers' pieces go to the others, the least loaded first.
      const load = new Map(punctual.map((w) => [w.id, 0]));
      const pieces = round.dispatch(this.weights(active), Date.now());
      for (const piece of pieces) if (load.has(piece.workerId!)) load.set(piece.workerId!, load.get(piece.workerId!)! + 1);
      for (const piece of pieces) {
        if (load.has(piece.workerId!)) continue;
        const [id, n] = [...load].reduce((best, e) => (e[1] < best[1] ? e : best));
        piece.workerId = id;
        load.set(id, n + 1);
      }
      for (const piece of pieces) this.sendAssignment(round, piece);
    } else {
      for (const shard of round.dispatch(this.weights(punctual), Date.now())) this.sendAssignment(round, shard);
    }
    this.scheduleSpeculation();
  }

  /** How long a shard may be held before it is copied to an idle worker. */
  private speculationThresholdMs(): number {
    if (this.recentShardMs.length < SPECULATION_MIN_SAMPLES) return STRAGGLER_FIRST_MS;
    const sorted = [...this.recentShardMs].sort((a, b) => a - b);
    return Math.max(SPECULATION_FACTOR * sorted[sorted.length >> 1], SPECULATION_FLOOR_MS);
  }

  /** Arms the timer for the round's next late shard (each shard is copied once at most). */
  private scheduleSpeculation(): void {
    if (this.speculationTimer) clearTimeout(this.speculationTimer);
    this.speculationTimer = null;
    const round = this.round;
    if (!round || this.config.speculation === false) return;
    const threshold = this.speculationThresholdMs();
    let earliest = Infinity;
    for (const s of round.shards) if (s.status === 'assigned' && !round.hasCopy(s)) earliest = Math.min(earliest, s.assignedAt + threshold);
    if (earliest === Infinity) return;
    this.speculationTimer = setTimeout(() => this.speculate(), Math.max(0, earliest - Date.now()));
    this.speculationTimer.unref();
  }

  /**
   * Copies each late shard of the round to an idle worker (the fastest first): the first result
   * of the two is used, the other discarded. The late worker sits out new rounds until it answers.
   */
  private speculate(): void {
    this.speculationTimer = null;
    const round = this.round;
    if (!round) return;
    const now = Date.now();
    const threshold = this.speculationThresholdMs();
    const idle = this.activeWorkers.filter((w) => !w.late && w.outstanding.size === 0).sort((a, b) => b.throughput - a.throughput || a.id - b.id);
    const late = round.shards.filter((s) => s.status === 'assigned' && !round.hasCopy(s) && now - s.assignedAt >= threshold).sort((a, b) => a.assignedAt - b.assignedAt);
    for (const shard of late) {
      const helper = idle.shift();
      if (!helper) break;
      const holder = shard.workerId === null ? undefined : this.workers.get(shard.workerId);
      if (holder) {
        holder.late = true;
        this.metrics.late(holder.metricName);
      }
      const copy = round.speculate(shard, helper.id, now);
      this.metrics.speculation('launched');
      this.log.info('speculative re-run of a late shard', { step: round.step, shard: shard.id, samples: shard.indices.length, lateWorker: holder?.label ?? null, heldMs: now - shard.assignedAt, thresholdMs: Math.round(threshold), copyTo: helper.label });
      this.sendAssignment(round, copy);
    }
    this.scheduleSpeculation();
  }

  /**
   * Each worker's share: 1 each with --balance even, so the split depends only on how many
   * workers there are; else its measured throughput (samples per ms of compute, a moving
   * average). A worker not measured yet counts as the mean of the measured ones (1 each while
   * none is). splitSizes gives every worker at least one sample, so every worker keeps being
   * measured.
   */
  private weights(active: readonly WorkerLink[]): Array<{ id: number; weight: number }> {
    if (this.config.balance === 'even') return active.map((w) => ({ id: w.id, weight: 1 }));
    const measured = active.filter((w) => w.throughput > 0);
    const mean = measured.length > 0 ? measured.reduce((s, w) => s + w.throughput, 0) / measured.length : 1;
    return active.map((w) => ({ id: w.id, weight: w.throughput > 0 ? w.throughput : mean }));
  }

  private sendAssignment(round: StepRound, shard: Shard): void {
    const link = this.workers.get(shard.workerId!);
    if (!link) return;
    const msg: AssignMessage = {
      type: 'assign',
      step: round.step,
      version: round.version,
      shard: shard.id,
      batchSize: round.indices.length,
      indices: toWire(shard.indices, [shard.indices.length]),
    };
    if (round.span > 1 || this.syncEvery > 1) msg.local = { lrs: Array.from({ length: round.span }, (_, j) => this.schedule.lrAt(round.step + j)) };
    if (link.wantsSamples) {
      const batch = this.pool.batch(shard.indices, this.sampleBuffers);
      // A language model's sample has T labels: y is [size, T] then, else [size].
      const labelsPerSample = batch.y.length / batch.size;
      msg.samples = { x: toWire(batch.x, [batch.size, ...batch.sampleShape]), y: toWire(batch.y, labelsPerSample === 1 ? [batch.size] : [batch.size, labelsPerSample]) };
      if (batch.targets) msg.samples.t = toWire(batch.targets, [batch.size, batch.targets.length / Math.max(batch.size, 1)]);
    }
    link.assigned(round.step, shard.id);
    link.conn.send(msg);
  }

  /**
   * Runs every 250 ms: drops workers that have sent nothing (not even a heartbeat reply) for
   * four heartbeat intervals (at least 2 s), and workers holding a shard past --step-timeout.
   * Workers answer heartbeats from their network thread while they compute, so silence means a
   * dead process, a frozen host or a half-open connection, not a long shard.
   */
  private checkDeadlines(): void {
    const now = Date.now();
    // If this process itself stalled (a long synchronous stretch), replies may be waiting unread
    // in the socket buffers: forgive the silence this once rather than drop everyone.
    const stalled = now - this.lastDeadlineCheck > 1000;
    this.lastDeadlineCheck = now;
    const silenceLimitMs = Math.max(4 * this.config.heartbeatMs, 2000);
    for (const w of this.activeWorkers) {
      if (stalled) w.lastSeen = Math.max(w.lastSeen, now);
      else if (now - w.lastSeen > silenceLimitMs) this.drop(w, `silent for ${now - w.lastSeen} ms (limit ${silenceLimitMs} ms: four heartbeats)`, CLOSE_CODES.silent, 'silent');
    }
    const round = this.round;
    if (!round) return;
    this.warnStragglers(round, now);
    for (const shard of round.overdue(Date.now(), this.config.stepTimeoutMs)) {
      const link = this.workers.get(shard.workerId!);
      if (link) this.drop(link, `missed the step deadline (${this.config.stepTimeoutMs} ms) on step ${round.step}`, CLOSE_CODES.deadline, 'timeout');
    }
  }

  /** The median of the recent step times, or null before any step is timed. */
  private medianStepMs(): number | null {
    if (this.recentStepMs.length === 0) return null;
    const sorted = [...this.recentStepMs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  /**
   * Names, once per step and worker, each worker the step is still waiting for once it is late
   * (held its shard past STRAGGLER_FACTOR × the median recent step time, at least
   * STRAGGLER_FLOOR_MS), so an operator sees a straggler while the step stalls rather than only
   * when the worker is dropped. `silentMs` tells a frozen worker (no heartbeat replies) from a slow one.
   */
  private warnStragglers(round: StepRound, now: number): void {
    const median = this.medianStepMs();
    const thresholdMs = median === null ? STRAGGLER_FIRST_MS : Math.max(STRAGGLER_FACTOR * median, STRAGGLER_FLOOR_MS);
    for (const shard of round.shards) {
      if (shard.status !== 'assigned' || shard.workerId === null || this.lateWarned.has(shard.workerId)) continue;
      const heldMs = now - shard.assignedAt;
      if (heldMs <= thresholdMs) continue;
      const link = this.workers.get(shard.workerId);
      if (!link) continue;
      this.lateWarned.add(shard.workerId);
      this.metrics.stragglerWarnings.inc();
      const waitingShards = round.shards.filter((x) => x.status === 'assigned').length;
      this.log.warn('step waiting for a late worker', {
        worker: link.label,
        step: round.step,
        heldMs,
        thresholdMs: Math.round(thresholdMs),
        medianStepMs: median === null ? null : Math.round(median),
        samples: shard.indices.length,
        waitingShards,
        silentMs: now - link.lastSeen,
      });
    }
  }

  /** Waits until at least --min-workers are active; false if a stop was requested meanwhile. */
  private async awaitWorkers(): Promise<boolean> {
    let said = false;
    while (this.activeWorkers.length < this.config.minWorkers) {
      if (this.stopRequested) return false;
      if (!said) {
        this.log.info('waiting for workers', { active: this.activeWorkers.length, minWorkers: this.config.minWorkers });
        said = true;
      }
      await Promise.race([this.membershipChanged.promise, this.stopSignal.promise]);
    }
    return !this.stopRequested || this.round === null;
  }

  /** Runs one step's round to completion; false if it was abandoned (stop with no workers). */
  private async runRound(round: StepRound): Promise<boolean> {
    this.round = round;
    this.roundBuckets = this.bucketStarts.length > 1 ? new RoundBuckets(round, this.bucketStarts.length) : null;
    this.roundDone = deferred();
    this.acceptedAt = null;
    this.lateWarned.clear();
    const started = Date.now();
    try {
      for (;;) {
        if (!(await this.awaitWorkers())) return false;
        this.dispatch();
        if (round.complete) return true;
        // Wait for completion, for a membership change that leaves us short of workers, or for a
        // stop that has waited long enough.
        const event = await Promise.race([
          this.roundDone.promise.then(() => 'done' as const),
          this.membershipChanged.promise.then(() => 'membership' as const),
          this.abandonSignal.promise.then(() => 'abandon' as const),
        ]);
        if (event === 'done' || round.complete) return true;
        if (event === 'abandon') {
          const holders = [...new Set(round.shards.filter((x) => x.status === 'assigned' && x.workerId !== null).map((x) => x.workerId!))];
          for (const id of holders) this.unresponsive.add(id);
          this.log.warn('stop: abandoned the unfinished step', {
            step: round.step,
            waitedMs: Date.now() - started,
            stopTimeoutMs: this.config.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
            waitingFor: holders.map((id) => this.workers.get(id)?.label ?? `w${id}`),
            lastCompletedStep: this.cursor.step,
          });
          return false;
        }
        if (this.stopRequested && this.activeWorkers.length < this.config.minWorkers) return false;
      }
    } finally {
      this.round = null;
      this.roundDone = null;
      if (this.speculationTimer) clearTimeout(this.speculationTimer);
      this.speculationTimer = null;
    }
  }

  /** The model's buffers (BatchNorm running statistics) as host arrays, in buffer order. */
  private bufferValues(): Float32Array[] {
    return this.model.namedBuffers().map(([, b]) => b.dataSync() as Float32Array);
  }

  private wireBuffers(): ReturnType<typeof toWire>[] {
    const values = this.bufferValues();
    return values.map((v, i) => toWire(v, this.bufferInfo[i].shape));
  }

  /**
   * Sends the step's new parameters: one message without buckets; else the buckets not sent yet
   * (the one stepped last, or all of them with --clip-norm), the buffers with the last message.
   */
  private broadcastStep(rb: RoundBuckets | null): void {
    if (!rb) return this.broadcastParams();
    const unsent = rb.sent.map((sent, k) => (sent ? -1 : k)).filter((k) => k >= 0);
    if (unsent.length === 0) throw new Error('internal: a bucketed step with every bucket sent before its end');
    unsent.forEach((k, j) => this.broadcastBucket(k, this.cursor.version, j === unsent.length - 1));
  }

  /** The new parameters to every worker: in full, or with --compress as the compressed update of the workers' view. */
  private broadcastParams(): void {
    this.broadcastFrame(this.paramsFrame(this.cursor.version, { start: 0, end: this.slots.length }, undefined, true));
  }

  private audit(epoch: number, indices: Int32Array): void {
    let counts = this.sampleUsage.get(epoch);
    if (!counts) this.sampleUsage.set(epoch, (counts = new Uint16Array(this.pool.size)));
    for (const i of indices) counts[i]++;
  }

  private async checkpoint(): Promise<string | null> {
    if (!this.config.checkpointDir) return null;
    const started = performance.now();
    const path = await saveRunCheckpoint(this.config.checkpointDir, this.model, this.optimizer, this.cursor, { runId: this.runId, ...this.identity() });
    this.lastCheckpointStep = this.cursor.step;
    const m = this.metrics;
    m.checkpointDuration.observe((performance.now() - started) / 1000);
    m.checkpointSize.set((await stat(path)).size);
    m.checkpointLastTimestamp.set(Date.now() / 1000);
    m.checkpoints.inc();
    this.log.info('checkpoint written', { path, step: this.cursor.step, ms: Math.round(performance.now() - started) });
    return path;
  }

  /**
   * checkpoint(), but a failure (a full disk) is logged with the path and the cause, counted
   * (meshgrad_checkpoint_failures_total) and returned: the write is atomic, so the previous
   * checkpoint stays as it was.
   */
  private async checkpointReporting(kind: 'periodic' | 'final'): Promise<{ path: string | null; failure: string | null }> {
    try {
      return { path: await this.checkpoint(), failure: null };
    } catch (err) {
      this.checkpointFailures++;
      this.metrics.checkpointFailures.inc();
      const path = latestPath(this.config.checkpointDir!);
      const message = err instanceof Error ? err.message : String(err);
      const cause = message.includes(path) ? message : `${path}: ${message}`;
      const previous = this.lastCheckpointStep === null ? 'there is no earlier checkpoint' : `the previous checkpoint (step ${this.lastCheckpointStep}) is kept`;
      const failure = `checkpoint at step ${this.cursor.step} failed: ${cause}; ${previous}`;
      const policy = this.config.checkpointFailure ?? 'continue';
      const fields = { path, step: this.cursor.step, error: cause, code: (err as NodeJS.ErrnoException).code, failures: this.checkpointFailures, previousStep: this.lastCheckpointStep };
      if (kind === 'final') this.log.error('final checkpoint failed', fields);
      else if (policy === 'continue') this.log.warn('checkpoint failed; training goes on (--checkpoint-failure continue)', fields);
      else this.log.error('checkpoint failed; stopping the run (--checkpoint-failure stop)', fields);
      return { path: null, failure };
    }
  }

  /**
   * Tells every remaining worker the run is over — `leave` with reason `finished` (the worker
   * exits) or `shutdown` (it retries, for a coordinator that comes back) — then closes its
   * connection; workers that froze holding a shard of an abandoned step are cut off rather than
   * waited for. Once; returns the workers that were still active.
   */
  private dismissWorkers(reason: 'finished' | 'shutdown'): WorkerLink[] {
    const remaining = this.activeWorkers;
    if (this.dismissed) return remaining;
    this.dismissed = true;
    for (const w of remaining) {
      w.state = 'dropped'; // no longer part of a run; their disconnects are expected
      w.conn.send({ type: 'leave', reason });
      if (this.unresponsive.has(w.id)) w.conn.terminate();
      else w.conn.close(reason === 'finished' ? CLOSE_CODES.finished : CLOSE_CODES.shutdown, reason);
    }
    return remaining;
  }

  /** Trains to the end (or until a stop is requested) and returns the summary. */
  async run(): Promise<CoordinatorSummary> {
    const started = performance.now();
    this.lastDeadlineCheck = Date.now();
    // Heartbeats start now: silence is counted from here for workers that joined before.
    for (const w of this.activeWorkers) w.lastSeen = Date.now();
    this.deadlineTimer = setInterval(() => this.checkDeadlines(), 250);
    this.heartbeatTimer = setInterval(() => {
      for (const w of this.activeWorkers) w.conn.send({ type: 'heartbeat', time: Date.now() });
    }, this.config.heartbeatMs);
    let test: EvalResult = { loss: NaN, accuracy: NaN, samples: 0 };
    let lastTrainLoss = NaN;
    let interrupted = false;
    try {
      outer: for (let epoch = this.cursor.epoch; epoch < this.config.epochs && this.cursor.step < this.plannedSteps; epoch++) {
        const epochStart = performance.now();
        this.metrics.epoch.set(epoch + 1);
        const order = this.sampler.shuffle ? epochPermutation(this.train.size, this.config.seed, epoch) : null;
        const ranges = this.sampler.numBatches;
        let windowStart = performance.now();
        let windowSamples = 0;
        for (let b = this.cursor.batch; b < ranges; b++) {
          if (this.cursor.step >= this.plannedSteps) break;
          if (this.stopRequested) {
            interrupted = true;
            break outer;
          }
          // With local updates a round covers the next H batches (fewer at the end of an epoch or of the run).
          const span = Math.min(this.syncEvery, ranges - b, this.plannedSteps - this.cursor.step);
          const start = b * this.config.batchSize;
          const end = Math.min(start + span * this.config.batchSize, this.train.size);
          const positions = order ? order.slice(start, end) : Int32Array.from({ length: end - start }, (_, i) => start + i);
          const indices = this.trainIndex ? positions.map((i) => this.trainIndex![i]) : positions;
          const round = new StepRound(this.cursor.step, this.cursor.version, indices, span);
          b += span - 1;
          const stepStart = performance.now();
          if (!(await this.runRound(round))) {
            interrupted = true;
            if (this.roundBuckets?.stepped.some(Boolean)) {
              // Buckets stepped before the stop request: the parameters mix two versions.
              this.mixedStep = round.step;
              this.failure ??= `step ${round.step} was abandoned after some of its gradient buckets had been applied: neither the final checkpoint nor --save was written (the parameters mix steps ${round.step} and ${round.step + 1})${this.lastCheckpointStep === null ? '' : `; the checkpoint of step ${this.lastCheckpointStep} is kept`}`;
            }
            this.roundBuckets = null;
            break outer;
          }
          const contributions = round.contributions();
          const updateStart = performance.now();
          const rb = this.roundBuckets;
          this.roundBuckets = null;
          if (!rb) sumInto(this.slots, contributions, this.sumScratch, this.vectorOps ?? undefined);
          else if (!rb.allComplete) throw new Error(`internal: step ${round.step} completed with buckets missing`);
          if (this.bufferInfo.length > 0) averageBuffers(this.bufferValues(), contributions, this.bufferInfo.map((b) => b.integer === true));
          // Clipping computes the norm before clipping anyway: keep it for the metrics. Without
          // clipping the gradient stays as summed, and a scrape computes its norm (not every step).
          this.clippedFrom = this.config.clipNorm !== undefined ? clipGradNorm(this.slots, this.config.clipNorm) : null;
          if (this.syncEvery > 1) {
            // The outer step: the slots' grads hold the sample-weighted mean parameter change.
            this.optimizer.step();
          } else if (!rb || this.config.clipNorm !== undefined) {
            this.optimizer.lr = this.schedule.lrAt(this.cursor.step);
            this.optimizer.step();
          } else {
            // Buckets were stepped as their sums completed (but not after a stop request).
            for (let k = 0; k < rb.count; k++) if (!rb.stepped[k]) this.stepBucket(rb, k);
            this.optimizer.countStep();
          }
          const loss = contributions.reduce((s, c) => s + c.loss * c.samples, 0) / indices.length;
          const correct = contributions.reduce((s, c) => s + c.correct, 0);
          if (this.config.auditSamples) for (const s of round.completed()) this.audit(epoch, s.indices);
          const c = this.cursor;
          this.cursor = {
            epoch,
            batch: b + 1,
            step: c.step + span,
            version: c.version + 1,
            samples: c.samples + indices.length,
            epochLossSum: c.epochLossSum + loss * indices.length,
            epochCorrect: c.epochCorrect + correct,
            epochSeen: c.epochSeen + indices.length,
          };
          const updateMs = performance.now() - updateStart;
          for (const c of contributions) c.grads.forEach((g, i) => (this.gradPool[i] ??= []).push(g));
          if (rb) {
            for (const { bucket, index, array } of rb.arrays()) (this.gradPool[this.bucketStarts[bucket] + index] ??= []).push(array);
          }
          this.broadcastStep(rb);
          this.welcomeDeferred();
          windowSamples += indices.length;
          const now = performance.now();
          const timing = { stepMs: now - stepStart, slowestComputeMs: Math.max(...contributions.map((x) => x.computeMs)), updateMs };
          this.recentStepMs.push(timing.stepMs);
          if (this.recentStepMs.length > STRAGGLER_WINDOW) this.recentStepMs.shift();
          this.recordStep(round, { seconds: timing.stepMs / 1000, samples: indices.length, loss, accuracy: correct / (indices.length * (this.train.labelsPerSample ?? 1)) });
          this.reporter.step({
            epoch,
            step: this.cursor.step,
            stepsPerEpoch: ranges,
            totalSteps: this.plannedSteps,
            loss,
            samplesPerSecond: (windowSamples * 1000) / Math.max(now - windowStart, 1e-3),
            lr: this.currentLr(),
            timing,
          });
          if (now - windowStart > 2000) {
            windowStart = now;
            windowSamples = 0;
          }
          if (this.config.checkpointEvery && Math.floor(this.cursor.step / this.config.checkpointEvery) > Math.floor((this.cursor.step - span) / this.config.checkpointEvery)) {
            const { failure } = await this.checkpointReporting('periodic');
            if (failure !== null && this.config.checkpointFailure === 'stop') {
              this.failure = failure;
              this.stopRequested = true; // refuse joins, /readyz 503: as a stop request, less the timer
              interrupted = true;
              break outer;
            }
          }
        }
        const c = this.cursor;
        lastTrainLoss = c.epochLossSum / c.epochSeen;
        const valResult = this.val ? await this.evaluateSplit('validation', this.val) : undefined;
        const testResult = valResult === null ? null : await this.evaluateSplit('test', this.test);
        if (valResult === null || testResult === null) {
          // A stop abandoned the evaluation: the cursor still ends at this epoch, so a resume evaluates it.
          interrupted = true;
          break outer;
        }
        test = testResult;
        this.reporter.epoch({ epoch, trainLoss: lastTrainLoss, trainAccuracy: this.objective.loss === 'cross-entropy' ? c.epochCorrect / (c.epochSeen * (this.train.labelsPerSample ?? 1)) : NaN, test, val: valResult, seconds: (performance.now() - epochStart) / 1000, rssBytes: process.memoryUsage().rss });
        if (c.batch >= ranges) this.cursor = { ...c, epoch: epoch + 1, batch: 0, epochLossSum: 0, epochCorrect: 0, epochSeen: 0 };
        if (this.stopper && valResult && this.stopper.observe(valResult.loss, [...this.slots, ...bufferSlots(this.model)], epoch)) {
          this.log.info('early stopping', { epoch: epoch + 1, bestEpoch: this.stopper.bestEpochIndex + 1, bestValidationLoss: this.stopper.bestLoss });
          break;
        }
      }
      let final: EvalResult | null = null;
      if (!interrupted && this.stopper?.restoreBest([...this.slots, ...bufferSlots(this.model)])) {
        // The run ends with the parameters (and buffers) of its best validation epoch; the test figures follow them.
        final = await this.evaluateSplit('test', this.test);
        if (final === null) interrupted = true;
      } else if (!interrupted && test.samples === 0) {
        // Resumed from the checkpoint of a run that had already finished: nothing left to train,
        // but the summary still reports the final parameters.
        final = await this.evaluateSplit('test', this.test);
        if (final === null) interrupted = true;
      }
      if (final) test = final;
    } catch (err) {
      this.dismissWorkers('shutdown');
      throw err;
    } finally {
      if (this.deadlineTimer) clearInterval(this.deadlineTimer);
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      if (this.stopTimer) clearTimeout(this.stopTimer);
    }
    let remaining: WorkerLink[];
    let checkpoint: string | null;
    try {
      // The end-of-run checkpoint: a failure is reported, and --save and the summary still follow.
      const written = this.mixedStep === null ? await this.checkpointReporting('final') : { path: null, failure: null };
      if (this.mixedStep !== null) this.log.error('final checkpoint and --save not written', { reason: this.failure });
      checkpoint = written.path;
      this.failure ??= written.failure;
      if (this.config.save && this.mixedStep === null) {
        await saveCheckpoint(this.config.save, {
          params: checkpointParams(this.model),
          meta: { model: this.config.model, dataset: this.config.dataset, steps: this.cursor.step, seed: this.config.seed, runId: this.runId, numClasses: this.train.numClasses, ...(this.classNames ? { classNames: [...this.classNames] } : {}), ...(this.objective.loss !== 'cross-entropy' ? { loss: this.objective.loss } : {}), vocabulary: this.vocabulary?.toJSON() },
        });
      }
    } finally {
      // However the run ends (an error included), workers hear it is over before the server closes.
      this.finished = true;
      remaining = this.dismissWorkers(interrupted ? 'shutdown' : 'finished');
    }
    return {
      testAccuracy: test.accuracy,
      ...(test.rmse !== undefined ? { testRmse: test.rmse } : {}),
      testLoss: test.loss,
      trainLoss: lastTrainLoss,
      steps: this.cursor.step,
      samples: this.cursor.samples,
      wallSeconds: (performance.now() - started) / 1000,
      workers: remaining.length,
      workersJoined: this.workersJoined,
      workerShares: this.workerShares.map((w) => ({ ...w })),
      interrupted,
      checkpoint,
      checkpointFailures: this.checkpointFailures,
      failure: this.failure,
    };
  }

  /**
   * Scores a split between steps, yielding to the event loop so workers' heartbeats and scrapes
   * are answered; null if a stop that has waited --stop-timeout abandoned it.
   */
  private async evaluateSplit(split: 'validation' | 'test', dataset: Dataset): Promise<EvalResult | null> {
    const r = await evaluateUnlessAbandoned(this.model, dataset, () => this.abandoning, undefined, undefined, this.objective);
    if (r === null) {
      this.log.warn('stop: abandoned the evaluation', { split, lastCompletedStep: this.cursor.step });
      return null;
    }
    this.metrics.loss.set({ split }, r.loss);
    this.metrics.accuracy.set({ split }, r.accuracy);
    return r;
  }

  private recordStep(round: StepRound, s: { seconds: number; samples: number; loss: number; accuracy: number }): void {
    const m = this.metrics;
    m.steps.inc();
    m.samples.inc(s.samples);
    m.globalStep.set(this.cursor.step);
    m.stepDuration.observe(s.seconds);
    m.stragglerWait.observe(this.acceptedAt ? (this.acceptedAt.last - this.acceptedAt.first) / 1000 : 0);
    m.worldSize.set(new Set(round.shards.filter((x) => x.status === 'done').map((x) => x.workerId)).size);
    m.loss.set({ split: 'train' }, s.loss);
    m.accuracy.set({ split: 'train' }, s.accuracy);
    m.learningRate.set(this.currentLr());
  }

  /** Closes the server and every connection; safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.deadlineTimer) clearInterval(this.deadlineTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.stopTimer) clearTimeout(this.stopTimer);
    for (const t of this.joinTimers.values()) clearTimeout(t);
    this.joinTimers.clear();
    // Workers of a run that never ended (closed mid-run) hear `leave` before the server goes.
    if (this.transport) this.dismissWorkers('shutdown');
    await this.transport?.close();
  }
}

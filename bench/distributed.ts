/**
 * The distributed benchmark: what data parallelism costs and buys on one machine.
 *
 * 1. Step time of `meshgrad local --workers 2` against `meshgrad train` on the same global batch
 *    (the `mlp` preset on Fashion-MNIST, batch 128, Adam lr 1e-3). `train` is trainSingleProcess;
 *    `local` is an in-process Coordinator on 127.0.0.1 (port 0, a token, --min-workers 2,
 *    --balance throughput) with two real worker processes started from bin/meshgrad.js, as the
 *    `local` launcher starts them. Both are timed the same way: the interval between consecutive
 *    reporter step events, after a warm-up.
 * 2. Where a distributed step's time goes, from the coordinator's StepEvent timing: the slowest
 *    worker's compute, the update (gradient sum + Adam), and the rest, stepMs − slowestComputeMs −
 *    updateMs, an upper bound on the communication time (see `COMMUNICATION_NOTE`).
 * 3. The coordinator's aggregation throughput at 1M parameters from 8 simulated workers: the
 *    aggregation alone (sumInto, what the coordinator calls: workers send gradients already scaled
 *    by 1/global batch, so the step's gradient is their float64 sum), and the full receive path
 *    (decodeMessage + decodeContribution + sumInto), plus the encode of the parameter broadcast
 *    that follows every step.
 *
 * Every worker process and the coordinator's server are closed before the suite returns, whether
 * it succeeds or fails. Running it needs the build output (bin/meshgrad.js runs dist/cli/main.js).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sumInto, type Contribution } from '../coordinator/aggregate.js';
import type { VectorOps } from '../shared/optim/vector-ops.js';
import type { CoordinatorConfig } from '../coordinator/config.js';
import { decodeContribution, type ParamInfo } from '../coordinator/contribution.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { PRESETS } from '../shared/nn/presets.js';
import type { ParamSlot } from '../shared/optim/types.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import type { GradientsMessage } from '../shared/protocol/messages.js';
import { toWire } from '../shared/protocol/wire-tensor.js';
import { availableParallelism } from 'node:os';
import { setDefaultBackend } from '../shared/backend/default.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { trainSingleProcess, type StepEvent, type StepTiming, type TrainConfig, type TrainReporter } from '../shared/train/single-process.js';
import { silentLogger } from '../shared/util/log.js';
import { packageRoot } from '../shared/util/paths.js';
import { Rng } from '../shared/util/random.js';
import { checkLossDecrease, MLP_BATCH_SIZE, MLP_LR, MLP_SEED, STEP0_LOSS_TOLERANCE } from './mlp-step.js';
import { timeMs, timingStats, type TimingStats, type TrainingRunStats } from './report.js';

/** What the communication figure contains; printed under the table and repeated in docs/benchmarks.md. */
export const COMMUNICATION_NOTE =
  'communication = stepMs - slowest compute - update, per step: the assign message (encode, send, decode), the workers loading the previous ' +
  "step's parameters, the gradients' encode on the worker, the WebSocket transfer over loopback, the coordinator's decode and validation, " +
  'the parameter broadcast encode, and event-loop scheduling (3 processes share the cores). An upper bound on the wire time.';

// ---------------------------------------------------------------------------------------------
// Parts 1 and 2: train against local --workers 2
// ---------------------------------------------------------------------------------------------

export const DISTRIBUTED_WORKERS = 2;

/** The `train` flags the benchmark uses (and `local` adds the coordinator's on top). */
export function benchTrainConfig(maxSteps: number): TrainConfig {
  return {
    model: PRESETS.mlp,
    dataset: 'fashion-mnist',
    epochs: 1,
    batchSize: MLP_BATCH_SIZE,
    optimizer: 'adam',
    lr: MLP_LR,
    schedule: 'constant',
    warmupSteps: 0,
    labelSmoothing: 0,
    seed: MLP_SEED,
    maxSteps,
  };
}

/** `timing` is the interval between consecutive step events; samples/s is global batch / its mean. */
export interface RunResult extends TrainingRunStats {
  readonly run: 'train' | 'local';
}

export interface StepBreakdown {
  /** StepEvent.timing.stepMs: dispatch → new parameters sent. */
  readonly stepMs: TimingStats;
  readonly slowestComputeMs: TimingStats;
  /** Aggregation (sumInto) + clipping + Adam step on the coordinator. */
  readonly updateMs: TimingStats;
  /** stepMs − slowestComputeMs − updateMs, per step. */
  readonly communicationMs: TimingStats;
  /** Median communication / median step interval. */
  readonly communicationShare: number;
}

export interface LocalRunResult extends RunResult {
  readonly workers: number;
  readonly balance: 'throughput';
  readonly breakdown: StepBreakdown;
  /** From Coordinator.start to the first step event: worker start-up, dataset load, join. */
  readonly startupSeconds: number;
  /** The worker processes' ids (all exited when the suite returns). */
  readonly workerPids: readonly number[];
}

interface StepRecord {
  readonly at: number;
  readonly loss: number;
  readonly timing?: StepTiming;
}

/** A reporter that keeps the time, loss and timing of every step event. */
function recordingReporter(records: StepRecord[], onStep?: () => void): TrainReporter {
  return {
    step(e: StepEvent): void {
      records.push({ at: performance.now(), loss: e.loss, timing: e.timing });
      onStep?.();
    },
    epoch(): void {},
  };
}

function summarise(run: RunResult['run'], description: string, records: readonly StepRecord[], warmupSteps: number, timedSteps: number): RunResult {
  if (records.length !== warmupSteps + timedSteps) throw new Error(`${run}: expected ${warmupSteps + timedSteps} step events, got ${records.length}`);
  // The interval ending at each timed step's event; with no warm-up, the first step has no start.
  const from = Math.max(warmupSteps, 1);
  const intervals = records.slice(from).map((r, i) => r.at - records[from - 1 + i].at);
  const timed = records.slice(warmupSteps);
  const losses = timed.map((r) => r.loss);
  const timing = timingStats(intervals);
  const initialLoss = records[0]?.loss ?? NaN;
  return {
    run,
    description,
    warmupSteps,
    timing,
    samplesPerSecond: (MLP_BATCH_SIZE * 1000) / timing.meanMs,
    initialLoss,
    losses,
    firstLoss: losses[0] ?? NaN,
    lastLoss: losses[losses.length - 1] ?? NaN,
    lossCheck: checkLossDecrease(initialLoss, losses),
  };
}

/** Runs fn with the wasm backend (as the CLI uses it) as the default for new tensors. */
async function onWasm<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  const wasm = await WasmBackend.create({ threads });
  setDefaultBackend(wasm);
  try {
    return await fn();
  } finally {
    setDefaultBackend(cpu);
    await wasm.close();
  }
}

async function runTrain(warmupSteps: number, timedSteps: number): Promise<RunResult> {
  const records: StepRecord[] = [];
  // Like `meshgrad train`: the wasm backend on every core.
  await onWasm(availableParallelism(), () => trainSingleProcess(benchTrainConfig(warmupSteps + timedSteps), recordingReporter(records)));
  return summarise('train', `meshgrad train (1 process, wasm, ${availableParallelism()} threads)`, records, warmupSteps, timedSteps);
}

/** The CLI entry the workers run; its dist/ counterpart must exist. */
function workerBin(): string {
  const root = packageRoot();
  const bin = join(root, 'bin', 'meshgrad.js');
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error(`${join(root, 'dist', 'cli', 'main.js')} is missing: run \`npm run build\` first (worker processes run the built CLI)`);
  return bin;
}

/** A worker process and the tail of what it printed (for the error when it fails). */
interface WorkerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  output: string;
}

const OUTPUT_TAIL = 4000;

/** Starts a worker the way `meshgrad local` does: the token in the environment, not in argv. */
function spawnWorker(bin: string, url: string, token: string, name: string): WorkerProcess {
  // Like `meshgrad local`: the workers share the cores (threads = cores / workers).
  const threads = String(Math.max(1, Math.floor(availableParallelism() / 2)));
  const child = spawn(process.execPath, [bin, 'worker', '--connect', url, '--name', name, '--log-level', 'warn', '--backoff-max', '2', '--threads', threads, '--metrics-port', '0'], {
    env: { ...process.env, MESHGRAD_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w: WorkerProcess = { name, child, output: '' };
  const append = (d: Buffer): void => {
    w.output = (w.output + d.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return w;
}

function hasExited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once every process has exited. */
async function stopWorkers(workers: readonly WorkerProcess[], graceMs: number): Promise<void> {
  await Promise.all(
    workers.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (hasExited(child) || child.pid === undefined) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          if (hasExited(child)) {
            clearTimeout(timer);
            resolve();
          } else child.kill('SIGTERM');
        }),
    ),
  );
}

export interface LocalRunOptions {
  /** The script the workers run (default: bin/meshgrad.js); tests point it elsewhere to check the failure path. */
  readonly bin?: string;
  /** Give up (stop the run and fail) after this long without a step: worker start-up included. */
  readonly stallMs?: number;
}

async function runLocal(warmupSteps: number, timedSteps: number, options: LocalRunOptions = {}): Promise<LocalRunResult> {
  const bin = options.bin ?? workerBin();
  const stallMs = options.stallMs ?? 60_000;
  const token = randomBytes(24).toString('base64url');
  const config: CoordinatorConfig = {
    ...benchTrainConfig(warmupSteps + timedSteps),
    host: '127.0.0.1',
    port: 0,
    token,
    minWorkers: DISTRIBUTED_WORKERS,
    stepTimeoutMs: 30_000,
    heartbeatMs: 5_000,
    resume: false,
    sendSamples: false,
    balance: 'throughput',
  };
  const records: StepRecord[] = [];
  let lastProgress = performance.now();
  const started = performance.now();
  const workers: WorkerProcess[] = [];
  let coordinator: Coordinator | null = null;
  let wasm: WasmBackend | null = null;
  let watchdog: NodeJS.Timeout | null = null;
  let failure: string | null = null;
  const fail = (why: string): void => {
    if (failure === null) failure = why;
    coordinator?.requestStop();
  };
  try {
    wasm = await WasmBackend.create({ threads: 1 });
    setDefaultBackend(wasm);
    coordinator = await Coordinator.start(config, recordingReporter(records, () => (lastProgress = performance.now())), silentLogger);
    const url = coordinator.url;
    for (let i = 1; i <= DISTRIBUTED_WORKERS; i++) {
      const w = spawnWorker(bin, url, token, `w${i}`);
      workers.push(w);
      w.child.once('error', (err) => fail(`worker ${w.name} could not be started: ${err.message}`));
      w.child.once('exit', (code, signal) => {
        if (records.length < warmupSteps + timedSteps) fail(`worker ${w.name} exited (${code ?? signal}) during the run`);
      });
    }
    watchdog = setInterval(() => {
      if (records.length < warmupSteps + timedSteps && performance.now() - lastProgress > stallMs) fail(`no step in ${stallMs / 1000} s (${records.length} of ${warmupSteps + timedSteps} done)`);
    }, 250);
    const summary = await coordinator.run();
    if (failure !== null || summary.interrupted || summary.steps !== warmupSteps + timedSteps) {
      const outputs = workers.map((w) => `[${w.name}] ${w.output.trim() || '(no output)'}`).join('\n');
      throw new Error(`the distributed run failed: ${failure ?? `stopped after ${summary.steps} steps`}\n${outputs}`);
    }
  } finally {
    if (watchdog) clearInterval(watchdog);
    await coordinator?.close();
    setDefaultBackend(cpu);
    await wasm?.close();
    await stopWorkers(workers, 5000);
  }

  const base = summarise('local', `meshgrad local --workers ${DISTRIBUTED_WORKERS} (coordinator + ${DISTRIBUTED_WORKERS} worker processes)`, records, warmupSteps, timedSteps);
  const timings = records.slice(warmupSteps).map((r) => {
    if (!r.timing) throw new Error('internal: a distributed step event without timing');
    return r.timing;
  });
  const communication = timings.map((t) => t.stepMs - t.slowestComputeMs - t.updateMs);
  const communicationMs = timingStats(communication);
  return {
    ...base,
    workers: DISTRIBUTED_WORKERS,
    balance: 'throughput',
    breakdown: {
      stepMs: timingStats(timings.map((t) => t.stepMs)),
      slowestComputeMs: timingStats(timings.map((t) => t.slowestComputeMs)),
      updateMs: timingStats(timings.map((t) => t.updateMs)),
      communicationMs,
      communicationShare: communicationMs.medianMs / base.timing.medianMs,
    },
    startupSeconds: ((records[0]?.at ?? NaN) - started) / 1000,
    workerPids: workers.map((w) => w.child.pid ?? -1),
  };
}

// ---------------------------------------------------------------------------------------------
// Part 3: aggregation throughput
// ---------------------------------------------------------------------------------------------

export interface AggregationOptions {
  readonly workers?: number;
  readonly tensors?: number;
  readonly paramsPerTensor?: number;
  readonly reps?: number;
  readonly seed?: number;
  /** The wasm backend's kernels, to measure the SIMD sum as well. */
  readonly vectorOps?: VectorOps;
}

export interface ThroughputMeasurement {
  readonly timing: TimingStats;
  /** Bytes processed / median time, in GB/s (1 GB = 1e9 bytes). */
  readonly gbPerSecond: number;
}

export interface AggregationResult {
  readonly workers: number;
  readonly tensors: number;
  readonly paramsPerTensor: number;
  readonly parameters: number;
  /** Gradient bytes from one worker (4 per parameter). */
  readonly gradientBytes: number;
  /** Size of one encoded gradients message. */
  readonly frameBytes: number;
  readonly reps: number;
  /** sumInto over `workers` decoded contributions (GB/s of gradients aggregated). */
  readonly aggregate: ThroughputMeasurement;
  /** The same with the wasm backend's SIMD sum kernel (arrays in wasm memory), as the coordinator runs it. */
  readonly aggregateSimd: ThroughputMeasurement | null;
  /** decodeMessage + decodeContribution of the `workers` frames (GB/s of gradients decoded). */
  readonly decode: ThroughputMeasurement;
  /** decode + validation + sumInto: the coordinator's per-step receive path. */
  readonly receivePath: ThroughputMeasurement;
  /** encodeMessage of the `params` broadcast (GB/s of parameters encoded). */
  readonly paramsEncode: ThroughputMeasurement & { readonly frameBytes: number };
  /** Largest |sumInto − float64 sum| over the parameters (float32 rounding). */
  readonly maxAbsError: number;
  /** The receive path produced exactly sumInto's result. */
  readonly receivePathMatches: boolean;
  readonly ok: boolean;
}

/** One warm-up call, then `reps` timed ones. */
function timeReps(fn: () => void, reps: number): number[] {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(timeMs(fn));
  return times;
}

function throughput(times: readonly number[], bytes: number): ThroughputMeasurement {
  const timing = timingStats(times);
  return { timing, gbPerSecond: bytes / (timing.medianMs * 1e6) };
}

export function runAggregationBench(options: AggregationOptions = {}): AggregationResult {
  const workers = options.workers ?? 8;
  const tensors = options.tensors ?? 4;
  const paramsPerTensor = options.paramsPerTensor ?? 250_000;
  const reps = options.reps ?? 30;
  const rng = new Rng(options.seed ?? 11);
  const samplesPerWorker = 16;
  const paramInfo: ParamInfo[] = Array.from({ length: tensors }, (_, i) => ({ name: `p${i}`, shape: [paramsPerTensor] }));
  const randomGrad = (): Float32Array => {
    const g = new Float32Array(paramsPerTensor);
    for (let i = 0; i < g.length; i++) g[i] = (2 * rng.uniform() - 1) * 0.01;
    return g;
  };
  const grads = Array.from({ length: workers }, () => Array.from({ length: tensors }, randomGrad));
  const frames = grads.map((gs, k) => {
    const msg: GradientsMessage = {
      type: 'gradients',
      step: 0,
      version: 0,
      shard: k,
      samples: samplesPerWorker,
      loss: 1,
      correct: 0,
      computeMs: 1,
      grads: gs.map((g, i) => toWire(g, paramInfo[i].shape)),
    };
    return encodeMessage(msg);
  });
  const contributions: Contribution[] = grads.map((gs) => ({ samples: samplesPerWorker, computeMs: 1, grads: gs }));
  const newSlots = (): ParamSlot[] => paramInfo.map((p) => ({ name: p.name, value: new Float32Array(paramsPerTensor), grad: null }));
  const decodeAll = (): Contribution[] => frames.map((f) => decodeContribution(decodeMessage(f) as GradientsMessage, paramInfo, samplesPerWorker));

  const gradientBytes = tensors * paramsPerTensor * 4;
  const allBytes = workers * gradientBytes;
  // The float64 accumulators are kept from step to step, as the coordinator keeps them.
  const aggregateSlots = newSlots();
  const aggregateScratch: Float64Array[] = [];
  const aggregate = throughput(
    timeReps(() => void sumInto(aggregateSlots, contributions, aggregateScratch), reps),
    allBytes,
  );
  let aggregateSimd: ThroughputMeasurement | null = null;
  if (options.vectorOps) {
    const ops = options.vectorOps;
    const inWasm: Contribution[] = contributions.map((c) => ({ ...c, grads: c.grads.map((g) => {
      const a = ops.alloc(g.length);
      a.set(g);
      return a;
    }) }));
    const simdSlots: ParamSlot[] = paramInfo.map((p) => ({ name: p.name, value: ops.alloc(paramsPerTensor), grad: null }));
    aggregateSimd = throughput(timeReps(() => void sumInto(simdSlots, inWasm, [], ops), reps), allBytes);
  }
  const decode = throughput(
    timeReps(() => void decodeAll(), reps),
    allBytes,
  );
  const receiveSlots = newSlots();
  const receiveScratch: Float64Array[] = [];
  const receivePath = throughput(
    timeReps(() => void sumInto(receiveSlots, decodeAll(), receiveScratch), reps),
    allBytes,
  );
  const params = newSlots().map((s, i) => {
    s.value.set(grads[0][i]);
    return toWire(s.value, paramInfo[i].shape);
  });
  let paramsFrame: Buffer = Buffer.alloc(0);
  const paramsEncode = throughput(
    timeReps(() => void (paramsFrame = encodeMessage({ type: 'params', version: 1, params })), reps),
    gradientBytes,
  );

  // The sum against a float64 reference, and the receive path against sumInto alone.
  let maxAbsError = 0;
  let receivePathMatches = true;
  for (let p = 0; p < tensors; p++) {
    const a = aggregateSlots[p].grad!;
    const b = receiveSlots[p].grad!;
    for (let i = 0; i < paramsPerTensor; i++) {
      let ref = 0;
      for (let k = 0; k < workers; k++) ref += grads[k][p][i];
      maxAbsError = Math.max(maxAbsError, Math.abs(a[i] - ref));
      if (a[i] !== b[i]) receivePathMatches = false;
    }
  }
  const ok = maxAbsError <= 1e-7 && receivePathMatches && paramsFrame.byteLength > gradientBytes;
  return {
    workers,
    tensors,
    paramsPerTensor,
    parameters: tensors * paramsPerTensor,
    gradientBytes,
    frameBytes: frames[0].byteLength,
    reps,
    aggregate,
    aggregateSimd,
    decode,
    receivePath,
    paramsEncode: { ...paramsEncode, frameBytes: paramsFrame.byteLength },
    maxAbsError,
    receivePathMatches,
    ok,
  };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export interface DistributedSuiteResult {
  readonly model: string;
  readonly batchSize: number;
  readonly optimizer: string;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly train: RunResult;
  readonly local: LocalRunResult;
  /** train median / local median (> 1: two workers are faster than one process). */
  readonly localSpeedup: number;
  /** local's step-0 loss equals train's to within STEP0_LOSS_TOLERANCE (same weights, same batch). */
  readonly initialLossMatches: boolean;
  /** max |local loss − train loss| over the timed steps: how closely the two runs agree (not checked). */
  readonly maxTimedLossDifference: number;
  readonly aggregation: AggregationResult;
  /** Both runs' losses finite and going down, their step-0 losses equal, the aggregation correct. */
  readonly ok: boolean;
}

export interface DistributedSuiteOptions extends LocalRunOptions {
  readonly quick?: boolean;
  readonly warmupSteps?: number;
  readonly timedSteps?: number;
  readonly aggregation?: AggregationOptions;
  readonly log?: (line: string) => void;
}

export async function runDistributedSuite(options: DistributedSuiteOptions = {}): Promise<DistributedSuiteResult> {
  const quick = options.quick ?? false;
  const warmupSteps = options.warmupSteps ?? (quick ? 3 : 15);
  const timedSteps = options.timedSteps ?? (quick ? 10 : 100);
  const log = options.log ?? (() => {});

  log(`  train (1 process): ${warmupSteps} warm-up + ${timedSteps} timed steps ...`);
  const train = await runTrain(warmupSteps, timedSteps);
  log(`  local (coordinator + ${DISTRIBUTED_WORKERS} worker processes): ${warmupSteps} warm-up + ${timedSteps} timed steps ...`);
  const local = await runLocal(warmupSteps, timedSteps, options);
  const aggregationOptions: AggregationOptions = { reps: quick ? 5 : 30, ...options.aggregation };
  log(`  aggregation: ${aggregationOptions.workers ?? 8} simulated workers, ${aggregationOptions.reps} repetitions ...`);
  const simd = await WasmBackend.create({ threads: 1 });
  const aggregation = runAggregationBench({ ...aggregationOptions, vectorOps: simd.vectorOps() });
  await simd.close();

  const initialLossMatches = Math.abs(local.initialLoss - train.initialLoss) <= STEP0_LOSS_TOLERANCE;
  return {
    model: 'mlp 784-256-128-10 (ReLU)',
    batchSize: MLP_BATCH_SIZE,
    optimizer: `adam lr ${MLP_LR}`,
    warmupSteps,
    timedSteps,
    train,
    local,
    localSpeedup: train.timing.medianMs / local.timing.medianMs,
    initialLossMatches,
    maxTimedLossDifference: Math.max(...local.losses.map((l, i) => Math.abs(l - train.losses[i]))),
    aggregation,
    ok: train.lossCheck.passed && local.lossCheck.passed && initialLossMatches && aggregation.ok,
  };
}

/** `meshgrad coordinator`: serve a distributed run to workers that connect over WebSocket. */

import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Registry } from 'prom-client';
import { nonNegativeFloat, port, positiveFloat, positiveInt } from '../cli/flags.js';
import { writeFileAtomic } from '../shared/checkpoint/atomic.js';
import { preflight } from '../cli/preflight.js';
import { addMetricsOptions, COORDINATOR_METRICS_PORT, lingerMetrics, lingerOption, metricsEndpoint, serveMetrics, type MetricsEndpoint, type MetricsFlags } from '../cli/metrics-options.js';
import type { MetricsServer } from '../shared/metrics/http-server.js';
import { resolveToken, tokenFileOption, type TokenFlags } from '../cli/token.js';
import { createCliLogger, LOG_LEVELS, type LogLevel } from '../cli/logger.js';
import { createLogReporter } from '../cli/log-reporter.js';
import type { Logger } from '../shared/util/log.js';
import { createReporter, type Output } from '../cli/progress.js';
import { addBackendOptions, configureBackend, hostBackendFlags } from '../cli/backend-options.js';
import { addTrainingOptions, loadModuleFlag, trainConfigFrom, type TrainFlags } from '../cli/train-command.js';
import { distributedConfigOf, RunRecorder, type RunRecord } from '../cli/run-record.js';
import { COMPRESSION_MODES, type CompressionMode } from '../shared/protocol/wire-compressed.js';
import type { CheckpointFailurePolicy, CoordinatorConfig } from './config.js';
import { Coordinator, DEFAULT_BUCKET_BYTES, DEFAULT_JOIN_TIMEOUT_MS, DEFAULT_STOP_TIMEOUT_MS, type CoordinatorSummary } from './coordinator.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from './transport.js';
import { latestPath } from './run-checkpoint.js';
import { createCoordinatorMetrics } from './metrics.js';

export interface CoordinatorFlags extends TrainFlags, MetricsFlags, TokenFlags {
  host: string;
  port: number;
  minWorkers: number;
  stepTimeout: number;
  heartbeat: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  checkpointFailure: CheckpointFailurePolicy;
  stopTimeout: number;
  joinTimeout: number;
  handshakeTimeout: number;
  resume?: ResumeMode;
  sendSamples?: boolean;
  balance: 'throughput' | 'even';
  bucketMb: number;
  syncEvery: number;
  outerLr?: number;
  outerMomentum?: number;
  /** commander's --no-speculation sets this false. */
  speculation: boolean;
  compress: CompressionMode;
  logLevel: LogLevel;
}

const env = (o: Option, name: string): Option => o.env(`MESHGRAD_${name}`);

/** `--resume` alone (or MESHGRAD_RESUME=true / 1 / always) must resume; `auto` resumes when it can. */
export type ResumeMode = 'always' | 'auto' | true;

function resumeMode(value: string): ResumeMode {
  if (value === 'auto') return 'auto';
  if (value === 'always' || value === 'true' || value === '1') return 'always';
  throw new InvalidArgumentError(`'${value}' is not a resume mode: use --resume alone, or --resume auto`);
}

export function addCoordinatorOptions(cmd: Command): Command {
  return addMetricsOptions(addBackendOptions(addTrainingOptions(cmd)), COORDINATOR_METRICS_PORT, '/metrics, /healthz and /readyz')
    .addOption(env(new Option('--host <addr>', 'address to listen on').default('0.0.0.0'), 'HOST'))
    .addOption(env(new Option('--port <n>', 'port to listen on (0: any free port)').argParser(port).default(7070), 'PORT'))
    .addOption(env(new Option('--token <secret>', 'shared token workers must present (required: this or --token-file)'), 'TOKEN'))
    .addOption(tokenFileOption())
    .addOption(env(new Option('--min-workers <n>', 'workers needed before training starts or continues').argParser(positiveInt).default(1), 'MIN_WORKERS'))
    .addOption(env(new Option('--step-timeout <seconds>', 'drop a worker that has not returned its shard after this long').argParser(positiveFloat).default(30), 'STEP_TIMEOUT'))
    .addOption(env(new Option('--heartbeat <seconds>', 'heartbeat interval').argParser(positiveFloat).default(5), 'HEARTBEAT'))
    .addOption(env(new Option('--checkpoint-dir <dir>', 'write checkpoints here (latest.safetensors)'), 'CHECKPOINT_DIR'))
    .addOption(env(new Option('--checkpoint-every <steps>', 'checkpoint every n steps (and always at the end)').argParser(positiveInt), 'CHECKPOINT_EVERY'))
    .addOption(env(new Option('--checkpoint-failure <policy>', "when a periodic checkpoint cannot be written (a full disk; logged, counted in meshgrad_checkpoint_failures_total, the previous checkpoint kept): 'continue' training, or 'stop' the run as SIGTERM does (--save and --summary-json written) and exit 1").choices(['continue', 'stop']).default('continue'), 'CHECKPOINT_FAILURE'))
    .addOption(env(new Option('--stop-timeout <seconds>', 'on SIGINT/SIGTERM, how long to wait for the step in flight (a frozen worker may hold it); then abandon it, checkpoint the last completed step and exit 0. Keep it well below the kill timeout (docker stop: 10 s)').argParser(nonNegativeFloat).default(DEFAULT_STOP_TIMEOUT_MS / 1000), 'STOP_TIMEOUT'))
    .addOption(env(new Option('--join-timeout <seconds>', "close a connection (code 4007) that has not sent 'join' this long after its WebSocket opened").argParser(positiveFloat).default(DEFAULT_JOIN_TIMEOUT_MS / 1000), 'JOIN_TIMEOUT'))
    .addOption(env(new Option('--handshake-timeout <seconds>', 'destroy a TCP connection that has not completed its HTTP upgrade this long after it opened (half-open or trickling clients)').argParser(positiveFloat).default(DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000), 'HANDSHAKE_TIMEOUT'))
    .addOption(env(new Option('--resume [when]', "continue from --checkpoint-dir's latest checkpoint; 'auto': only if there is one, else start a new run (for restarted containers)").argParser(resumeMode), 'RESUME'))
    .addOption(env(new Option('--send-samples', 'send the samples themselves to workers instead of indices'), 'SEND_SAMPLES'))
    .addOption(env(new Option('--balance <mode>', "how batches are split: 'throughput' in proportion to each worker's measured speed (at least one sample each; the split follows timing, so runs agree only to float rounding), 'even' in equal pieces (the same seed and worker count reproduce a run bit for bit)").choices(['throughput', 'even']).default('throughput'), 'BALANCE'))
    .addOption(env(new Option('--bucket-mb <mb>', "gradient bucket size in MB (the parameters cut into runs of about this size, from the last layer back): each bucket's gradients leave the worker while backward goes on, and the coordinator steps each bucket and sends its parameters as soon as every shard has it. 0: one message each way per step").argParser(nonNegativeFloat).default(DEFAULT_BUCKET_BYTES / (1024 * 1024)), 'BUCKET_MB'))
    .addOption(env(new Option('--sync-every <steps>', 'local updates (local SGD / DiLoCo): each worker takes this many steps with its own inner optimizer (--optimizer, --lr, the schedule) on its share of as many batches, then sends its parameter change; the coordinator averages the changes and applies them with SGD with Nesterov momentum (--outer-lr, --outer-momentum). 1: synchronous training').argParser(positiveInt).default(1), 'SYNC_EVERY'))
    .addOption(env(new Option('--outer-lr <rate>', "with --sync-every > 1: the outer optimizer's learning rate (default: DiLoCo's 0.7 from --sync-every 16 on, else 1, which with --outer-momentum 0 averages the workers' parameters)").argParser(nonNegativeFloat), 'OUTER_LR'))
    .addOption(env(new Option('--outer-momentum <m>', "with --sync-every > 1: the outer optimizer's Nesterov momentum (default: DiLoCo's 0.9 from --sync-every 16 on, else 0; measured in docs/training.md)").argParser(nonNegativeFloat), 'OUTER_MOMENTUM'))
    .addOption(env(new Option('--no-speculation', "never copy a late shard to an idle worker (by default a shard held 2.5x longer than recent shards took, at least 0.1 s, is re-run by an idle worker and the first result is used; any worker computes a shard to the same bits, dropout included)"), 'NO_SPECULATION'))
    .addOption(env(new Option('--compress <mode>', "how gradients and parameter updates travel: 'none' (float32), 'fp16' or 'bf16' (16 bits), 'int8' (8 bits with a per-tensor scale); workers carry what rounding drops into later steps (error feedback), and the coordinator's parameters and optimizer state stay float32").choices(COMPRESSION_MODES).default('none'), 'COMPRESS'))
    .addOption(env(new Option('--log-level <level>', 'least severe log level shown').choices(LOG_LEVELS).default('info'), 'LOG_LEVEL'));
}

export function coordinatorConfigFrom(flags: CoordinatorFlags, overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  const token = overrides.token !== undefined ? overrides.token : resolveToken(flags);
  if (!token) throw new Error('a token is required: pass --token or --token-file (or set MESHGRAD_TOKEN or MESHGRAD_TOKEN_FILE)');
  if (flags.resume && flags.resume !== 'auto' && !flags.checkpointDir) throw new Error('--resume needs --checkpoint-dir');
  // auto: resume exactly when the directory already holds a checkpoint (a restarted pod or container).
  const resume = flags.resume === 'auto' ? flags.checkpointDir !== undefined && existsSync(latestPath(flags.checkpointDir)) : Boolean(flags.resume);
  return {
    ...trainConfigFrom(flags),
    host: flags.host,
    port: flags.port,
    token,
    minWorkers: flags.minWorkers,
    stepTimeoutMs: flags.stepTimeout * 1000,
    heartbeatMs: flags.heartbeat * 1000,
    checkpointDir: flags.checkpointDir,
    checkpointEvery: flags.checkpointEvery,
    checkpointFailure: flags.checkpointFailure,
    stopTimeoutMs: flags.stopTimeout * 1000,
    joinTimeoutMs: flags.joinTimeout * 1000,
    handshakeTimeoutMs: flags.handshakeTimeout * 1000,
    resume,
    sendSamples: flags.sendSamples ?? false,
    balance: flags.balance,
    speculation: flags.speculation !== false,
    bucketBytes: Math.round(flags.bucketMb * 1024 * 1024),
    syncEvery: flags.syncEvery,
    outerLr: flags.outerLr,
    outerMomentum: flags.outerMomentum,
    compress: flags.compress,
    ...overrides,
  };
}

/**
 * Runs a coordinator until the run ends or SIGINT/SIGTERM stops it; returns its summary. The
 * metrics endpoint (unless `metrics` is null) is bound first, so a busy port fails before anything
 * else starts; /readyz turns 200 once the coordinator accepts workers.
 */
export async function runCoordinator(
  config: CoordinatorConfig,
  out: Output,
  interactive: boolean,
  logLevel: LogLevel,
  metrics: MetricsEndpoint | null,
  onListening?: (c: Coordinator) => void | Promise<void>,
  /** Progress as text lines even off a terminal (`local`, a developer's tool); else JSON log events. */
  textProgress = false,
  /** Runs once the run has ended, while the metrics endpoint is still up (it closes after). */
  afterRun?: (summary: CoordinatorSummary, server: MetricsServer | null, log: Logger) => Promise<void>,
  /** Records the epochs (--summary-json's history, --metrics-csv, history.json in --checkpoint-dir). */
  recorder?: RunRecorder,
): Promise<CoordinatorSummary> {
  const log = createCliLogger({ role: 'coordinator', level: logLevel, json: !interactive });
  const shown = interactive || textProgress ? createReporter(out, interactive) : createLogReporter(log);
  const reporter = recorder ? recorder.wrap(shown) : shown;
  const registry = new Registry();
  let coordinator: Coordinator | null = null;
  const server = await serveMetrics(metrics, registry, log, () => coordinator?.accepting ?? false);
  try {
    coordinator = await Coordinator.start(config, reporter, log, createCoordinatorMetrics(registry));
  } catch (err) {
    await server?.close();
    throw listenError(err, config);
  }
  try {
    const summary = await runStarted(coordinator, onListening);
    await afterRun?.(summary, server, log);
    return summary;
  } finally {
    await server?.close();
  }
}

/** Node's error for a failed listen, as one line naming the flag (--port, --host) and the value. */
function listenError(err: unknown, config: CoordinatorConfig): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return new Error(`--port ${config.port}: ${where} is already in use (another coordinator? --port 0 picks a free port)`);
  if (code === 'EACCES') return new Error(`--port ${config.port}: not permitted to listen on ${where} (ports below 1024 need privileges)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new Error(`--host ${config.host}: cannot listen on ${where}: not an address of this machine (${code})`);
  return err;
}

/** The checks of a coordinator run that need no data or socket (cli/preflight.ts). */
export function preflightCoordinator(config: CoordinatorConfig, flags: CoordinatorFlags): void {
  preflight(config, { save: config.save, summaryJson: flags.summaryJson, metricsCsv: flags.metricsCsv, checkpointDir: config.checkpointDir });
}

/**
 * The recorder of a coordinator or local run (after the preflight, before any worker joins): its
 * configuration, --metrics-csv, and history.json in --checkpoint-dir (continued on --resume).
 */
export function coordinatorRecorder(command: 'coordinator' | 'local', config: CoordinatorConfig, flags: CoordinatorFlags, backendDescription: string, workers: number | null): RunRecorder {
  return new RunRecorder(distributedConfigOf(command, config, { name: flags.backend, description: backendDescription }, workers), {
    metricsFile: flags.metricsCsv,
    checkpointDir: config.checkpointDir,
    resume: config.resume,
  });
}

async function runStarted(coordinator: Coordinator, onListening?: (c: Coordinator) => void | Promise<void>): Promise<CoordinatorSummary> {
  let signals = 0;
  // The first signal stops at the next step boundary (with a checkpoint); a second one forces out.
  const stop = (): void => {
    if (++signals > 1) process.exit(130);
    coordinator.requestStop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await onListening?.(coordinator);
    return await coordinator.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await coordinator.close();
  }
}

/**
 * Prints the summary and writes --summary-json (atomically). A run that did not end as asked
 * (summary.failure: a checkpoint that could not be written) then throws that failure, so the
 * command exits 1 with it, after everything that could be written was.
 */
export async function reportSummary(out: Output & { summary?(s: CoordinatorSummary): void }, summary: CoordinatorSummary, save: string | undefined, summaryJson: string | undefined, record?: RunRecord): Promise<void> {
  if (out.summary) out.summary(summary);
  else if (summary.interrupted) out.write(`stopped after ${summary.steps} steps${summary.checkpoint ? `; checkpoint ${summary.checkpoint}` : ''}`);
  else out.write(`${summary.testRmse !== undefined ? `test RMSE ${summary.testRmse.toPrecision(5)}` : `test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%`}, test loss ${summary.testLoss.toFixed(4)}, ${summary.steps} steps in ${summary.wallSeconds.toFixed(1)} s with ${summary.workersJoined} worker(s)`);
  if (summary.checkpoint) out.write(`checkpoint: ${summary.checkpoint}`);
  if (save) out.write(`saved parameters to ${save}`);
  if (summaryJson) {
    // The existing figures first, then (when recorded) the configuration and the per-epoch history.
    await writeFileAtomic(summaryJson, new TextEncoder().encode(`${JSON.stringify(record ? { ...summary, ...record } : summary, null, 2)}\n`));
    out.write(`wrote summary to ${summaryJson}`);
  }
  if (summary.failure !== null) throw new Error(summary.failure);
}

/** An Output whose lines become log events; the summary line's figures become fields. */
function jsonLines(log: Logger): Output & { summary(s: CoordinatorSummary): void } {
  return { write: (line) => log.info(line), summary: (s) => log.info('summary', { ...s }) };
}

export function coordinatorCommand(out: Output, interactive: boolean): Command {
  const cmd = new Command('coordinator').description('coordinate a distributed run: shard data, average gradients, step the optimizer');
  addCoordinatorOptions(cmd).addOption(lingerOption());
  cmd.action(async (flags: CoordinatorFlags & { linger: number }) => {
    await loadModuleFlag(flags);
    const config = coordinatorConfigFrom(flags);
    preflightCoordinator(config, flags);
    // Off a terminal every line is a JSON log event (a service's output goes to a log collector),
    // the closing summary included: `summary` carries its figures as fields.
    const lines: Output = interactive ? out : jsonLines(createCliLogger({ role: 'coordinator', level: flags.logLevel, json: true }));
    const active = await configureBackend(hostBackendFlags(flags));
    let recorder: RunRecorder;
    try {
      recorder = coordinatorRecorder('coordinator', config, flags, active.description, null);
    } catch (err) {
      await active.close();
      throw err;
    }
    // The summary is reported while /metrics is still up, then --linger keeps it up for a last
    // scrape (not after a stop by signal: docker stop and Kubernetes wait only so long).
    await runCoordinator(config, lines, interactive, flags.logLevel, metricsEndpoint(flags, cmd), undefined, false, async (summary, server, log) => {
      try {
        await recorder.close();
        await reportSummary(lines, summary, config.save, flags.summaryJson, recorder.record());
      } finally {
        if (!summary.interrupted) await lingerMetrics(server, flags.linger, log);
      }
    }, recorder).finally(() => Promise.all([active.close(), recorder.close()]));
  });
  return cmd;
}

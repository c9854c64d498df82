/** `meshgrad worker`: join a coordinator and compute gradients for it until the run ends. */

import { Command, InvalidArgumentError, Option } from 'commander';
import { parseUserDataset, USER_DATASET_FORMS } from '../shared/data/user-datasets.js';
import { Registry } from 'prom-client';
import { positiveFloat, positiveInt } from '../cli/flags.js';
import { createCliLogger, LOG_LEVELS, type LogLevel } from '../cli/logger.js';
import { addMetricsOptions, lingerMetrics, lingerOption, metricsEndpoint, serveMetrics, WORKER_METRICS_PORT, type MetricsFlags } from '../cli/metrics-options.js';
import { resolveToken, tokenFileOption, type TokenFlags } from '../cli/token.js';
import { createWorkerMetrics } from './metrics.js';
import { MeshWorker, type WorkerConfig } from './worker.js';
import type { Logger } from '../shared/util/log.js';
import { addBackendOptions, type BackendFlags } from '../cli/backend-options.js';

interface WorkerFlags extends BackendFlags, MetricsFlags, TokenFlags {
  connect: string;
  name?: string;
  dataDir?: string;
  module?: string;
  /** User datasets (KIND:PATH) this worker reads itself (--dataset, repeatable). */
  dataset: string[];
  localData: boolean;
  backoffMax: number;
  giveUpAfter?: number;
  maxPayloadMb: number;
  computeTimeout: number;
  logLevel: LogLevel;
  linger: number;
}

const env = (o: Option, name: string): Option => o.env(`MESHGRAD_${name}`);

/** --dataset, repeatable: a well-formed KIND:PATH (the bundled datasets are offered already). */
function collectDataset(value: string, previous: string[]): string[] {
  let ref;
  try {
    ref = parseUserDataset(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (ref === null) throw new InvalidArgumentError(`'${value}' is not a user dataset; expected one of ${USER_DATASET_FORMS.join(', ')} (bundled datasets need no --dataset)`);
  return [...previous, value];
}

function checkUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--connect '${value}' is not a URL (expected ws://host:port)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`--connect '${value}' must be a ws:// or wss:// URL`);
  return value;
}

export function workerCommand(interactive: boolean): Command {
  const cmd = new Command('worker')
    .description('join a coordinator and compute gradients on assigned shards')
    .addOption(env(new Option('--connect <url>', 'coordinator URL, e.g. ws://127.0.0.1:7070').makeOptionMandatory(), 'CONNECT'))
    .addOption(env(new Option('--token <secret>', 'the shared token the coordinator expects'), 'TOKEN'))
    .addOption(tokenFileOption())
    .addOption(env(new Option('--name <name>', 'a name for this worker in the coordinator logs'), 'WORKER_NAME'))
    .addOption(env(new Option('--data-dir <dir>', 'read dataset files from this directory'), 'DATA_DIR'))
    .addOption(env(new Option('--module <file>', "the JavaScript module file that defines the run's model in code (defineModel), when the coordinator trains one: the same file the coordinator was given"), 'MODULE'))
    .addOption(
      env(
        new Option('--dataset <KIND:PATH>', "a user dataset this worker reads its shards from itself, spelled exactly as the coordinator's --dataset (the path is read on this machine, relative to --data-dir); repeatable. The coordinator checks it holds the same samples; without it, samples come over the wire")
          .argParser(collectDataset)
          .default([]),
        'DATASET',
      ),
    )
    .addOption(env(new Option('--no-local-data', 'ask the coordinator to send samples instead of loading the dataset here'), 'NO_LOCAL_DATA'))
    .addOption(env(new Option('--backoff-max <seconds>', 'longest wait between reconnection attempts').argParser(positiveFloat).default(10), 'BACKOFF_MAX'))
    .addOption(env(new Option('--give-up-after <seconds>', 'exit if no coordinator accepts this worker for this long (default: keep trying)').argParser(positiveFloat), 'GIVE_UP_AFTER'))
    .addOption(env(new Option('--max-payload-mb <n>', 'largest message accepted from the coordinator, in MiB').argParser(positiveInt).default(1024), 'MAX_PAYLOAD_MB'))
    .addOption(
      env(
        new Option('--compute-timeout <seconds>', 'treat the compute thread as stuck when it answers nothing for this long (at least 10x the longest shard so far); a stuck worker fails /healthz, tells the coordinator and exits 1')
          .argParser(positiveFloat)
          .default(60),
        'COMPUTE_TIMEOUT',
      ),
    )
    .addOption(env(new Option('--log-level <level>', 'least severe log level shown').choices(LOG_LEVELS).default('info'), 'LOG_LEVEL'));
  addMetricsOptions(addBackendOptions(cmd), WORKER_METRICS_PORT, '/metrics and /healthz').addOption(lingerOption());
  cmd.action(async (flags: WorkerFlags) => {
    const url = checkUrl(flags.connect);
    const token = resolveToken(flags) ?? null;
    const log = createCliLogger({ role: 'worker', level: flags.logLevel, json: !interactive, base: flags.name ? { worker: flags.name } : undefined });
    const registry = new Registry();
    const worker = createWorker(flags, url, token, log, registry);
    const server = await serveMetrics(metricsEndpoint(flags, cmd), registry, log, undefined, () => worker.health());
    try {
      // --linger only after a run that finished (not one stopped by a signal).
      if ((await runWorker(worker, log)) === 'finished') await lingerMetrics(server, flags.linger, log);
    } finally {
      await server?.close();
    }
  });
  return cmd;
}

function createWorker(flags: WorkerFlags, url: string, token: string | null, log: Logger, registry: Registry): MeshWorker {
  const config: WorkerConfig = {
    url,
    token,
    name: flags.name,
    // The backend lives on the worker's compute thread (see worker.ts), not on this one.
    backend: flags.backend,
    threads: flags.threads,
    dataDir: flags.dataDir,
    module: flags.module,
    localData: flags.localData,
    userDatasets: flags.dataset,
    backoffInitialMs: 250,
    backoffMaxMs: flags.backoffMax * 1000,
    giveUpAfterMs: flags.giveUpAfter === undefined ? undefined : flags.giveUpAfter * 1000,
    maxPayload: flags.maxPayloadMb * 1024 * 1024,
    computeStallMs: flags.computeTimeout * 1000,
    failpoint: process.env.MESHGRAD_FAILPOINT || undefined,
  };
  return new MeshWorker(config, log, createWorkerMetrics(registry));
}

async function runWorker(worker: MeshWorker, log: Logger): Promise<'finished' | 'stopped'> {
  const stop = (): void => worker.stop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const outcome = await worker.run();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (outcome.kind === 'refused' || outcome.kind === 'gave-up' || outcome.kind === 'failed') throw new Error(outcome.reason);
  log.info(outcome.kind === 'finished' ? 'done' : 'stopped', { steps: outcome.steps });
  return outcome.kind;
}

/**
 * `meshgrad local`: the whole system on one machine — a coordinator in this process and N worker
 * processes (real OS processes on real sockets on 127.0.0.1), one progress view, and everything
 * stopped together on Ctrl-C.
 */

import { stopProcesses } from '../shared/util/child-processes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { loadModuleFlag } from './train-command.js';
import { addCoordinatorOptions, coordinatorConfigFrom, coordinatorRecorder, preflightCoordinator, reportSummary, runCoordinator, type CoordinatorFlags } from '../coordinator/command.js';
import { metricsEndpoint } from './metrics-options.js';
import { jsonLineToText } from './logger.js';
import { resolveToken } from './token.js';
import { packageRoot } from '../shared/util/paths.js';
import { parseUserDataset } from '../shared/data/user-datasets.js';
import { positiveInt } from './flags.js';
import { configureBackend, hostBackendFlags } from './backend-options.js';
import type { Output } from './progress.js';

interface LocalFlags extends CoordinatorFlags {
  workers: number;
  workerLogLevel: string;
}

/** Local's name for its i-th worker (1-based): not `w<n>`, which the coordinator uses for connection ids. */
export function localWorkerName(i: number): string {
  return `local-${i}`;
}

/**
 * A line from a worker's stdout or stderr as local shows it. On a terminal a JSON log event becomes
 * text in the coordinator's own format, with the worker's name in the role's place (and its
 * `worker` field, the same name, dropped); off a terminal, and for any other line, the line is kept,
 * prefixed with the name.
 */
export function workerLine(name: string, line: string, interactive: boolean): string {
  return (interactive ? jsonLineToText(line, name, ['worker']) : null) ?? `[${name}] ${line}`;
}

function spawnWorker(url: string, token: string, name: string, logLevel: string, out: Output, interactive: boolean, extra: readonly string[]): ChildProcess {
  const bin = join(packageRoot(), 'bin', 'meshgrad.js');
  // Each worker serves its metrics on a free port of its own (and logs which).
  const child = spawn(process.execPath, [bin, 'worker', '--connect', url, '--name', name, '--log-level', logLevel, '--backoff-max', '2', '--metrics-port', '0', ...extra], {
    // The token travels in the environment, not argv, so `ps` does not show it.
    env: { ...process.env, MESHGRAD_TOKEN: token, MESHGRAD_TOKEN_FILE: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => out.write(workerLine(name, line, interactive)));
  }
  return child;
}

/**
 * The workers read the run's data themselves, as the coordinator does (same machine, same files):
 * the same --data-dir, and a user dataset offered by the same `KIND:PATH` string (relative paths
 * resolve alike, the workers sharing this process's working directory).
 */
export function localDataFlags(dataset: string, dataDir: string | undefined): string[] {
  return [...(dataDir !== undefined ? ['--data-dir', resolve(dataDir)] : []), ...(parseUserDataset(dataset) !== null ? ['--dataset', dataset] : [])];
}

/** --help says what `local` does with the coordinator's options it gives other defaults. */
function describeLocalDefaults(cmd: Command): void {
  const option = (long: string): Option => {
    const found = cmd.options.find((o) => o.long === long);
    if (!found) throw new Error(`local: no option ${long}`);
    return found;
  };
  const host = option('--host');
  host.description = 'address the coordinator listens on (the workers connect to it there)';
  host.defaultValue = '127.0.0.1';
  const port = option('--port');
  port.description = 'port the coordinator listens on';
  port.defaultValue = 0;
  port.defaultValueDescription = '0, any free port';
  const token = option('--token');
  token.description = 'token the workers present (default: a fresh random one, passed to the workers)';
  const minWorkers = option('--min-workers');
  minWorkers.description = 'workers needed before training starts or continues';
  minWorkers.defaultValueDescription = 'the --workers count';
  const threads = option('--threads');
  threads.description = `threads in all, divided evenly among the worker processes (at least 1 each; default: the cores available, ${availableParallelism()} here)`;
}

export function localCommand(out: Output, interactive: boolean): Command {
  const cmd = new Command('local').description('run a coordinator and N worker processes on this machine');
  addCoordinatorOptions(cmd);
  cmd
    .addOption(new Option('--workers <n>', 'worker processes to start').argParser(positiveInt).default(2).env('MESHGRAD_WORKERS'))
    .addOption(new Option('--worker-log-level <level>', 'log level of the workers').choices(['debug', 'info', 'warn', 'error']).default('info').env('MESHGRAD_WORKER_LOG_LEVEL'));
  // Locally the coordinator listens on loopback, on any free port, with a fresh random token.
  cmd.setOptionValueWithSource('host', '127.0.0.1', 'default');
  cmd.setOptionValueWithSource('port', 0, 'default');
  describeLocalDefaults(cmd);
  cmd.action(async (flags: LocalFlags) => {
    const token = resolveToken(flags) ?? randomBytes(24).toString('base64url');
    const minWorkers = cmd.getOptionValueSource('minWorkers') === 'default' ? flags.workers : flags.minWorkers;
    await loadModuleFlag(flags);
    const config = coordinatorConfigFrom(flags, { token, minWorkers });
    preflightCoordinator(config, flags);
    const children: ChildProcess[] = [];
    // The workers compute at the same time, so they share the cores; the coordinator computes
    // (evaluation) only while they wait.
    const cores = flags.threads ?? availableParallelism();
    const workerThreads = Math.max(1, Math.floor(cores / flags.workers));
    const active = await configureBackend(hostBackendFlags(flags));
    let recorder;
    try {
      recorder = coordinatorRecorder('local', config, flags, `${flags.backend} on ${flags.workers} worker process(es) × ${workerThreads} thread(s)`, flags.workers);
    } catch (err) {
      await active.close();
      throw err;
    }
    out.write(`local run: ${flags.workers} worker process(es) × ${workerThreads} thread(s), ${config.model.name} on ${config.dataset}, global batch ${config.batchSize}, backend ${flags.backend}${config.compress && config.compress !== 'none' ? `, --compress ${config.compress}` : ''}`);
    try {
      const summary = await runCoordinator(config, out, interactive, flags.logLevel, metricsEndpoint(flags, cmd), (c) => {
        out.write(`coordinator listening on ${c.url}`);
        const extra = [`--backend`, flags.backend, '--threads', String(workerThreads), ...(flags.module !== undefined ? ['--module', resolve(flags.module)] : []), ...localDataFlags(config.dataset, config.dataDir)];
        for (let i = 1; i <= flags.workers; i++) children.push(spawnWorker(c.url, token, localWorkerName(i), flags.workerLogLevel, out, interactive, extra));
      }, true, undefined, recorder); // a developer's view: progress and epochs as text lines, as `train` prints them
      await recorder.close();
      await reportSummary(out, summary, config.save, flags.summaryJson, recorder.record());
    } finally {
      await stopProcesses(children, 5000, null);
      await Promise.all([active.close(), recorder.close()]);
    }
  });
  return cmd;
}

/**
 * The coordinator side of `--suite network`, run inside the testbed's node 0 as its own process:
 *
 *   node dist/bench/network-role.js --role-result FILE [--role-skip-steps N] [--role-iface eth0] COORDINATOR-FLAGS...
 *
 * Every flag other than its own three is a `meshgrad coordinator` flag, parsed by the same
 * options and config building (coordinator/command.ts), so any coordinator flag (later ones too,
 * e.g. a compression or local-SGD setting) passes through unchanged. It starts an in-process
 * Coordinator with a reporter that records each StepEvent's timing and the wire byte counters
 * (every protocol frame the coordinator sends or receives, counted where the transport counts them
 * for /metrics) and the interface's rx/tx counters; prints one line `network-role listening
 * {"port":N,...}` on stdout once it listens (start it with --port 0); waits for --min-workers;
 * trains --max-steps; and writes the JSON result (NetworkRoleResult) to --role-result. The role's own
 * flags start with `--role-` so that no coordinator flag, present or future, can clash with them. Exit status 0
 * when the run completed every step, 1 otherwise (the result is written either way when it can be).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { Registry } from 'prom-client';
import { configureBackend } from '../cli/backend-options.js';
import { positiveInt } from '../cli/flags.js';
import { createCliLogger } from '../cli/logger.js';
import { addCoordinatorOptions, coordinatorConfigFrom, preflightCoordinator, type CoordinatorFlags } from '../coordinator/command.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { createCoordinatorMetrics, type CoordinatorMetrics } from '../coordinator/metrics.js';
import type { WireObserver } from '../shared/metrics/common.js';
import type { StepEvent, TrainReporter } from '../shared/train/single-process.js';
import { summariseSteps, type StepRecord, type StepRun } from './network-stats.js';

/** The start of the line the role prints once it listens; a JSON object follows. */
export const ROLE_READY_PREFIX = 'network-role listening ';

export interface RoleReady {
  readonly port: number;
  readonly url: string;
}

export interface NetworkRoleResult extends StepRun {
  /** The coordinator flags the role ran with (its own removed). */
  readonly flags: readonly string[];
  readonly model: string;
  readonly batchSize: number;
  readonly workersJoined: number;
  readonly steps: number;
  /** Every step the run asked for was done. */
  readonly completed: boolean;
  /** On the --test-samples evaluated at the end (NaN when the run stopped early: JSON null). */
  readonly testAccuracy: number | null;
  readonly wallSeconds: number;
}

interface RoleFlags extends CoordinatorFlags {
  roleResult: string;
  roleSkipSteps: number;
  roleIface?: string;
}

/** Wraps the transport's observer, keeping running totals of the bytes each way. */
function countingWire(inner: WireObserver, totals: { in: number; out: number }): WireObserver {
  return {
    sent(type, bytes) {
      totals.out += bytes;
      inner.sent(type, bytes);
    },
    received(type, bytes) {
      totals.in += bytes;
      inner.received(type, bytes);
    },
    decodeError: (code) => inner.decodeError(code),
  };
}

function readCounter(path: string): number | null {
  try {
    const v = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

export function roleCommand(): Command {
  const cmd = new Command('network-role').description('a coordinator inside the network testbed that records each step (bench/network.ts)');
  addCoordinatorOptions(cmd)
    .addOption(new Option('--role-result <file>', 'write the JSON result here').makeOptionMandatory())
    .addOption(new Option('--role-skip-steps <n>', 'warm-up steps left out of the timed figures').argParser(positiveInt).default(2))
    .addOption(new Option('--role-iface <name>', 'also count this interface\'s rx/tx bytes (/sys/class/net)'));
  return cmd.exitOverride();
}

/** The coordinator flags in argv: argv less the role's own --role-* flags (each with its value). */
export function coordinatorFlagsOf(argv: readonly string[]): string[] {
  const own = new Set(['--role-result', '--role-skip-steps', '--role-iface']);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.split('=')[0];
    if (own.has(name)) {
      if (!a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

async function runRole(flags: RoleFlags, argv: readonly string[]): Promise<number> {
  const config = coordinatorConfigFrom(flags);
  preflightCoordinator(config, flags);
  const log = createCliLogger({ role: 'coordinator', level: flags.logLevel, json: false });
  const totals = { in: 0, out: 0 };
  const base = createCoordinatorMetrics(new Registry());
  const metrics: CoordinatorMetrics = { ...base, common: { ...base.common, wire: countingWire(base.common.wire, totals) } };
  const stats = flags.roleIface !== undefined ? `/sys/class/net/${flags.roleIface}/statistics` : null;
  const records: StepRecord[] = [];
  const reporter: TrainReporter = {
    step(e: StepEvent): void {
      const t = e.timing;
      if (!t) throw new Error('internal: a coordinator step event without timing');
      records.push({
        at: performance.now(),
        stepMs: t.stepMs,
        slowestComputeMs: t.slowestComputeMs,
        updateMs: t.updateMs,
        bytesIn: totals.in,
        bytesOut: totals.out,
        ifaceRx: stats ? readCounter(`${stats}/rx_bytes`) : null,
        ifaceTx: stats ? readCounter(`${stats}/tx_bytes`) : null,
        step: e.step,
      });
    },
    epoch(): void {},
  };
  const active = await configureBackend(flags);
  const coordinator = await Coordinator.start(config, reporter, log, metrics);
  const stop = (): void => coordinator.requestStop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const ready: RoleReady = { port: coordinator.port, url: coordinator.url };
    process.stdout.write(`${ROLE_READY_PREFIX}${JSON.stringify(ready)}\n`);
    const summary = await coordinator.run();
    const completed = !summary.interrupted && config.maxSteps !== undefined && summary.steps === config.maxSteps;
    const result: NetworkRoleResult = {
      ...summariseSteps(records, Math.min(flags.roleSkipSteps, Math.max(records.length - 1, 1)), config.batchSize),
      flags: coordinatorFlagsOf(argv),
      model: config.model.name,
      batchSize: config.batchSize,
      workersJoined: summary.workersJoined,
      steps: summary.steps,
      completed,
      testAccuracy: Number.isFinite(summary.testAccuracy) ? summary.testAccuracy : null,
      wallSeconds: summary.wallSeconds,
    };
    writeFileSync(flags.roleResult, `${JSON.stringify(result)}\n`);
    return completed ? 0 : 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await coordinator.close();
    await active.close();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const cmd = roleCommand();
  let code = 1;
  cmd.action(async (flags: RoleFlags) => {
    code = await runRole(flags, argv);
  });
  await cmd.parseAsync([...argv], { from: 'user' });
  return code;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`network-role: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}

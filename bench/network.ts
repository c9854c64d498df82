/**
 * `--suite network` (issue 13): meshgrad's distributed training over an emulated network against
 * PyTorch DDP over gloo. For each bandwidth (10000, 1000, 100 Mbit/s; `--quick`: 100 only) a
 * testbed (bench/netns.ts: a coordinator node and 2 worker nodes on a shaped bridge) runs, for the
 * `cnn` preset (and `mlp` outside --quick):
 *
 * - meshgrad with 1 worker, and every NETWORK_VARIANTS entry with 2 workers (the variant's flags
 *   appended to the coordinator's); coordinator and workers 1 thread each, global batch 128;
 * - DDP-gloo with world 2 (ranks in the two worker nodes), and once per model world 1 (no
 *   communication, so its figure does not depend on the bandwidth).
 *
 * Each row: median step time, samples/s over the timed steps, bytes per step each way (meshgrad:
 * protocol frames at the coordinator, all workers together; DDP: rank 0's interface counters),
 * meshgrad's coordinator network wait per step (median of stepMs − slowest compute − update), and
 * scaling efficiency = samples/s(N) / (N × samples/s(1)), N workers against 1 at the same bandwidth
 * (DDP: world 2 against world 1). Needs root (network namespaces, tc): without it, or without
 * tbf, the suite is skipped with the reason, not failed; without torch (or gloo) the DDP rows are
 * left out, saying why. Not part of `--suite all` (that must run without root).
 */

import { spawnSync } from 'node:child_process';
import { DEFAULT_PYTHON, torchAvailability } from './model-steps.js';
import { Testbed, testbedUnavailable } from './netns.js';
import type { NetworkRoleResult } from './network-role.js';
import { runDdpInTestbed, runMeshgradInTestbed, type DdpResult } from './network-runs.js';
import { scalingEfficiency } from './network-stats.js';

/** A meshgrad setting run at every bandwidth with 2 workers: its flags are appended to the coordinator's. */
export interface NetworkVariant {
  readonly name: string;
  readonly flags: readonly string[];
}

/**
 * The meshgrad variants of the suite: the defaults (gradient buckets of 0.25 MB, overlapped with
 * backward and stepped as they complete), today's one-message exchange (`--bucket-mb 0`) beside
 * it, compressed gradients and parameter updates, and local updates (4 inner steps per exchange).
 */
export const NETWORK_VARIANTS: NetworkVariant[] = [
  { name: 'sync', flags: [] },
  { name: 'one-message', flags: ['--bucket-mb', '0'] },
  { name: 'bf16', flags: ['--compress', 'bf16'] },
  { name: 'int8', flags: ['--compress', 'int8'] },
  { name: 'sync-every 4', flags: ['--sync-every', '4'] },
];

export const NETWORK_RATES_MBIT = [10000, 1000, 100] as const;
export const QUICK_RATES_MBIT = [100] as const;
export type NetworkModel = 'cnn' | 'mlp';
export const NETWORK_WORKERS = 2;

const STEPS: Readonly<Record<NetworkModel, { warmup: number; timed: number }>> = { cnn: { warmup: 3, timed: 20 }, mlp: { warmup: 5, timed: 40 } };
const QUICK_STEPS = { warmup: 2, timed: 5 } as const;
const RUN_TIMEOUT_MS = 300_000;

export interface NetworkRow {
  readonly model: NetworkModel;
  readonly rateMbit: number;
  readonly system: 'meshgrad' | 'ddp-gloo';
  /** `1 worker`, a variant's name, or `world 1` / `world 2`. */
  readonly config: string;
  readonly workers: number;
  readonly flags: readonly string[];
  readonly medianStepMs: number | null;
  readonly samplesPerSecond: number | null;
  /** Bytes received / sent per step: meshgrad at the coordinator (protocol frames), DDP at rank 0's interface. */
  readonly bytesInPerStep: number | null;
  readonly bytesOutPerStep: number | null;
  /** meshgrad: the coordinator's interface rx/tx per step (Ethernet frames), for comparison with DDP's. */
  readonly ifaceInPerStep: number | null;
  readonly ifaceOutPerStep: number | null;
  readonly medianNetworkWaitMs: number | null;
  readonly scalingEfficiency: number | null;
  readonly testAccuracy: number | null;
  readonly error: string | null;
  /** The full result (per-step times). */
  readonly meshgrad?: NetworkRoleResult;
  readonly ddp?: DdpResult;
}

export interface NetworkSuiteResult {
  /** Null when the suite ran; else why it was skipped. */
  readonly skipped: string | null;
  /** Null when DDP ran; else why its rows are missing. */
  readonly ddpSkipped: string | null;
  readonly models: readonly NetworkModel[];
  readonly ratesMbit: readonly number[];
  readonly steps: Readonly<Partial<Record<NetworkModel, { warmup: number; timed: number }>>>;
  readonly variants: readonly NetworkVariant[];
  readonly rows: readonly NetworkRow[];
  readonly ok: boolean;
}

export interface NetworkSuiteOptions {
  readonly quick?: boolean;
  readonly log?: (line: string) => void;
  readonly models?: readonly NetworkModel[];
  readonly ratesMbit?: readonly number[];
  readonly steps?: { warmup: number; timed: number };
}

/** Null when DDP over gloo can run with `python`; else why not. */
export function ddpUnavailable(python: string = DEFAULT_PYTHON): string | null {
  const torch = torchAvailability(python);
  if (!torch.available) return torch.reason;
  const r = spawnSync(python, ['-c', 'import torch.distributed as d; import sys; sys.exit(0 if d.is_available() and d.is_gloo_available() else 3)'], { timeout: 120_000 });
  return r.status === 0 ? null : `${python}'s torch has no torch.distributed gloo backend`;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function meshgradRow(model: NetworkModel, rateMbit: number, config: string, workers: number, flags: readonly string[], r: NetworkRoleResult | null, error: string | null): NetworkRow {
  return {
    model,
    rateMbit,
    system: 'meshgrad',
    config,
    workers,
    flags,
    medianStepMs: r?.medianStepMs ?? null,
    samplesPerSecond: r?.samplesPerSecond ?? null,
    bytesInPerStep: r?.bytesReceivedPerStep ?? null,
    bytesOutPerStep: r?.bytesSentPerStep ?? null,
    ifaceInPerStep: r?.ifaceRxPerStep ?? null,
    ifaceOutPerStep: r?.ifaceTxPerStep ?? null,
    medianNetworkWaitMs: r?.medianNetworkWaitMs ?? null,
    scalingEfficiency: null,
    testAccuracy: r?.testAccuracy ?? null,
    error,
    ...(r ? { meshgrad: r } : {}),
  };
}

function ddpRow(model: NetworkModel, rateMbit: number, world: number, r: DdpResult | null, error: string | null): NetworkRow {
  return {
    model,
    rateMbit,
    system: 'ddp-gloo',
    config: `world ${world}`,
    workers: world,
    flags: [],
    medianStepMs: r?.medianMs ?? null,
    samplesPerSecond: r?.samplesPerSecond ?? null,
    bytesInPerStep: r?.rxBytesPerStep ?? null,
    bytesOutPerStep: r?.txBytesPerStep ?? null,
    ifaceInPerStep: r?.rxBytesPerStep ?? null,
    ifaceOutPerStep: r?.txBytesPerStep ?? null,
    medianNetworkWaitMs: null,
    scalingEfficiency: null,
    testAccuracy: null,
    error,
    ...(r ? { ddp: r } : {}),
  };
}

/** Fills in scaling efficiency: each N-worker row against the 1-worker row of its model, system and bandwidth. */
export function withEfficiency(rows: readonly NetworkRow[]): NetworkRow[] {
  return rows.map((row) => {
    if (row.workers <= 1 || row.samplesPerSecond === null) return row;
    const base = rows.find((b) => b.model === row.model && b.system === row.system && b.rateMbit === row.rateMbit && b.workers === 1 && b.samplesPerSecond !== null);
    return base ? { ...row, scalingEfficiency: scalingEfficiency(row.samplesPerSecond, row.workers, base.samplesPerSecond!) } : row;
  });
}

export async function runNetworkSuite(options: NetworkSuiteOptions = {}): Promise<NetworkSuiteResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? (() => {});
  const models = options.models ?? (quick ? ['cnn'] : ['cnn', 'mlp']);
  const ratesMbit = options.ratesMbit ?? (quick ? QUICK_RATES_MBIT : NETWORK_RATES_MBIT);
  const stepsOf = (m: NetworkModel): { warmup: number; timed: number } => options.steps ?? (quick ? QUICK_STEPS : STEPS[m]);
  const steps = Object.fromEntries(models.map((m) => [m, stepsOf(m)]));
  const variants = [...NETWORK_VARIANTS];
  const skipped = testbedUnavailable();
  if (skipped !== null) {
    log(`  network suite SKIPPED: ${skipped}`);
    return { skipped, ddpSkipped: null, models, ratesMbit, steps, variants, rows: [], ok: true };
  }
  const ddpSkipped = ddpUnavailable();
  if (ddpSkipped !== null) log(`  DDP-gloo rows left out: ${ddpSkipped}`);
  const rows: NetworkRow[] = [];
  const ddpWorld1 = new Map<NetworkModel, { r: DdpResult | null; error: string | null }>();
  for (const rateMbit of ratesMbit) {
    const tb = Testbed.create({ nodes: 1 + NETWORK_WORKERS, rateMbit });
    try {
      for (const model of models) {
        const s = stepsOf(model);
        const spec = { model, warmupSteps: s.warmup, timedSteps: s.timed, timeoutMs: RUN_TIMEOUT_MS };
        const mg = async (config: string, workers: number, flags: readonly string[]): Promise<void> => {
          log(`  ${rateMbit} Mbit/s ${model}: meshgrad ${config}, ${workers} worker(s)${flags.length > 0 ? ` (${flags.join(' ')})` : ''}, ${s.warmup} warm-up + ${s.timed} timed steps ...`);
          try {
            rows.push(meshgradRow(model, rateMbit, config, workers, flags, await runMeshgradInTestbed(tb, { ...spec, workers, extraFlags: flags }), null));
          } catch (err) {
            log(`    FAILED: ${errorText(err)}`);
            rows.push(meshgradRow(model, rateMbit, config, workers, flags, null, errorText(err)));
          }
        };
        await mg('1 worker', 1, []);
        for (const v of variants) await mg(v.name, NETWORK_WORKERS, v.flags);
        if (ddpSkipped !== null) continue;
        const ddp = async (world: number): Promise<{ r: DdpResult | null; error: string | null }> => {
          log(`  ${rateMbit} Mbit/s ${model}: DDP-gloo world ${world}, ${s.warmup} warm-up + ${s.timed} timed steps ...`);
          try {
            return { r: await runDdpInTestbed(tb, { model, world, warmupSteps: s.warmup, timedSteps: s.timed, timeoutMs: RUN_TIMEOUT_MS }), error: null };
          } catch (err) {
            log(`    FAILED: ${errorText(err)}`);
            return { r: null, error: errorText(err) };
          }
        };
        // World 1 has no communication: measured once per model, shown at every bandwidth.
        if (!ddpWorld1.has(model)) ddpWorld1.set(model, await ddp(1));
        const one = ddpWorld1.get(model)!;
        rows.push(ddpRow(model, rateMbit, 1, one.r, one.error));
        const two = await ddp(NETWORK_WORKERS);
        rows.push(ddpRow(model, rateMbit, NETWORK_WORKERS, two.r, two.error));
      }
    } finally {
      await tb.destroy();
    }
  }
  const done = withEfficiency(rows);
  return { skipped: null, ddpSkipped, models, ratesMbit, steps, variants, rows: done, ok: done.every((r) => r.error === null) };
}

/**
 * Shared helpers of the benchmarks: timing statistics, plain-text tables, and a description of
 * the machine a run was measured on (printed with the tables and stored in the JSON report).
 */

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

export interface TimingStats {
  /** Timed repetitions. */
  readonly runs: number;
  readonly medianMs: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** What every training-step benchmark reports about one timed run (engine or topology). */
export interface TrainingRunStats {
  readonly description: string;
  readonly warmupSteps: number;
  /** Step times (or intervals between step events) over the timed steps. */
  readonly timing: TimingStats;
  /** Training samples per second over the timed steps (batch size / mean step time). */
  readonly samplesPerSecond: number;
  /** Loss of the very first (warm-up) step: the same weights and batch in every run compared. */
  readonly initialLoss: number;
  /** Losses of the timed steps, in order. */
  readonly losses: readonly number[];
  readonly firstLoss: number;
  readonly lastLoss: number;
  /** Whether the loss went down over the timed steps, and how that was judged. */
  readonly lossCheck: { readonly passed: boolean; readonly detail: string };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function timingStats(samplesMs: readonly number[]): TimingStats {
  return {
    runs: samplesMs.length,
    medianMs: median(samplesMs),
    meanMs: mean(samplesMs),
    minMs: samplesMs.length > 0 ? Math.min(...samplesMs) : NaN,
    maxMs: samplesMs.length > 0 ? Math.max(...samplesMs) : NaN,
  };
}

/** Milliseconds taken by `fn` (synchronous work only). */
export function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

export interface MachineInfo {
  /** The CPU model as /proc/cpuinfo names it (os.cpus() elsewhere). */
  readonly cpuModel: string;
  /** Logical CPUs the OS reports. */
  readonly cores: number;
  readonly platform: string;
  readonly arch: string;
  readonly node: string;
  readonly v8: string;
  readonly totalMemoryGiB: number;
  /** os.loadavg(): 1, 5 and 15 minute load averages when the run started. */
  readonly loadAverage: readonly [number, number, number];
}

function cpuModelName(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1].trim();
  } catch {
    // not Linux: fall back to os.cpus()
  }
  return os.cpus()[0]?.model.trim() || 'unknown CPU';
}

export function loadAverage(): [number, number, number] {
  const [a, b, c] = os.loadavg();
  return [a, b, c];
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModelName(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    platform: os.platform(),
    arch: os.arch(),
    node: process.version,
    v8: process.versions.v8,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: loadAverage(),
  };
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times.user + c.times.nice + c.times.sys + c.times.irq;
    busy += t;
    total += t + c.times.idle;
  }
  return { busy, total };
}

/**
 * The fraction (0..1) of all cores' time spent busy over the next `ms` milliseconds while this
 * process sleeps: how much else is running. Unlike the load average it does not remember the
 * build that `npm run bench` runs just before.
 */
export async function sampleOtherCpuUse(ms = 1000): Promise<number> {
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : NaN;
}

export function formatLoad(load: readonly number[]): string {
  return load.map((v) => v.toFixed(2)).join(' / ');
}

export function describeMachine(m: MachineInfo): string {
  return [
    `CPU: ${m.cpuModel}, ${m.cores} logical core${m.cores === 1 ? '' : 's'}, ${m.totalMemoryGiB} GiB`,
    `Node ${m.node} (V8 ${m.v8}) on ${m.platform}/${m.arch}`,
    `load average at start (1/5/15 min): ${formatLoad(m.loadAverage)}`,
  ].join('\n');
}

/** A number with `digits` decimals, or "n/a" when it is not finite. */
export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** A ratio printed as "2.35x". */
export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a';
}

/**
 * A plain-text table with a header rule; the columns whose index is in `rightAlign` are
 * right-aligned (numbers), the others left-aligned.
 */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, rightAlign: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (rightAlign.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

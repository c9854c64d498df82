/**
 * The arithmetic of `--suite network`, kept apart from the processes that produce its inputs: the
 * coordinator's network wait per step, bytes per step between two counter snapshots, samples/s
 * over the timed steps, and scaling efficiency. Pure functions (unit-tested in test/bench/).
 */

import { median } from './report.js';

/** The timing of one coordinator step (StepEvent.timing), in ms. */
export interface StepTimes {
  readonly stepMs: number;
  readonly slowestComputeMs: number;
  readonly updateMs: number;
}

/**
 * The coordinator's network wait in a step: stepMs − slowestComputeMs − updateMs. It holds the
 * transfers (assign out, gradients in, parameters out) and their encode/decode; an upper bound
 * on the time spent waiting on the network.
 */
export function networkWaitMs(t: StepTimes): number {
  return t.stepMs - t.slowestComputeMs - t.updateMs;
}

/** Bytes per step between two cumulative counter readings taken `steps` steps apart. */
export function bytesPerStep(before: number, after: number, steps: number): number {
  if (!(steps > 0)) return NaN;
  return (after - before) / steps;
}

/** Samples per second for `steps` steps of `batchSize` samples that took `elapsedMs`. */
export function samplesPerSecond(batchSize: number, steps: number, elapsedMs: number): number {
  if (!(elapsedMs > 0) || !(steps > 0)) return NaN;
  return (batchSize * steps * 1000) / elapsedMs;
}

/**
 * samples/s with N workers / (N × samples/s with 1 worker): 1 is perfect data-parallel scaling,
 * 1/N means N workers are no faster than one. The global batch is the same in both runs.
 */
export function scalingEfficiency(samplesPerSecondN: number, workers: number, samplesPerSecond1: number): number {
  if (!(workers > 0) || !(samplesPerSecond1 > 0)) return NaN;
  return samplesPerSecondN / (workers * samplesPerSecond1);
}

/** What the coordinator records at each step event. */
export interface StepRecord extends StepTimes {
  /** performance.now() at the event. */
  readonly at: number;
  /** Wire-counter totals (protocol frames' bytes) at the event. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The interface's rx/tx byte counters at the event (Ethernet frames), when readable. */
  readonly ifaceRx: number | null;
  readonly ifaceTx: number | null;
  /**
   * The optimizer steps completed at the event (the run's step counter), when known: with local
   * updates (--sync-every H) one event stands for H steps, and per-step figures divide by them.
   */
  readonly step?: number;
}

export interface StepRun {
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly stepMs: readonly number[];
  readonly slowestComputeMs: readonly number[];
  readonly updateMs: readonly number[];
  readonly networkWaitMs: readonly number[];
  readonly medianStepMs: number;
  readonly medianNetworkWaitMs: number;
  readonly samplesPerSecond: number;
  /** Protocol bytes the coordinator received / sent per timed step (all workers together). */
  readonly bytesReceivedPerStep: number;
  readonly bytesSentPerStep: number;
  /** The same on the coordinator's interface (with Ethernet/IP/TCP/WebSocket overhead), or null. */
  readonly ifaceRxPerStep: number | null;
  readonly ifaceTxPerStep: number | null;
}

/**
 * The timed part of a run: the steps after `warmupSteps`; samples/s and bytes from the last
 * warm-up step's event to the last step's (so they count exactly the timed steps' traffic: a step's
 * assign, gradients and parameter broadcast all happen between its predecessor's event and its own).
 */
export function summariseSteps(records: readonly StepRecord[], warmupSteps: number, batchSize: number): StepRun {
  if (warmupSteps < 1) throw new Error('at least 1 warm-up step is needed (its event starts the timed interval)');
  if (records.length <= warmupSteps) throw new Error(`${records.length} step events: none after the ${warmupSteps} warm-up steps`);
  const start = records[warmupSteps - 1];
  const end = records[records.length - 1];
  const timed = records.slice(warmupSteps);
  // Optimizer steps in the timed interval: one per event, or as the events' step counter says.
  const n = end.step !== undefined && start.step !== undefined ? end.step - start.step : timed.length;
  const spans = timed.map((r, i) => (r.step !== undefined && (i === 0 ? start : timed[i - 1]).step !== undefined ? r.step - (i === 0 ? start : timed[i - 1]).step! : 1));
  const waits = timed.map((r, i) => networkWaitMs(r) / spans[i]);
  const perStepOrNull = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : bytesPerStep(a, b, n));
  return {
    warmupSteps,
    timedSteps: n,
    stepMs: timed.map((r) => r.stepMs),
    slowestComputeMs: timed.map((r) => r.slowestComputeMs),
    updateMs: timed.map((r) => r.updateMs),
    networkWaitMs: waits,
    medianStepMs: median(timed.map((r, i) => r.stepMs / spans[i])),
    medianNetworkWaitMs: median(waits),
    samplesPerSecond: samplesPerSecond(batchSize, n, end.at - start.at),
    bytesReceivedPerStep: bytesPerStep(start.bytesIn, end.bytesIn, n),
    bytesSentPerStep: bytesPerStep(start.bytesOut, end.bytesOut, n),
    ifaceRxPerStep: perStepOrNull(start.ifaceRx, end.ifaceRx),
    ifaceTxPerStep: perStepOrNull(start.ifaceTx, end.ifaceTx),
  };
}

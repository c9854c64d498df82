/**
 * Every metric the coordinator exports (besides the common ones of shared/metrics/common.ts),
 * declared in this one file on an injected registry. See docs/metrics.md for what each means.
 * Label values are bounded sets: never a step, run id, worker id or sample index (a worker's
 * --name, bounded by the fleet, labels the late-shard counter).
 */

import { Counter, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorCode } from '../shared/protocol/errors.js';
import { createCommonMetrics, type CommonMetrics } from '../shared/metrics/common.js';

export type GradientResult = 'accepted' | 'stale' | 'rejected' | 'discarded';
/** launched: a late shard was copied to an idle worker; copy_won / original_won: which result was used. */
export type SpeculationOutcome = 'launched' | 'copy_won' | 'original_won';
export type WorkerFailureKind = 'disconnect' | 'timeout' | 'silent' | 'rejected';
export type MembershipChange = 'join' | 'leave' | 'drop';
export type Split = 'train' | 'validation' | 'test';
export type WorkerGaugeState = 'active' | 'joining';
/** model: the worker cannot build the run's model (no --module, or one defining another model). */
export type ConnectionRefusal = 'bad_token' | 'protocol_version' | 'shutting_down' | 'model';

/** 1 ms … ~65 s. */
const SECONDS_BUCKETS = exponentialBuckets(0.001, 2, 17);

export interface CoordinatorMetrics {
  readonly common: CommonMetrics;
  readonly globalStep: Gauge;
  readonly epoch: Gauge;
  readonly steps: Counter;
  readonly samples: Counter;
  readonly stepDuration: Histogram;
  readonly stragglerWait: Histogram;
  readonly workers: Gauge<'state'>;
  readonly worldSize: Gauge;
  readonly gradientsReceived: Counter<'result' | 'reason'>;
  readonly workerFailures: Counter<'kind'>;
  readonly membershipChanges: Counter<'kind'>;
  readonly loss: Gauge<'split'>;
  readonly accuracy: Gauge<'split'>;
  readonly learningRate: Gauge;
  readonly gradientNorm: Gauge;
  readonly checkpointDuration: Histogram;
  readonly checkpointSize: Gauge;
  readonly checkpointLastTimestamp: Gauge;
  readonly checkpoints: Counter;
  readonly checkpointFailures: Counter;
  readonly stragglerWarnings: Counter;
  readonly rejectedConnections: Counter<'reason'>;
  readonly speculativeShards: Counter<'outcome'>;
  readonly lateShards: Counter<'worker'>;
  gradient(result: GradientResult, reason: ErrorCode | 'none'): void;
  workerFailure(kind: WorkerFailureKind): void;
  membership(kind: MembershipChange): void;
  refused(reason: ConnectionRefusal): void;
  speculation(outcome: SpeculationOutcome): void;
  /** A shard of `worker` (its --name, or 'unnamed') was late enough to be copied to another worker. */
  late(worker: string): void;
  /** Called at every scrape for meshgrad_workers{state}. */
  setWorkerCounts(counts: () => Readonly<Record<WorkerGaugeState, number>>): void;
  /** Called at every scrape for meshgrad_gradient_norm (a full pass over the gradient: not per step). */
  setGradientNorm(norm: () => number): void;
}

export function createCoordinatorMetrics(registry: Registry = new Registry()): CoordinatorMetrics {
  const registers = [registry];
  const common = createCommonMetrics(registry, 'coordinator');
  let counts: () => Readonly<Record<WorkerGaugeState, number>> = () => ({ active: 0, joining: 0 });
  let norm: () => number = () => NaN;
  const workers = new Gauge({
    name: 'meshgrad_workers',
    help: 'Worker connections by state: active (joined, part of the run) or joining (connected, not yet joined).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      for (const [state, n] of Object.entries(counts())) this.set({ state }, n);
    },
  });
  const gradientsReceived = new Counter({ name: 'meshgrad_gradients_received_total', help: 'Gradient contributions received, by result (accepted, stale, rejected, discarded: a late result for a shard another worker already covered) and reason (protocol error code, or none).', labelNames: ['result', 'reason'] as const, registers });
  const workerFailures = new Counter({ name: 'meshgrad_worker_failures_total', help: 'Workers dropped involuntarily, by kind: disconnect, timeout (missed the step deadline), silent (nothing heard for four heartbeats), rejected (repeated rejected contributions).', labelNames: ['kind'] as const, registers });
  const membershipChanges = new Counter({ name: 'meshgrad_membership_changes_total', help: 'Membership changes: join, leave (the worker said leave), drop (disconnect, timeout, misbehaviour).', labelNames: ['kind'] as const, registers });
  const speculativeShards = new Counter({ name: 'meshgrad_speculative_shards_total', help: 'Speculative re-runs: launched (a late shard copied to an idle worker), then copy_won or original_won (whose result the step used; the other is discarded).', labelNames: ['outcome'] as const, registers });
  const lateShards = new Counter({ name: 'meshgrad_late_shards_total', help: "Shards copied to another worker for being late, by the late worker's --name ('unnamed' without one).", labelNames: ['worker'] as const, registers });
  for (const outcome of ['launched', 'copy_won', 'original_won']) speculativeShards.inc({ outcome }, 0);
  const rejectedConnections = new Counter({ name: 'meshgrad_rejected_connections_total', help: 'Connections refused before joining the run, by reason: bad_token, protocol_version, shutting_down.', labelNames: ['reason'] as const, registers });
  // Series a dashboard expects to see from the start, at 0.
  gradientsReceived.inc({ result: 'accepted', reason: 'none' }, 0);
  for (const kind of ['join', 'leave', 'drop']) membershipChanges.inc({ kind }, 0);
  return {
    common,
    globalStep: new Gauge({ name: 'meshgrad_global_step', help: 'Optimizer steps completed in the run (continues across --resume).', registers }),
    epoch: new Gauge({ name: 'meshgrad_epoch', help: 'The epoch in progress, counted from 1 as in the logs.', registers }),
    steps: new Counter({ name: 'meshgrad_steps_total', help: 'Optimizer steps completed by this process.', registers }),
    samples: new Counter({ name: 'meshgrad_samples_total', help: 'Training samples consumed by completed steps in this process.', registers }),
    stepDuration: new Histogram({ name: 'meshgrad_step_duration_seconds', help: 'Wall time of a step: first dispatch to parameters broadcast (includes waiting for workers).', buckets: SECONDS_BUCKETS, registers }),
    stragglerWait: new Histogram({ name: 'meshgrad_straggler_wait_seconds', help: "Per step, time between the first and the last accepted contribution: the wait for the slowest worker's shard.", buckets: SECONDS_BUCKETS, registers }),
    workers,
    worldSize: new Gauge({ name: 'meshgrad_world_size', help: 'Workers whose contributions made up the last completed step.', registers }),
    gradientsReceived,
    workerFailures,
    membershipChanges,
    loss: new Gauge({ name: 'meshgrad_loss', help: "Loss per label: train is the last step's mean batch loss; validation and test are set at each evaluation.", labelNames: ['split'] as const, registers }),
    accuracy: new Gauge({ name: 'meshgrad_accuracy_ratio', help: "Accuracy (0..1): train is the last step's batch; validation and test are set at each evaluation.", labelNames: ['split'] as const, registers }),
    learningRate: new Gauge({ name: 'meshgrad_learning_rate', help: 'Learning rate used by the last optimizer step.', registers }),
    gradientNorm: new Gauge({
      name: 'meshgrad_gradient_norm',
      help: 'Global L2 norm of the last averaged gradient, before clipping.',
      registers,
      collect() {
        this.set(norm());
      },
    }),
    checkpointDuration: new Histogram({ name: 'meshgrad_checkpoint_duration_seconds', help: 'Time to write a checkpoint (serialise, fsync, rename).', buckets: SECONDS_BUCKETS, registers }),
    checkpointSize: new Gauge({ name: 'meshgrad_checkpoint_size_bytes', help: 'Size of the last checkpoint written.', registers }),
    checkpointLastTimestamp: new Gauge({ name: 'meshgrad_checkpoint_last_timestamp_seconds', help: 'Unix time at which the last checkpoint was written.', registers }),
    checkpoints: new Counter({ name: 'meshgrad_checkpoints_total', help: 'Checkpoints written.', registers }),
    checkpointFailures: new Counter({ name: 'meshgrad_checkpoint_failures_total', help: 'Checkpoints that could not be written (full disk, permissions, ...); the previous checkpoint stays as it was.', registers }),
    stragglerWarnings: new Counter({ name: 'meshgrad_straggler_warnings_total', help: 'Times a step waited for a worker past the straggler threshold (3x the median recent step time, at least 1 s): once per step and late worker.', registers }),
    rejectedConnections,
    speculativeShards,
    lateShards,
    speculation: (outcome) => speculativeShards.inc({ outcome }),
    late: (worker) => lateShards.inc({ worker }),
    gradient: (result, reason) => gradientsReceived.inc({ result, reason }),
    workerFailure: (kind) => workerFailures.inc({ kind }),
    membership: (kind) => membershipChanges.inc({ kind }),
    refused: (reason) => rejectedConnections.inc({ reason }),
    setWorkerCounts(fn) {
      counts = fn;
    },
    setGradientNorm(fn) {
      norm = fn;
    },
  };
}

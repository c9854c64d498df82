/**
 * Every metric a worker exports (besides the common ones of shared/metrics/common.ts), declared
 * in this one file on an injected registry. See docs/metrics.md for what each means.
 */

import { Counter, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client';
import { createCommonMetrics, type CommonMetrics } from '../shared/metrics/common.js';

export type ComputePhase = 'forward' | 'backward' | 'encode';

/** 0.1 ms … ~6.5 s. */
const COMPUTE_BUCKETS = exponentialBuckets(0.0001, 2, 17);
/** 1 ms … ~65 s. */
const COMMUNICATION_BUCKETS = exponentialBuckets(0.001, 2, 17);

export interface WorkerMetrics {
  readonly common: CommonMetrics;
  readonly steps: Counter;
  readonly samples: Counter;
  readonly compute: Histogram<'phase'>;
  readonly communication: Histogram;
  readonly batchLoss: Gauge;
  readonly reconnects: Counter;
}

export function createWorkerMetrics(registry: Registry = new Registry()): WorkerMetrics {
  const registers = [registry];
  const compute = new Histogram({ name: 'meshgrad_worker_compute_seconds', help: "Time per assignment in each phase: forward (model and loss), backward, encode (gradients to a frame, handed to the socket).", labelNames: ['phase'] as const, buckets: COMPUTE_BUCKETS, registers });
  for (const phase of ['forward', 'backward', 'encode'] as const) compute.zero({ phase });
  return {
    common: createCommonMetrics(registry, 'worker'),
    steps: new Counter({ name: 'meshgrad_worker_steps_total', help: 'Assignments (shards) this worker computed and answered with gradients.', registers }),
    samples: new Counter({ name: 'meshgrad_worker_samples_total', help: 'Samples in the shards this worker computed.', registers }),
    compute,
    communication: new Histogram({
      name: 'meshgrad_worker_communication_seconds',
      help: 'From handing a gradients frame to the socket to receiving the next params or assign message: transfer both ways plus the wait for the other workers and the optimizer step.',
      buckets: COMMUNICATION_BUCKETS,
      registers,
    }),
    batchLoss: new Gauge({ name: 'meshgrad_worker_batch_loss', help: "Mean loss per label of this worker's last shard.", registers }),
    reconnects: new Counter({ name: 'meshgrad_worker_reconnects_total', help: 'Connection attempts after a lost or refused connection.', registers }),
  };
}

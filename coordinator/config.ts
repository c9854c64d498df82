/** What a coordinator is told: the training settings of `train`, plus serving and membership settings. */

import type { CompressionMode } from '../shared/protocol/wire-compressed.js';
import type { TrainConfig } from '../shared/train/single-process.js';

export type BalanceMode = 'throughput' | 'even';

/** What a periodic checkpoint that cannot be written does to the run. */
export type CheckpointFailurePolicy = 'continue' | 'stop';

export interface CoordinatorConfig extends TrainConfig {
  readonly host: string;
  /** 0 binds a free port (tests). */
  readonly port: number;
  /** Shared secret workers must present; null disables the check (tests of the check itself only). */
  readonly token: string | null;
  readonly minWorkers: number;
  /** A worker that has not returned an assigned shard after this long is dropped. */
  readonly stepTimeoutMs: number;
  readonly heartbeatMs: number;
  /** A connection that has not sent `join` this long after its upgrade is closed (4007). Default 10000. */
  readonly joinTimeoutMs?: number;
  /** A TCP connection that has not completed its HTTP upgrade (or request) in this long is destroyed. Default 10000. */
  readonly handshakeTimeoutMs?: number;
  readonly checkpointDir?: string;
  readonly checkpointEvery?: number;
  /**
   * A periodic checkpoint that fails (a full disk) is logged and counted either way, and the
   * previous checkpoint stays; 'continue' (default) trains on, 'stop' ends the run as a stop
   * request would (final checkpoint attempted, --save written, workers told) and reports a failure.
   */
  readonly checkpointFailure?: CheckpointFailurePolicy;
  /**
   * Once a stop is requested (SIGINT/SIGTERM), how long to wait for the step in flight (or the
   * epoch's evaluation) before abandoning it: the checkpoint then holds the last completed step.
   * Default 5000.
   */
  readonly stopTimeoutMs?: number;
  readonly resume: boolean;
  /** Put the samples themselves in assignments (workers without a local copy of the dataset). */
  readonly sendSamples: boolean;
  /** Split each batch by measured worker throughput, or evenly. */
  readonly balance: BalanceMode;
  /**
   * Copy a late shard (held past a multiple of the recent shard times) to an idle worker; the first
   * result is used. Default true. Any worker computes a shard to the same bits (dropout included).
   */
  readonly speculation?: boolean;
  /**
   * Gradient bucket size in bytes (--bucket-mb): the parameters are cut into runs of about this
   * size, from the last layer backwards, each sent, summed, stepped and sent back on its own as
   * soon as it is ready. 0: one message each way per step. Default 256 KiB.
   */
  readonly bucketBytes?: number;
  /**
   * How gradients and parameter updates travel (--compress): 'none' (default) float32; 'fp16',
   * 'bf16' 16 bits; 'int8' 8 bits with a per-tensor scale. Workers keep error feedback; the
   * coordinator's parameters and optimizer state stay float32.
   */
  readonly compress?: CompressionMode;
  /**
   * Local updates (--sync-every H, local SGD / DiLoCo): each worker takes H inner steps with its
   * own inner optimizer (the run's optimizer and learning rate) on its share of H batches, then
   * sends its parameter change; the coordinator averages the changes (weighted by samples) and
   * applies them with the outer optimizer, SGD with Nesterov momentum. Default 1: synchronous.
   */
  readonly syncEvery?: number;
  /** The outer optimizer's learning rate (--outer-lr; default: defaultOuterOptimizer(syncEvery)). */
  readonly outerLr?: number;
  /** The outer optimizer's Nesterov momentum (--outer-momentum; default as outerLr's). */
  readonly outerMomentum?: number;
  /** Count how often each training sample is used per epoch (tests of the sharding guarantees). */
  readonly auditSamples?: boolean;
}

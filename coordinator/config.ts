/** What a coordinator is told: the training settings of `train`, plus serving and membership settings. */

import type { TrainConfig } from '../shared/train/single-process.js';

export type BalanceMode = 'throughput' | 'even';

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
  readonly checkpointDir?: string;
  readonly checkpointEvery?: number;
  readonly resume: boolean;
  /** Put the samples themselves in assignments (workers without a local copy of the dataset). */
  readonly sendSamples: boolean;
  /** Split each batch by measured worker throughput, or evenly. */
  readonly balance: BalanceMode;
  /** Count how often each training sample is used per epoch (tests of the sharding guarantees). */
  readonly auditSamples?: boolean;
}

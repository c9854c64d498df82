/**
 * What a worker's network thread and its compute thread say to each other. The compute thread
 * owns the model replica and the backend; the network thread owns the socket, heartbeats and
 * /metrics, and so stays responsive however long a shard takes. Every request carries the
 * session it belongs to, and replies echo it, so replies to a lost connection are dropped.
 */

import type { BackendName } from '../cli/backend-options.js';
import type { ErrorCode } from '../shared/protocol/errors.js';
import type { AssignMessage, ParamsMessage, WelcomeMessage } from '../shared/protocol/messages.js';
import type { ShardReport } from './trainer.js';

/** workerData of the compute thread. */
export interface ComputeThreadOptions {
  readonly backend: BackendName;
  readonly threads?: number;
  readonly dataDir?: string;
  /** The module file (absolute path) that defines the model in code (--module), loaded before any welcome. */
  readonly module?: string;
  /** Fault injection for tests (MESHGRAD_FAILPOINT, see compute-thread.ts); absent in real runs. */
  readonly failpoint?: string;
}

export type ToCompute =
  | { readonly kind: 'welcome'; readonly session: number; readonly welcome: WelcomeMessage; readonly workerSeed: number }
  | { readonly kind: 'params'; readonly session: number; readonly params: ParamsMessage }
  | { readonly kind: 'assign'; readonly session: number; readonly assign: AssignMessage }
  | { readonly kind: 'close' };

export type FromCompute =
  | { readonly kind: 'started'; readonly backend: string; readonly device: 'cpu' | 'webgpu'; readonly adapter: string | null }
  | { readonly kind: 'joined'; readonly session: number; readonly parameterCount: number }
  /** A `params` message was applied (every request gets exactly one reply: the watchdog counts them). */
  | { readonly kind: 'loaded'; readonly session: number }
  /** An encoded `gradients` frame (its buffer transferred, not copied) and where the time went. */
  | { readonly kind: 'gradients'; readonly session: number; readonly step: number; readonly frame: Uint8Array; readonly report: ShardReport }
  /** One bucket's `gradbucket` frame, sent while backward goes on (not a reply: the shard's `gradients` is). */
  | { readonly kind: 'bucket'; readonly session: number; readonly frame: Uint8Array }
  /** A message the replica refused (a protocol error to report back to the coordinator). */
  | { readonly kind: 'rejected'; readonly session: number; readonly code: ErrorCode; readonly message: string; readonly step?: number }
  /** A bug or an unusable state: the worker cannot go on. */
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string };

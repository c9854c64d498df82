/**
 * What the coordinator knows about one joined worker. A worker is `active` from its welcome until
 * it leaves, disconnects, misses a step deadline or misbehaves; then `dropped`, for good (a worker
 * that comes back joins again as a new member and receives the current parameters).
 */

import type { Connection } from './transport.js';

export type WorkerState = 'active' | 'dropped';

/** Consecutive rejected contributions after which a worker is dropped. */
export const MAX_CONSECUTIVE_REJECTS = 3;

export class WorkerLink {
  state: WorkerState = 'active';
  /** Samples per millisecond of compute, an exponential moving average (0: not measured yet). */
  throughput = 0;
  consecutiveRejects = 0;
  lastSeen = Date.now();
  stepsDone = 0;

  constructor(
    readonly conn: Connection,
    readonly name: string,
    readonly wantsSamples: boolean,
    readonly threads: number,
  ) {}

  get id(): number {
    return this.conn.id;
  }

  get label(): string {
    return `w${this.id}${this.name ? ` (${this.name})` : ''}`;
  }

  recordThroughput(samples: number, computeMs: number): void {
    const rate = samples / Math.max(computeMs, 0.1);
    this.throughput = this.throughput === 0 ? rate : 0.8 * this.throughput + 0.2 * rate;
  }
}

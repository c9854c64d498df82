/**
 * What the coordinator knows about one joined worker. A worker is `active` from its welcome until
 * it leaves, disconnects, misses a step deadline or misbehaves; then `dropped`, for good (a worker
 * that comes back joins again as a new member and receives the current parameters).
 */

import type { Connection } from './transport.js';

export type WorkerState = 'active' | 'dropped';

/** Consecutive rejected contributions after which a worker is dropped. */
export const MAX_CONSECUTIVE_REJECTS = 3;

/** Weight of the newest shard in a worker's throughput estimate. */
export const THROUGHPUT_EMA = 0.2;

/** One worker's part in a run, for the summary. */
export interface WorkerShare {
  /** The worker's label in the logs: `w<id>`, and its --name in parentheses. */
  readonly worker: string;
  /** Shards it computed (accepted contributions). */
  shards: number;
  /** Samples in those shards. */
  samples: number;
}

export class WorkerLink {
  state: WorkerState = 'active';
  /**
   * Samples per millisecond of compute, an exponential moving average over the worker's shards
   * (0: not measured yet). The first shard a worker computes is not counted: it carries one-off
   * costs (loading the dataset, compiling the kernels) that say nothing about its speed.
   */
  throughput = 0;
  consecutiveRejects = 0;
  lastSeen = Date.now();
  /**
   * Assignments sent and not answered yet, by `step/shard` key (value: the step). A worker with
   * none is idle: a late shard of the round may be copied to it.
   */
  readonly outstanding = new Map<string, number>();
  /**
   * Set when one of its shards was copied to another worker for being late: new rounds leave it
   * out until it answers everything it holds (a frozen worker then stops stalling every step).
   */
  late = false;
  /** What this worker computed: its accepted contributions (kept by the coordinator after it leaves). */
  readonly share: WorkerShare;
  private shardsTimed = 0;

  constructor(
    readonly conn: Connection,
    readonly name: string,
    readonly wantsSamples: boolean,
    readonly threads: number,
  ) {
    this.share = { worker: this.label, shards: 0, samples: 0 };
  }

  get id(): number {
    return this.conn.id;
  }

  get label(): string {
    return `w${this.id}${this.name ? ` (${this.name})` : ''}`;
  }

  /** The name metrics use for it (its --name; bounded by the fleet, unlike the connection id). */
  get metricName(): string {
    return this.name || 'unnamed';
  }

  /** An assignment sent to it. */
  assigned(step: number, shard: number): void {
    this.outstanding.set(`${step}/${shard}`, step);
  }

  /** It answered (a result, however it was judged) for `step`'s `shard`, or, without a shard, for every shard of `step`. */
  answered(step: number, shard?: number): void {
    if (shard !== undefined) this.outstanding.delete(`${step}/${shard}`);
    else for (const [key, s] of this.outstanding) if (s === step) this.outstanding.delete(key);
    if (this.outstanding.size === 0) this.late = false;
  }

  recordThroughput(samples: number, computeMs: number): void {
    if (this.shardsTimed++ === 0) return; // warm-up
    const rate = samples / Math.max(computeMs, 0.1);
    this.throughput = this.throughput === 0 ? rate : (1 - THROUGHPUT_EMA) * this.throughput + THROUGHPUT_EMA * rate;
  }
}

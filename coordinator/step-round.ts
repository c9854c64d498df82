/**
 * The bookkeeping of one synchronous step: which pieces (shards) of the global batch went to which
 * worker, which gradients have arrived, and what must be redone. A shard whose worker fails is
 * superseded by new shards over the same samples, so every sample of the batch contributes exactly
 * once, whoever computes it.
 */

import type { Contribution } from './aggregate.js';
import { splitIndices, splitSizes } from './sharding.js';

export type ShardStatus = 'pending' | 'assigned' | 'done' | 'superseded';

export interface Shard {
  readonly id: number;
  readonly indices: Int32Array;
  status: ShardStatus;
  workerId: number | null;
  assignedAt: number;
  result: (Contribution & { loss: number; correct: number }) | null;
}

export interface WorkerWeight {
  readonly id: number;
  readonly weight: number;
}

export class StepRound {
  readonly shards: Shard[] = [];

  constructor(readonly step: number, readonly version: number, readonly indices: Int32Array) {
    this.shards.push({ id: 0, indices, status: 'pending', workerId: null, assignedAt: 0, result: null });
  }

  get complete(): boolean {
    return this.shards.every((s) => s.status === 'done' || s.status === 'superseded');
  }

  pending(): Shard[] {
    return this.shards.filter((s) => s.status === 'pending');
  }

  /**
   * Splits every pending shard between `workers` (by weight) and marks the pieces assigned.
   * Returns the new assignments to send.
   */
  dispatch(workers: readonly WorkerWeight[], now: number): Shard[] {
    if (workers.length === 0) return [];
    const out: Shard[] = [];
    for (const shard of this.pending()) {
      shard.status = 'superseded';
      const sizes = splitSizes(shard.indices.length, workers.map((w) => w.weight));
      splitIndices(shard.indices, sizes).forEach((piece, k) => {
        if (piece.length === 0) return;
        const s: Shard = { id: this.shards.length, indices: piece, status: 'assigned', workerId: workers[k].id, assignedAt: now, result: null };
        this.shards.push(s);
        out.push(s);
      });
    }
    return out;
  }

  /** Puts a worker's unfinished shards back to pending (it left, or failed them). */
  release(workerId: number, shardId?: number): number {
    let released = 0;
    for (const s of this.shards) {
      if (s.status === 'assigned' && s.workerId === workerId && (shardId === undefined || s.id === shardId)) {
        s.status = 'pending';
        s.workerId = null;
        released++;
      }
    }
    return released;
  }

  find(shardId: number): Shard | undefined {
    return this.shards[shardId];
  }

  /** Completed contributions in shard order (deterministic summation). */
  contributions(): Array<NonNullable<Shard['result']>> {
    return this.shards.filter((s) => s.status === 'done').map((s) => s.result!);
  }

  /** Assigned shards older than `deadline` ms. */
  overdue(now: number, deadlineMs: number): Shard[] {
    return this.shards.filter((s) => s.status === 'assigned' && now - s.assignedAt > deadlineMs);
  }
}

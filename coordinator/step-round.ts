/**
 * The bookkeeping of one synchronous step: which pieces (shards) of the global batch went to which
 * worker, which gradients have arrived, and what must be redone. A shard whose worker fails is
 * superseded by new shards over the same samples, so every sample of the batch contributes exactly
 * once, whoever computes it.
 *
 * A late shard may also be copied to an idle worker (a speculative re-run, as MapReduce's backup
 * tasks): the original and its copy form a group over the same samples; the first result of the
 * group is used and the other member is `discarded` (its result, when it comes, is dropped and
 * counted). Contributions are summed in group order, so the sum does not depend on which member
 * of a group won.
 */

import type { Contribution } from './aggregate.js';
import { splitIndices, splitSizes } from './sharding.js';

/**
 * pending: to be assigned; assigned: a worker computes it; done: its result is in; superseded: it
 * was split into new shards; discarded: another member of its group finished first (or its worker
 * left while a copy was still running).
 */
export type ShardStatus = 'pending' | 'assigned' | 'done' | 'superseded' | 'discarded';

export interface Shard {
  readonly id: number;
  /** The id of the group's original shard (its own id unless it is a speculative copy). */
  readonly group: number;
  /** A copy of a late shard, given to an idle worker. */
  readonly speculative: boolean;
  /** The shard this one was split from (its samples were pending again), or null. */
  readonly parent: number | null;
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

/** What completing a shard did to its group. */
export interface Completion {
  /** The other members of the group, now discarded (their workers' results will be dropped). */
  readonly discarded: readonly Shard[];
}

export class StepRound {
  readonly shards: Shard[] = [];

  /** `span`: the optimizer steps this round stands for (H with local updates, else 1). */
  constructor(readonly step: number, readonly version: number, readonly indices: Int32Array, readonly span = 1) {
    this.shards.push({ id: 0, group: 0, speculative: false, parent: null, indices, status: 'pending', workerId: null, assignedAt: 0, result: null });
  }

  get complete(): boolean {
    return this.shards.every((s) => s.status === 'done' || s.status === 'superseded' || s.status === 'discarded');
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
        const id = this.shards.length;
        const s: Shard = { id, group: id, speculative: false, parent: shard.id, indices: piece, status: 'assigned', workerId: workers[k].id, assignedAt: now, result: null };
        this.shards.push(s);
        out.push(s);
      });
    }
    return out;
  }

  /** The members of `shard`'s group (itself included). */
  groupOf(shard: Shard): Shard[] {
    return this.shards.filter((s) => s.group === shard.group && s.status !== 'superseded');
  }

  /** Whether another member of the shard's group is running or done (so no further copy is made). */
  hasCopy(shard: Shard): boolean {
    return this.groupOf(shard).some((o) => o !== shard && (o.status === 'assigned' || o.status === 'done'));
  }

  /** Copies an assigned shard to `workerId` (a speculative re-run over the same samples). */
  speculate(shard: Shard, workerId: number, now: number): Shard {
    if (shard.status !== 'assigned') throw new Error(`shard ${shard.id} is ${shard.status}, not assigned: nothing to copy`);
    const copy: Shard = { id: this.shards.length, group: shard.group, speculative: true, parent: null, indices: shard.indices, status: 'assigned', workerId, assignedAt: now, result: null };
    this.shards.push(copy);
    return copy;
  }

  /** Records an assigned shard's result; the rest of its group is discarded. */
  finish(shard: Shard, result: NonNullable<Shard['result']>): Completion {
    shard.status = 'done';
    shard.result = result;
    const discarded: Shard[] = [];
    for (const other of this.groupOf(shard)) {
      if (other === shard || other.status === 'done') continue;
      if (other.status === 'assigned' || other.status === 'pending') {
        other.status = 'discarded';
        discarded.push(other);
      }
    }
    return { discarded };
  }

  /**
   * Puts a worker's unfinished shards back to pending (it left, or failed them). A shard whose
   * group still has another member running is discarded instead: that member covers its samples.
   */
  release(workerId: number, shardId?: number): number {
    let released = 0;
    for (const s of this.shards) {
      if (s.status === 'assigned' && s.workerId === workerId && (shardId === undefined || s.id === shardId)) {
        const covered = this.groupOf(s).some((o) => o !== s && o.status === 'assigned');
        s.status = covered ? 'discarded' : 'pending';
        s.workerId = covered ? s.workerId : null;
        released++;
      }
    }
    return released;
  }

  find(shardId: number): Shard | undefined {
    return this.shards[shardId];
  }

  /** Completed contributions in group order (deterministic summation, whichever member won). */
  contributions(): Array<NonNullable<Shard['result']>> {
    return this.completed().map((s) => s.result!);
  }

  /** The done shards, in group order. */
  completed(): Shard[] {
    return this.shards.filter((s) => s.status === 'done').sort((a, b) => a.group - b.group);
  }

  /** Assigned shards older than `deadline` ms. */
  overdue(now: number, deadlineMs: number): Shard[] {
    return this.shards.filter((s) => s.status === 'assigned' && now - s.assignedAt > deadlineMs);
  }
}

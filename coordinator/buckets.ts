/**
 * Gradient buckets: the parameters cut into contiguous runs (in parameter order) of about
 * `--bucket-mb` each, built from the last parameter backwards as DDP's buckets are, since backward
 * finishes the last layers first. Workers send each bucket's gradients as soon as backward has
 * finished them; the coordinator sums a bucket as soon as every sample of the step's batch has it,
 * steps the optimizer on that bucket alone and sends its new parameters, while the other buckets
 * are still on the wire.
 *
 * Exactly once, per bucket. Each shard group (a shard and its speculative copy, see step-round.ts)
 * counts a bucket once, from whichever member delivers it first. A shard released after some of
 * its buckets were counted (its worker failed) keeps those in the sum: the samples' gradient is
 * the same whoever computes it, so the pieces that redo the shard contribute only the buckets it
 * had not delivered (they inherit the counted set through `parent`). A bucket is complete when the
 * samples that delivered it add up to the batch.
 *
 * Order. A bucket's contributions are summed in group order, each element in float64 and rounded
 * once, exactly as the one-message path sums whole gradients: with the same shards the bits are
 * the same whether or not buckets are used.
 */

import type { Shard, StepRound } from './step-round.js';

interface Piece {
  readonly group: number;
  readonly grads: readonly Float32Array[];
}

/** One round's buckets: what has arrived, from whom, and which buckets are complete. */
export class RoundBuckets {
  private readonly counted = new Map<number, Set<number>>();
  private readonly pieces: Piece[][];
  private readonly covered: number[];
  /** Buckets whose sum is complete (the coordinator may step them). */
  readonly complete: boolean[];
  /** Buckets already stepped. */
  readonly stepped: boolean[];
  /** Buckets whose new parameters have been sent. */
  readonly sent: boolean[];

  constructor(private readonly round: StepRound, readonly count: number) {
    this.pieces = Array.from({ length: count }, () => []);
    this.covered = new Array<number>(count).fill(0);
    this.complete = new Array<boolean>(count).fill(false);
    this.stepped = new Array<boolean>(count).fill(false);
    this.sent = new Array<boolean>(count).fill(false);
  }

  /** Whether `shard`'s group, or a shard it was split from, already delivered bucket `k`. */
  isCounted(shard: Shard, k: number): boolean {
    for (let s: Shard | undefined = shard; s; s = s.parent === null ? undefined : this.round.find(s.parent)) {
      if (this.counted.get(s.group)?.has(k)) return true;
    }
    return false;
  }

  /**
   * Records bucket `k` of `shard` (validated already). Returns 'duplicate' when its samples
   * already delivered it (a copy, or a redo of a released shard): `grads` is then not kept, and
   * the caller may recycle it. 'complete' when this made the bucket's sum complete.
   */
  add(shard: Shard, k: number, grads: readonly Float32Array[]): 'duplicate' | 'added' | 'complete' {
    if (this.isCounted(shard, k)) return 'duplicate';
    let set = this.counted.get(shard.group);
    if (!set) this.counted.set(shard.group, (set = new Set()));
    set.add(k);
    this.pieces[k].push({ group: shard.group, grads });
    this.covered[k] += shard.indices.length;
    if (this.covered[k] > this.round.indices.length) throw new Error(`internal: bucket ${k} of step ${this.round.step} covers ${this.covered[k]} samples of ${this.round.indices.length}`);
    if (this.covered[k] < this.round.indices.length) return 'added';
    this.complete[k] = true;
    return 'complete';
  }

  /** Bucket k's gradients, one array per parameter of the bucket per contribution, in group order. */
  contributions(k: number): Array<readonly Float32Array[]> {
    return [...this.pieces[k]].sort((a, b) => a.group - b.group).map((p) => p.grads);
  }

  /** Every array held (for recycling once the round is over). */
  *arrays(): Iterable<{ bucket: number; index: number; array: Float32Array }> {
    for (let k = 0; k < this.count; k++) for (const p of this.pieces[k]) for (let i = 0; i < p.grads.length; i++) yield { bucket: k, index: i, array: p.grads[i] };
  }

  markStepped(k: number): void {
    this.stepped[k] = true;
  }

  get allComplete(): boolean {
    return this.complete.every(Boolean);
  }
}

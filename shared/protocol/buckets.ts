/**
 * The gradient bucket plan both sides of a run share: the parameters cut into contiguous runs (in
 * parameter order) of about `--bucket-mb` each, built from the last parameter backwards as DDP's
 * buckets are, since backward finishes the last layers first. The coordinator makes the plan and
 * sends it in `welcome`; a worker checks it against its model.
 */

/** The first parameter of each bucket, ascending from 0; `bytes[i]` is parameter i's gradient size. */
export function planBuckets(bytes: readonly number[], capBytes: number): number[] {
  if (bytes.length === 0) return [0];
  if (!(capBytes > 0)) return [0];
  const starts: number[] = [];
  let size = 0;
  // A bucket grows backwards until the next parameter would take it past the cap.
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (size > 0 && size + bytes[i] > capBytes) {
      starts.push(i + 1);
      size = 0;
    }
    size += bytes[i];
  }
  starts.push(0);
  return starts.reverse();
}

/** Bucket k's parameter range [start, end). */
export function bucketRange(starts: readonly number[], params: number, k: number): { start: number; end: number } {
  return { start: starts[k], end: k + 1 < starts.length ? starts[k + 1] : params };
}

/** Checks a plan received in a welcome against the model's parameter count. */
export function validBucketPlan(starts: readonly number[], params: number): string | null {
  if (starts.length === 0 || starts[0] !== 0) return 'buckets must start at parameter 0';
  for (let k = 1; k < starts.length; k++) if (!(starts[k] > starts[k - 1])) return `bucket starts must ascend, got ${starts.join(', ')}`;
  if (starts[starts.length - 1] >= params) return `bucket ${starts.length - 1} starts at parameter ${starts[starts.length - 1]}, the model has ${params}`;
  return null;
}


/**
 * The layout of the fork-join pool's control block, a SharedArrayBuffer of 32-bit words read by the
 * main thread and every pool thread. One task is in flight at a time; each thread reads the shared
 * arguments and its own slice (column range and scratch) and runs the kernel on it.
 */

export const CTL = {
  generation: 0,
  pending: 1,
  opcode: 2,
  error: 3,
  /** Shared arguments start here. */
  args: 4,
  /** Per-thread arguments start here, SLICE words per thread. */
  slices: 32,
} as const;

export const SLICE = 4;
export const MAX_THREADS = 64;
export const CONTROL_WORDS = CTL.slices + SLICE * MAX_THREADS;

export const OP = { stop: 0, gemm: 1 } as const;

/**
 * Polls of a shared word before falling back to Atomics.wait. Waking a sleeping thread costs
 * 60–80 µs on these VMs — as much as a small matmul — while tasks of one training step follow each
 * other within microseconds; a short spin (tens of microseconds) catches those, then the thread
 * sleeps and leaves the core to others.
 */
export const SPIN_POLLS = 20_000;

/** gemm's shared arguments, in order, after CTL.args. */
export const GEMM_ARGS = ['a', 'b', 'c', 'm', 'n', 'k', 'transA', 'transB', 'accumulate'] as const;

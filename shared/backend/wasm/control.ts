/**
 * The layout of the fork-join pool's control block, a SharedArrayBuffer of 32-bit words read by the
 * main thread and every pool thread. One task is in flight at a time. Two kinds of task:
 *   - OP.gemm (static slices): each thread reads the shared arguments and its own slice (column
 *     range and scratch) and runs the kernel on it;
 *   - chunked ops (OP.gemmChunks, the window kernels, and OP.rows: elementwise and row-wise
 *     kernels cut by elements or rows): the work is cut into `chunks` fixed
 *     pieces (kernels.ts, runChunk), and every thread, the caller included, claims the next one with
 *     an atomic increment of `next` until none is left, each with its own scratch. Which thread runs
 *     a piece changes no result bit (the pieces, and each element's arithmetic, do not depend on
 *     it), and a thread that wakes late simply finds fewer pieces left.
 *
 * The handshake (pool.ts issues, thread.ts answers):
 *   - the pool writes the arguments, `opcode`, `pending = threads − 1`, then increments
 *     `generation` and notifies it;
 *   - a thread sleeps until `generation` differs from the last one it ran (a wake-up alone is not a
 *     task: a notify can arrive late, after the thread already ran that generation), writes the
 *     generation to its `started` word, runs its slice, writes it to its `finished` word, and
 *     decrements `pending`; the one that brings it to 0 notifies `pending`;
 *   - the pool waits, in bounded sleeps, until `pending` is 0.
 * The per-thread words exist so that a stalled fork-join can say what it is waiting for.
 */

export const CTL = {
  generation: 0,
  pending: 1,
  opcode: 2,
  error: 3,
  /** Shared arguments start here. */
  args: 4,
  /** Chunked ops: how many pieces, and the next piece to claim (the last two words of the args area). */
  chunks: 30,
  next: 31,
  /** Per-thread arguments start here, SLICE words per thread. */
  slices: 32,
} as const;

/** Words of shared arguments a chunked op may use (CTL.args up to CTL.chunks). */
export const CHUNK_ARG_WORDS = CTL.chunks - CTL.args;

/**
 * Words per thread: j0, j1, scratch, started generation, finished generation, state, and
 * `sleeping` (1 while the thread is blocked in Atomics.wait rather than spinning: a hint for the
 * caller, which then forks only work large enough to pay for the 60–80 µs wake-up; the handshake
 * never reads it).
 */
export const SLICE = 8;
export const SLOT = { j0: 0, j1: 1, scratch: 2, started: 3, finished: 4, state: 5, sleeping: 6 } as const;
/** A pool thread's `state` word. */
export const THREAD_STATE = { starting: 0, idle: 1, running: 2, exited: 3 } as const;

export const MAX_THREADS = 64;
export const CONTROL_WORDS = CTL.slices + SLICE * MAX_THREADS;

export const OP = { stop: 0, gemm: 1, gemmChunks: 2, im2col: 3, col2im: 4, maxPool: 5, rows: 6 } as const;

/**
 * Polls of a shared word before falling back to Atomics.wait. Waking a sleeping thread costs
 * 60–80 µs on these VMs — as much as a small matmul — while tasks of one training step follow each
 * other within microseconds; a short spin catches those, then the thread sleeps and leaves the core
 * to others. (20 000 polls took 0.4–1.7 ms under Node 20 here, Atomics.load costing tens of ns.)
 */
export const SPIN_POLLS = 20_000;

/** gemm's shared arguments, in order, after CTL.args. */
export const GEMM_ARGS = ['a', 'b', 'c', 'm', 'n', 'k', 'transA', 'transB', 'accumulate'] as const;

/**
 * A fork-join pool of worker threads for intra-op parallelism: one kernel call is split across
 * the main thread and N−1 pool threads that share the wasm memory, and the call returns when all
 * slices are done, so ops stay synchronous for the caller. The handshake is described in
 * control.ts. Two kinds of task: `gemm` gives each thread a fixed column slice (kept for the
 * benchmarks and the protocol tests); `forkChunks` cuts an op into fixed pieces that the threads
 * claim one by one, so a pool thread that is slow to wake (or preempted) costs the caller little
 * more than the pieces it took — this is what the wasm backend uses.
 *
 * No wait is unbounded. The caller sleeps on `pending` in short timed waits; a fork-join whose
 * pool threads have not all finished `stallAfterMs` (default 10 s) after the caller finished its
 * own equal-sized slice — and at least 50 times as long as that slice took — fails with a
 * PoolStallError that names every thread's state (a lost wake-up shows as a thread that never
 * started the generation; a dead thread as exited or stuck running). A failed pool stays failed:
 * every later call throws the same error, since its threads can no longer be trusted.
 *
 * Why not piscina: a piscina task costs a message round trip (tens of microseconds, measured in
 * `npm run bench -- --suite pool`), which is as long as a whole matmul of a small layer; here a
 * task is a few writes to a SharedArrayBuffer and an Atomics.notify.
 */

import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../../util/paths.js';
import { CHUNK_ARG_WORDS, CONTROL_WORDS, CTL, GEMM_ARGS, MAX_THREADS, OP, SLICE, SLOT, SPIN_POLLS, THREAD_STATE } from './control.js';

export interface GemmSlice {
  readonly j0: number;
  readonly j1: number;
  readonly scratch: number;
}

export interface ThreadPoolOptions {
  /** The least time a fork-join may wait for its pool threads before failing (default 10 000 ms). */
  readonly stallAfterMs?: number;
}

/** A fork-join that cannot complete: a pool thread never woke, died, or is stuck. */
export class PoolStallError extends Error {
  override readonly name = 'PoolStallError';
}

const STATE_NAMES = ['starting', 'idle', 'running', 'exited'] as const;
/** One timed sleep of the caller; short, so a thread that exits is noticed promptly. */
const WAIT_SLICE_MS = 50;

export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly u32: Uint32Array;
  private readonly exitCodes = new Map<number, number>();
  private closed = false;
  private failure: PoolStallError | null = null;

  private constructor(private readonly workers: Worker[], readonly control: SharedArrayBuffer, private readonly stallAfterMs: number) {
    this.ctl = new Int32Array(control);
    this.u32 = new Uint32Array(control);
    workers.forEach((w, i) => {
      const index = i + 1;
      w.on('exit', (code) => {
        this.exitCodes.set(index, code);
        Atomics.store(this.ctl, CTL.slices + SLICE * index + SLOT.state, THREAD_STATE.exited);
      });
      // An error is followed by 'exit'; listening keeps it from becoming an uncaught exception.
      w.on('error', () => undefined);
    });
  }

  /** Starts `threads − 1` pool threads (the calling thread is the first of the `threads`). */
  static async start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, options: ThreadPoolOptions = {}): Promise<ThreadPool> {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
    const stallAfterMs = options.stallAfterMs ?? 10_000;
    if (!(stallAfterMs > 0)) throw new RangeError(`stallAfterMs must be positive, got ${stallAfterMs}`);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const entry = join(packageRoot(), 'dist', 'shared', 'backend', 'wasm', 'thread.js');
    const workers: Worker[] = [];
    for (let index = 1; index < threads; index++) {
      const w = new Worker(entry, { workerData: { module, memory, control, index } });
      workers.push(w);
    }
    try {
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              // 'ready' is posted after the thread has read the task counter (see thread.ts).
              w.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(`unexpected message from a pool thread: ${String(m)}`))));
              w.once('error', reject);
              w.once('exit', (code) => reject(new Error(`a pool thread exited during start-up (code ${code})`)));
            }),
        ),
      );
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    for (const w of workers) {
      w.removeAllListeners();
      w.unref();
    }
    return new ThreadPool(workers, control, stallAfterMs);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs gemm with `slices[t]` on thread t (slice 0 on this thread, through `runLocal`) and returns
   * when every slice is done. Threads beyond `slices` get an empty range.
   */
  gemm(args: Readonly<Record<(typeof GEMM_ARGS)[number], number>>, slices: readonly GemmSlice[], runLocal: (s: GemmSlice) => void): void {
    this.usable();
    if (slices.length < 1 || slices.length > this.threads) throw new RangeError(`a fork-join needs 1 to ${this.threads} slices, got ${slices.length}`);
    const ctl = this.ctl;
    GEMM_ARGS.forEach((name, i) => (this.u32[CTL.args + i] = args[name] >>> 0));
    for (let t = 1; t < this.threads; t++) {
      const at = CTL.slices + SLICE * t;
      const s = slices[t];
      ctl[at + SLOT.j0] = s ? s.j0 : 0;
      ctl[at + SLOT.j1] = s ? s.j1 : 0;
      this.u32[at + SLOT.scratch] = s ? s.scratch >>> 0 : 0;
    }
    this.fork(OP.gemm, () => runLocal(slices[0]), 'a gemm slice');
  }

  /**
   * Runs a chunked op (control.ts): `chunks` pieces, claimed one at a time by whichever thread is
   * free — this one through `runLocal(piece)`, pool thread t with `scratch[t]` — and returns when
   * all are done. `args` are the op's argument words (kernels.ts, GEMM_CHUNK_ARGS or
   * WINDOW_CHUNK_ARGS). A pool thread that wakes late finds the pieces taken and only reports in;
   * the fork-join still waits for it, as every generation is answered by every thread.
   */
  forkChunks(op: number, args: ArrayLike<number>, chunks: number, scratch: readonly number[], runLocal: (chunk: number) => void): void {
    this.usable();
    if (op === OP.stop || op === OP.gemm || !Object.values(OP).includes(op as never)) throw new RangeError(`not a chunked op: ${op}`);
    if (args.length > CHUNK_ARG_WORDS) throw new RangeError(`a chunked op has at most ${CHUNK_ARG_WORDS} argument words, got ${args.length}`);
    if (!Number.isInteger(chunks) || chunks < 0) throw new RangeError(`chunks must be a non-negative integer, got ${chunks}`);
    const ctl = this.ctl;
    for (let i = 0; i < args.length; i++) this.u32[CTL.args + i] = args[i] >>> 0;
    ctl[CTL.chunks] = chunks;
    Atomics.store(ctl, CTL.next, 0);
    for (let t = 1; t < this.threads; t++) this.u32[CTL.slices + SLICE * t + SLOT.scratch] = (scratch[t] ?? 0) >>> 0;
    this.fork(
      op,
      () => {
        for (let c = Atomics.add(ctl, CTL.next, 1); c < chunks; c = Atomics.add(ctl, CTL.next, 1)) runLocal(c);
      },
      `a piece of op ${op}`,
    );
  }

  /** Whether some pool thread is blocked in Atomics.wait (waking it costs 60–80 µs), a hint only. */
  get asleep(): boolean {
    for (let t = 1; t < this.threads; t++) if (Atomics.load(this.ctl, CTL.slices + SLICE * t + SLOT.sleeping) === 1) return true;
    return false;
  }

  private usable(): void {
    if (this.closed) throw new Error('the thread pool is closed');
    if (this.failure) throw this.failure;
  }

  /**
   * The handshake (control.ts) for a task whose arguments are written: publishes it, runs the
   * caller's share, and waits, in bounded sleeps, until every pool thread has answered.
   */
  private fork(opcode: number, runLocal: () => void, what: string): void {
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.opcode, opcode);
    Atomics.store(ctl, CTL.error, 0);
    Atomics.store(ctl, CTL.pending, this.threads - 1);
    Atomics.add(ctl, CTL.generation, 1);
    Atomics.notify(ctl, CTL.generation);
    const began = performance.now();
    let localError: unknown = null;
    try {
      runLocal();
    } catch (err) {
      localError = err;
    }
    this.join(performance.now() - began);
    if (localError) throw localError;
    const failed = Atomics.load(ctl, CTL.error);
    if (failed) throw new Error(`${what} failed on pool thread ${failed - 1}`);
  }

  /** Waits until every pool thread has finished the current generation, in bounded sleeps. */
  private join(localMs: number): void {
    const ctl = this.ctl;
    for (let i = 0; i < SPIN_POLLS && Atomics.load(ctl, CTL.pending) !== 0; i++);
    if (Atomics.load(ctl, CTL.pending) === 0) return;
    const limitMs = Math.max(this.stallAfterMs, 50 * localMs);
    const start = performance.now();
    for (;;) {
      const p = Atomics.load(ctl, CTL.pending);
      if (p === 0) return;
      const waited = performance.now() - start;
      // A thread that exited will never finish; the others are let finish (within the bound), so
      // none of them is still writing into memory the caller reuses once this throws.
      const exited = this.exitedThreads();
      if (p < 0 || (exited.length > 0 && p <= exited.length) || waited >= limitMs) {
        const why = p < 0 ? 'more completions than threads' : exited.length > 0 ? `pool thread ${exited.join(', ')} exited` : `no completion after ${(waited / 1000).toFixed(1)} s`;
        this.failure = new PoolStallError(`the thread pool stalled (${why}): ${this.describe()}`);
        throw this.failure;
      }
      Atomics.wait(ctl, CTL.pending, p, WAIT_SLICE_MS);
    }
  }

  /** Pool threads (by index) whose slice of the current generation is pending and that have exited. */
  private exitedThreads(): number[] {
    const generation = Atomics.load(this.ctl, CTL.generation);
    const out: number[] = [];
    for (let t = 1; t < this.threads; t++) {
      const at = CTL.slices + SLICE * t;
      if (Atomics.load(this.ctl, at + SLOT.state) === THREAD_STATE.exited && Atomics.load(this.ctl, at + SLOT.finished) !== generation) out.push(t);
    }
    return out;
  }

  /** The control block in words: generation, pending, and each pool thread's state. */
  describe(): string {
    const ctl = this.ctl;
    const generation = Atomics.load(ctl, CTL.generation);
    const threads: string[] = [];
    for (let t = 1; t < this.threads; t++) {
      const at = CTL.slices + SLICE * t;
      const state = STATE_NAMES[Atomics.load(ctl, at + SLOT.state)] ?? 'unknown';
      const started = Atomics.load(ctl, at + SLOT.started);
      const finished = Atomics.load(ctl, at + SLOT.finished);
      const note = finished === generation ? 'done' : started === generation ? 'started, not finished' : 'never started it (lost wake-up?)';
      const code = this.exitCodes.get(t);
      threads.push(`thread ${t} ${state}${code !== undefined ? ` (exit code ${code})` : ''}, started ${started}, finished ${finished}: ${note}`);
    }
    return `generation ${generation}, pending ${Atomics.load(ctl, CTL.pending)}, opcode ${Atomics.load(ctl, CTL.opcode)}; ${threads.join('; ')}`;
  }

  /** Stops the threads; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, CTL.opcode, OP.stop);
    Atomics.add(this.ctl, CTL.generation, 1);
    Atomics.notify(this.ctl, CTL.generation);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /**
   * Test hook: ends pool thread `index` as a crash would. The pool learns of it only through the
   * thread's 'exit' event, i.e. once the event loop runs; the returned promise settles after that.
   */
  terminateThreadForTest(index: number): Promise<number> {
    const w = this.workers[index - 1];
    if (!w) throw new RangeError(`no pool thread ${index}`);
    return w.terminate();
  }
}

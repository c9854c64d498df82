/**
 * A fork-join pool of worker threads for intra-op parallelism: one kernel call is split across
 * the main thread and N−1 pool threads that share the wasm memory, and the call returns when all
 * slices are done, so ops stay synchronous for the caller.
 *
 * Why not piscina: a piscina task costs a message round trip (tens of microseconds, measured in
 * `npm run bench -- --suite pool`), which is as long as a whole matmul of a small layer; here a
 * task is a few writes to a SharedArrayBuffer and an Atomics.notify.
 */

import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { packageRoot } from '../../util/paths.js';
import { CONTROL_WORDS, CTL, GEMM_ARGS, MAX_THREADS, OP, SLICE, SPIN_POLLS } from './control.js';

export interface GemmSlice {
  readonly j0: number;
  readonly j1: number;
  readonly scratch: number;
}

export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly u32: Uint32Array;
  private closed = false;

  private constructor(private readonly workers: Worker[], readonly control: SharedArrayBuffer) {
    this.ctl = new Int32Array(control);
    this.u32 = new Uint32Array(control);
  }

  /** Starts `threads − 1` pool threads (the calling thread is the first of the `threads`). */
  static async start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<ThreadPool> {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const entry = join(packageRoot(), 'dist', 'shared', 'backend', 'wasm', 'thread.js');
    const workers: Worker[] = [];
    for (let index = 1; index < threads; index++) {
      const w = new Worker(entry, { workerData: { module, memory, control, index } });
      workers.push(w);
    }
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
    for (const w of workers) w.unref();
    return new ThreadPool(workers, control);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs gemm with `slices[t]` on thread t (slice 0 on this thread, through `runLocal`) and returns
   * when every slice is done.
   */
  gemm(args: Readonly<Record<(typeof GEMM_ARGS)[number], number>>, slices: readonly GemmSlice[], runLocal: (s: GemmSlice) => void): void {
    if (this.closed) throw new Error('the thread pool is closed');
    const ctl = this.ctl;
    GEMM_ARGS.forEach((name, i) => (this.u32[CTL.args + i] = args[name] >>> 0));
    for (let t = 1; t < slices.length; t++) {
      const at = CTL.slices + SLICE * t;
      ctl[at] = slices[t].j0;
      ctl[at + 1] = slices[t].j1;
      this.u32[at + 2] = slices[t].scratch >>> 0;
    }
    // Threads beyond the slices get an empty range.
    for (let t = slices.length; t < this.threads; t++) {
      const at = CTL.slices + SLICE * t;
      ctl[at] = 0;
      ctl[at + 1] = 0;
    }
    Atomics.store(ctl, CTL.opcode, OP.gemm);
    Atomics.store(ctl, CTL.error, 0);
    Atomics.store(ctl, CTL.pending, this.threads - 1);
    Atomics.add(ctl, CTL.generation, 1);
    Atomics.notify(ctl, CTL.generation);
    let localError: unknown = null;
    try {
      runLocal(slices[0]);
    } catch (err) {
      localError = err;
    }
    for (let i = 0; i < SPIN_POLLS && Atomics.load(ctl, CTL.pending) !== 0; i++);
    for (let p = Atomics.load(ctl, CTL.pending); p !== 0; p = Atomics.load(ctl, CTL.pending)) Atomics.wait(ctl, CTL.pending, p);
    if (localError) throw localError;
    const failed = Atomics.load(ctl, CTL.error);
    if (failed) throw new Error(`a gemm slice failed on pool thread ${failed - 1}`);
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
}

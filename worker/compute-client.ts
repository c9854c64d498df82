/**
 * The network thread's handle on the compute thread: starts dist/worker/compute-thread.js with
 * the backend settings, forwards requests, and hands replies to one listener. A thread that dies
 * or reports a failure is reported once through `onFailure`.
 *
 * A watchdog covers the thread that neither answers nor dies (a wait without end, an endless
 * loop): every request gets exactly one reply, and when requests are outstanding and none has been
 * answered for the stall limit — `stallAfterMs`, or 10 times the longest task seen so far if that
 * is longer, so a model whose shards are slow is not mistaken for a stuck one — the thread is
 * reported stuck and terminated.
 */

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../shared/util/paths.js';
import type { ComputeThreadOptions, FromCompute, ToCompute } from './compute-messages.js';

type Reply = Exclude<FromCompute, { kind: 'started' } | { kind: 'failed' } | { kind: 'loaded' }>;

export interface ComputeWatchdogOptions {
  /** The least time outstanding requests may go unanswered before the thread counts as stuck. */
  readonly stallAfterMs: number;
  /** How often the watchdog looks (default: a tenth of the limit, at most 1 s). */
  readonly checkEveryMs?: number;
}

export class ComputeThread {
  private failed = false;
  private closing = false;
  private exited = false;
  private onReply: (m: Reply) => void = () => {};
  private onFailure: (reason: string, stack?: string) => void = () => {};
  /** Requests posted and not yet answered. */
  private outstanding = 0;
  /** When the thread last made progress: its last reply, or the post that made it busy. */
  private lastProgress = 0;
  private longestTaskMs = 0;
  private readonly watchdog: NodeJS.Timeout;

  private constructor(
    private readonly worker: Worker,
    /** The backend's description, e.g. "webgpu (nvidia: NVIDIA H200)". */
    readonly backend: string,
    /** What the join's `capabilities.device` says, and the GPU adapter's name (null on the CPU). */
    readonly device: 'cpu' | 'webgpu',
    readonly adapter: string | null,
    private readonly limits: ComputeWatchdogOptions,
  ) {
    worker.on('message', (m: FromCompute) => {
      if (m.kind === 'failed') this.fail(`compute thread failed: ${m.message}`, m.stack);
      else if (m.kind === 'bucket') {
        this.lastProgress = performance.now(); // progress within a request, not its reply
        this.onReply(m);
      } else if (m.kind !== 'started') {
        this.progress();
        if (m.kind !== 'loaded') this.onReply(m);
      }
    });
    this.watchdog = setInterval(() => this.check(), limits.checkEveryMs ?? Math.min(1000, limits.stallAfterMs / 10));
    this.watchdog.unref();
    worker.on('error', (err) => this.fail(`compute thread crashed: ${err.message}`, err.stack));
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing) this.fail(`compute thread exited with code ${code}`);
    });
  }

  /** Starts the thread and waits until its backend is ready. */
  static async start(options: ComputeThreadOptions, watchdog: ComputeWatchdogOptions = { stallAfterMs: 60_000 }): Promise<ComputeThread> {
    if (!(watchdog.stallAfterMs > 0)) throw new RangeError(`the compute stall limit must be positive, got ${watchdog.stallAfterMs} ms`);
    const entry = join(packageRoot(), 'dist', 'worker', 'compute-thread.js');
    const worker = new Worker(entry, { workerData: options });
    const started = await new Promise<Extract<FromCompute, { kind: 'started' }>>((resolve, reject) => {
      const onMessage = (m: FromCompute): void => {
        if (m.kind === 'started') {
          cleanup();
          resolve(m);
        } else if (m.kind === 'failed') {
          cleanup();
          reject(new Error(`compute thread failed to start: ${m.message}`));
        }
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(new Error(`compute thread failed to start: ${err.message}`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
    return new ComputeThread(worker, started.backend, started.device, started.adapter, watchdog);
  }

  /** `onFailure` gets a one-line reason and, where there is one, the stack (for a debug log). */
  listen(onReply: (m: Reply) => void, onFailure: (reason: string, stack?: string) => void): void {
    this.onReply = onReply;
    this.onFailure = onFailure;
  }

  post(m: Exclude<ToCompute, { kind: 'close' }>): void {
    if (this.failed || this.closing) return;
    if (this.outstanding++ === 0) this.lastProgress = performance.now();
    this.worker.postMessage(m);
  }

  /** The time the watchdog allows outstanding requests to go unanswered. */
  get stallLimitMs(): number {
    return Math.max(this.limits.stallAfterMs, 10 * this.longestTaskMs);
  }

  private progress(): void {
    const now = performance.now();
    if (this.outstanding > 0) {
      this.longestTaskMs = Math.max(this.longestTaskMs, now - this.lastProgress);
      this.outstanding--;
    }
    this.lastProgress = now;
  }

  private check(): void {
    if (this.failed || this.closing || this.outstanding === 0) return;
    const silentMs = performance.now() - this.lastProgress;
    if (silentMs < this.stallLimitMs) return;
    this.fail(
      `compute thread stuck: no answer for ${(silentMs / 1000).toFixed(1)} s with ${this.outstanding} request${this.outstanding > 1 ? 's' : ''} waiting (limit ${(this.stallLimitMs / 1000).toFixed(1)} s; longest task so far ${(this.longestTaskMs / 1000).toFixed(2)} s)`,
    );
    void this.worker.terminate();
  }

  /** Lets the thread release its backend, then waits for it to exit. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.watchdog);
    if (this.exited) return; // it died already ('exit' will not come again)
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    if (this.failed) await this.worker.terminate();
    else this.worker.postMessage({ kind: 'close' } satisfies ToCompute);
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private fail(reason: string, stack?: string): void {
    if (this.failed) return;
    this.failed = true;
    clearInterval(this.watchdog);
    this.onFailure(reason, stack);
  }
}

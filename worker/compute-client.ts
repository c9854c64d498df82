/**
 * The network thread's handle on the compute thread: starts dist/worker/compute-thread.js with
 * the backend settings, forwards requests, and hands replies to one listener. A thread that dies
 * or reports a failure is reported once through `onFailure`.
 */

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../shared/util/paths.js';
import type { ComputeThreadOptions, FromCompute, ToCompute } from './compute-messages.js';

type Reply = Exclude<FromCompute, { kind: 'started' } | { kind: 'failed' }>;

export class ComputeThread {
  private failed = false;
  private closing = false;
  private exited = false;
  private onReply: (m: Reply) => void = () => {};
  private onFailure: (reason: string, stack?: string) => void = () => {};

  private constructor(private readonly worker: Worker, readonly backend: string) {
    worker.on('message', (m: FromCompute) => {
      if (m.kind === 'failed') this.fail(`compute thread failed: ${m.message}`, m.stack);
      else if (m.kind !== 'started') this.onReply(m);
    });
    worker.on('error', (err) => this.fail(`compute thread crashed: ${err.message}`, err.stack));
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing) this.fail(`compute thread exited with code ${code}`);
    });
  }

  /** Starts the thread and waits until its backend is ready. */
  static async start(options: ComputeThreadOptions): Promise<ComputeThread> {
    const entry = join(packageRoot(), 'dist', 'worker', 'compute-thread.js');
    const worker = new Worker(entry, { workerData: options });
    const backend = await new Promise<string>((resolve, reject) => {
      const onMessage = (m: FromCompute): void => {
        if (m.kind === 'started') {
          cleanup();
          resolve(m.backend);
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
    return new ComputeThread(worker, backend);
  }

  /** `onFailure` gets a one-line reason and, where there is one, the stack (for a debug log). */
  listen(onReply: (m: Reply) => void, onFailure: (reason: string, stack?: string) => void): void {
    this.onReply = onReply;
    this.onFailure = onFailure;
  }

  post(m: Exclude<ToCompute, { kind: 'close' }>): void {
    if (!this.failed && !this.closing) this.worker.postMessage(m);
  }

  /** Lets the thread release its backend, then waits for it to exit. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
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
    this.onFailure(reason, stack);
  }
}

/**
 * A CPU hog for tests that must hold on a busy machine: child processes that spin until stopped,
 * one per core by default, so the code under test competes for every core as it would on a shared
 * CI machine. `stop()` kills them and resolves once they are gone.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

export class CpuHog {
  private constructor(private readonly children: ChildProcess[]) {}

  /** Starts `processes` spinning processes (default: one per core). */
  static start(processes = availableParallelism()): CpuHog {
    const children: ChildProcess[] = [];
    for (let i = 0; i < processes; i++) {
      children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    }
    return new CpuHog(children);
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? -1);
  }

  /** True while every hog process is still running. */
  get running(): boolean {
    return this.children.every((c) => c.exitCode === null && c.signalCode === null);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
  }
}

/**
 * Test fixtures for distributed runs: an in-process coordinator on port 0 (so tests can look at
 * its state) and real worker processes started from the built CLI, all torn down by `closeAll()`.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import type { CoordinatorConfig } from '../../coordinator/config.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import type { CoordinatorMetrics } from '../../coordinator/metrics.js';
import type { StepEvent, TrainReporter } from '../../shared/train/single-process.js';
import { silentLogger } from '../../shared/util/log.js';
import { BIN } from './cli.js';
import { mlpTrainConfig } from './train-config.js';
import { createCliLogger } from '../../cli/logger.js';

export const TOKEN = 'test-token-0123456789';

export function baseConfig(overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    ...mlpTrainConfig(),
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    minWorkers: 1,
    stepTimeoutMs: 20_000,
    heartbeatMs: 1000,
    resume: false,
    sendSamples: false,
    balance: 'even',
    ...overrides,
  };
}

export class Cluster {
  readonly coordinators: Coordinator[] = [];
  readonly workers: ChildProcess[] = [];
  readonly output = new Map<ChildProcess, string>();

  async coordinator(config: CoordinatorConfig, onStep?: (e: StepEvent, c: Coordinator) => void, metrics?: CoordinatorMetrics): Promise<Coordinator> {
    let self: Coordinator | null = null;
    const reporter: TrainReporter = { step: (e) => self && onStep?.(e, self), epoch: () => {} };
    self = await Coordinator.start(config, reporter, process.env.MESHGRAD_TEST_LOG ? createCliLogger({ role: 'coordinator', level: 'debug', json: false }) : silentLogger, metrics);
    this.coordinators.push(self);
    return self;
  }

  worker(url: string, extra: readonly string[] = [], token = TOKEN): ChildProcess {
    const child = spawn(process.execPath, [BIN, 'worker', '--connect', url, '--token', token, '--backoff-max', '0.5', '--log-level', 'warn', '--metrics-port', '0', ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.output.set(child, '');
    const append = (d: Buffer): void => void this.output.set(child, this.output.get(child) + d.toString());
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.workers.push(child);
    return child;
  }

  exited(child: ChildProcess): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
    return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  async closeAll(): Promise<void> {
    for (const c of this.coordinators) await c.close();
    for (const w of this.workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => this.exited(w)));
    this.coordinators.length = 0;
    this.workers.length = 0;
  }
}

/** ‖a − b‖ / ‖b‖ over every parameter together. */
export function relativeDifference(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let num = 0;
  let den = 0;
  for (const [name, vb] of b) {
    const va = a.get(name);
    if (!va || va.length !== vb.length) throw new Error(`parameter ${name} missing or of another size`);
    for (let i = 0; i < vb.length; i++) {
      num += (va[i] - vb[i]) ** 2;
      den += vb[i] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

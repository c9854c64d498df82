/**
 * Real processes for the observability tests: the built CLI (or any program) as a child process
 * whose JSON log lines can be waited for, free TCP ports, and plain HTTP GETs. Everything started
 * here is stopped by `stop()` (SIGTERM, then SIGKILL).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { BIN } from './cli.js';

export type LogLine = Readonly<Record<string, unknown>>;

export class Proc {
  output = '';
  readonly logs: LogLine[] = [];

  private constructor(readonly name: string, readonly child: ChildProcess) {
    let partial = '';
    const take = (d: Buffer): void => {
      const text = d.toString();
      this.output += text;
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line
        }
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
  }

  static start(name: string, program: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc {
    return new Proc(name, spawn(program, [...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** `meshgrad ARGS` from the built CLI. */
  static meshgrad(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc {
    return Proc.start(name, process.execPath, [BIN, ...args], env);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The first JSON log line whose `msg` is `msg`. */
  async waitForLog(msg: string, timeoutMs = 120_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find((l) => l.msg === msg);
      if (found) return found;
      if (this.exited) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before logging '${msg}':\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not log '${msg}' within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** A TCP port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The value of one sample line (`name{labels} value`) in a Prometheus text body, or undefined. */
export function sampleValue(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

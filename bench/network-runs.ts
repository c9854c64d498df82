/**
 * One configuration of `--suite network`, run in a testbed (bench/netns.ts):
 *
 * - meshgrad: dist/bench/network-role.js (an in-process Coordinator that records every step) in
 *   node 0, listening on node 0's address, port 0 (it prints the port), and N real workers
 *   (`node bin/meshgrad.js worker --connect ws://10.77.0.1:PORT --threads 1 --no-metrics`, the
 *   token in the environment) in nodes 1..N; the role's JSON result is read back from a file.
 * - PyTorch DDP over gloo: bench/ddp_gloo.py, rank r in node r+1, rendezvous on node 1's address;
 *   /usr/bin/python3 with OpenMP OpenBLAS on LD_LIBRARY_PATH, OMP_NUM_THREADS=1 and no
 *   OPENBLAS_CORETYPE (as bench/model-steps.ts runs PyTorch), GLOO_SOCKET_IFNAME=eth0.
 *
 * Every process started here has exited (or been killed) when a function returns or throws.
 */

import { hasExited, stopProcesses } from '../shared/util/child-processes.js';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../shared/util/paths.js';
import { DEFAULT_PYTHON, torchEnvironment } from './model-steps.js';
import { NODE_IFACE, type Testbed } from './netns.js';
import { ROLE_READY_PREFIX, type NetworkRoleResult, type RoleReady } from './network-role.js';

/** The port of DDP's rendezvous (inside the testbed's own namespaces, where nothing else listens). */
export const DDP_PORT = 29500;
export const GLOBAL_BATCH = 128;
const OUTPUT_TAIL = 3000;

export interface MeshgradRunSpec {
  readonly model: 'cnn' | 'mlp';
  readonly workers: number;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  /** Appended to the coordinator's flags (a variant's). */
  readonly extraFlags: readonly string[];
  /** Give up after this long. */
  readonly timeoutMs: number;
}

/** The coordinator flags of a meshgrad run, before the variant's. */
export function baseCoordinatorFlags(spec: MeshgradRunSpec, host: string): string[] {
  return [
    '--host', host, '--port', '0',
    '--min-workers', String(spec.workers),
    '--model', spec.model, '--dataset', 'fashion-mnist',
    '--batch-size', String(GLOBAL_BATCH), '--seed', '1',
    '--max-steps', String(spec.warmupSteps + spec.timedSteps),
    '--test-samples', '500',
    '--threads', '1',
    '--balance', 'even',
    '--log-level', 'warn',
  ];
}

function roleScript(): string {
  const built = join(packageRoot(), 'dist', 'bench', 'network-role.js');
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`);
  return built;
}

function workerBin(): string {
  if (!existsSync(join(packageRoot(), 'dist', 'cli', 'main.js'))) throw new Error('dist/cli/main.js is missing: run `npm run build` first');
  return join(packageRoot(), 'bin', 'meshgrad.js');
}

interface Watched {
  readonly name: string;
  readonly child: ChildProcess;
  /** The tail of stdout and stderr together (for errors). */
  output: string;
  /** All of stdout (up to 1 MiB). */
  stdout: string;
}

function watch(name: string, child: ChildProcess): Watched {
  const w: Watched = { name, child, output: '', stdout: '' };
  const append = (d: Buffer): void => {
    w.output = (w.output + d.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', (d: Buffer) => {
    append(d);
    if (w.stdout.length < 2 ** 20) w.stdout += d.toString();
  });
  child.stderr?.on('data', append);
  return w;
}


/** Resolves with the exit code (or signal) once `child` exits; rejects after `timeoutMs`. */
function waitExit(child: ChildProcess, timeoutMs: number, what: string): Promise<number | string> {
  return new Promise((resolve, reject) => {
    if (hasExited(child)) return resolve(child.exitCode ?? child.signalCode ?? -1);
    const timer = setTimeout(() => reject(new Error(`${what} did not finish in ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? -1);
    });
  });
}

/** The first stdout line of `child` that starts with ROLE_READY_PREFIX, parsed. */
function readyLine(child: ChildProcess, timeoutMs: number): Promise<RoleReady> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error('internal: the role has no stdout pipe'));
    const lines = createInterface({ input: child.stdout });
    const done = (err: Error | null, v?: RoleReady): void => {
      clearTimeout(timer);
      lines.close();
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(v!);
    };
    const onExit = (code: number | null, signal: string | null): void => done(new Error(`the coordinator exited (${code ?? signal}) before listening`));
    const timer = setTimeout(() => done(new Error(`the coordinator did not listen within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (line.startsWith(ROLE_READY_PREFIX)) done(null, JSON.parse(line.slice(ROLE_READY_PREFIX.length)) as RoleReady);
    });
  });
}

function failureText(why: string, procs: readonly Watched[]): string {
  return `${why}\n${procs.map((p) => `  [${p.name}] ${p.output.trim().split('\n').slice(-4).join(' | ') || '(no output)'}`).join('\n')}`;
}

/** A meshgrad run: the role in node 0, `spec.workers` workers in nodes 1..N. */
export async function runMeshgradInTestbed(tb: Testbed, spec: MeshgradRunSpec): Promise<NetworkRoleResult> {
  if (tb.nodes < spec.workers + 1) throw new Error(`${spec.workers} workers need ${spec.workers + 1} nodes; the testbed has ${tb.nodes}`);
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-netbed-'));
  const resultFile = join(dir, 'result.json');
  const token = randomBytes(24).toString('base64url');
  const env = { ...process.env, MESHGRAD_TOKEN: token, MESHGRAD_TOKEN_FILE: undefined };
  const host = tb.address(0);
  const procs: Watched[] = [];
  try {
    const args = [process.execPath, roleScript(), '--role-result', resultFile, '--role-skip-steps', String(spec.warmupSteps), '--role-iface', NODE_IFACE, ...baseCoordinatorFlags(spec, host), ...spec.extraFlags];
    const role = watch('coordinator', tb.exec(0, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    procs.push(role);
    const ready = await readyLine(role.child, 60_000).catch((err: Error) => {
      throw new Error(failureText(err.message, procs));
    });
    const bin = workerBin();
    for (let i = 1; i <= spec.workers; i++) {
      const argv = [process.execPath, bin, 'worker', '--connect', `ws://${host}:${ready.port}`, '--name', `w${i}`, '--threads', '1', '--no-metrics', '--log-level', 'warn', '--backoff-max', '2'];
      procs.push(watch(`worker ${i}`, tb.exec(i, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })));
    }
    const code = await waitExit(role.child, spec.timeoutMs, 'the meshgrad run').catch((err: Error) => {
      throw new Error(failureText(err.message, procs));
    });
    if (!existsSync(resultFile)) throw new Error(failureText(`the coordinator exited (${code}) without a result`, procs));
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as NetworkRoleResult;
    if (code !== 0 || !result.completed) throw new Error(failureText(`the run stopped after ${result.steps} steps (exit ${code})`, procs));
    // The workers leave once the coordinator says the run is finished.
    await Promise.all(procs.slice(1).map((p) => waitExit(p.child, 10_000, p.name).catch(() => undefined)));
    return result;
  } finally {
    await stopProcesses(procs.map((p) => p.child), 3000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What bench/ddp_gloo.py prints (rank 0). */
export interface DdpResult {
  readonly model: string;
  readonly world: number;
  readonly globalBatch: number;
  readonly threadsPerRank: number;
  readonly params: number;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly stepMs: readonly number[];
  readonly medianMs: number;
  readonly samplesPerSecond: number;
  readonly rxBytesPerStep: number | null;
  readonly txBytesPerStep: number | null;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly torch: string;
}

export interface DdpRunSpec {
  readonly model: 'cnn' | 'mlp';
  readonly world: number;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly timeoutMs: number;
  readonly python?: string;
}

export function ddpScriptPath(): string {
  const beside = fileURLToPath(new URL('./ddp_gloo.py', import.meta.url));
  return existsSync(beside) ? beside : join(packageRoot(), 'bench', 'ddp_gloo.py');
}

/** The environment of a DDP rank: PyTorch's fair-comparison one (1 thread), gloo on the testbed interface. */
export function ddpEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...torchEnvironment(1, base), GLOO_SOCKET_IFNAME: NODE_IFACE };
}

/** DDP over gloo: rank r in node r+1 (world 1: one process in node 1, no process group). */
export async function runDdpInTestbed(tb: Testbed, spec: DdpRunSpec): Promise<DdpResult> {
  if (tb.nodes < spec.world + 1) throw new Error(`world ${spec.world} needs ${spec.world + 1} nodes; the testbed has ${tb.nodes}`);
  const python = spec.python ?? DEFAULT_PYTHON;
  const init = `tcp://${tb.address(1)}:${DDP_PORT}`;
  const procs: Watched[] = [];
  try {
    for (let r = 0; r < spec.world; r++) {
      const argv = [python, ddpScriptPath(), '--model', spec.model, '--rank', String(r), '--world', String(spec.world), '--init', init, '--warmup', String(spec.warmupSteps), '--steps', String(spec.timedSteps), '--global-batch', String(GLOBAL_BATCH), '--iface', NODE_IFACE];
      procs.push(watch(`rank ${r}`, tb.exec(r + 1, argv, { env: ddpEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] })));
    }
    const codes = await Promise.all(procs.map((p) => waitExit(p.child, spec.timeoutMs, `DDP ${p.name}`))).catch((err: Error) => {
      throw new Error(failureText(err.message, procs));
    });
    if (codes.some((c) => c !== 0)) throw new Error(failureText(`DDP ranks exited with ${codes.join(', ')}`, procs));
    const line = procs[0].stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
    if (line === undefined) throw new Error(failureText('DDP rank 0 printed no JSON line', procs));
    return JSON.parse(line) as DdpResult;
  } finally {
    await stopProcesses(procs.map((p) => p.child), 3000);
  }
}

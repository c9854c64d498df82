// Coordinator faults injected into real processes: a checkpoint directory on a full disk (a real
// tmpfs), SIGTERM while a worker is frozen (SIGSTOP) holding a shard, the temp files a killed
// coordinator left behind, and a worker's own SIGTERM (a leave, not a failure).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import type { RunCursor } from '../../coordinator/run-checkpoint.js';
import { loadCheckpoint } from '../../shared/checkpoint/checkpoint.js';
import { epochPermutation } from '../../shared/data/sampler.js';
import { buildModel } from '../../shared/nn/spec.js';
import { PRESETS } from '../../shared/nn/presets.js';
import { Rng } from '../../shared/util/random.js';
import { baseConfig, Cluster, TOKEN } from '../helpers/cluster.js';
import { get, Proc, sampleValue, type LogLine } from '../helpers/processes.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const cluster = new Cluster();
const procs: Proc[] = [];
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    // A stopped (SIGSTOP) process cannot act on SIGTERM: let it go on first.
    if (!p.exited) p.child.kill('SIGCONT');
    await p.stop(2000);
  }
  await cluster.closeAll();
  for (const f of cleanups.splice(0).reverse()) await f();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tmpfs(bytes: number): Tmpfs {
  const disk = mountTmpfs(bytes);
  // Registered before any process writes there; afterEach unmounts after the processes exit.
  cleanups.push(() => disk.unmount());
  return disk;
}

function start(name: string, args: readonly string[]): Proc {
  const p = Proc.meshgrad(name, args, { MESHGRAD_TOKEN: TOKEN });
  procs.push(p);
  return p;
}

function exitCode(p: Proc): Promise<number | null> {
  if (p.exited) return Promise.resolve(p.child.exitCode);
  return new Promise((resolve) => p.child.once('exit', (code) => resolve(code)));
}

/** Polls `p`'s JSON log lines until one satisfies `match`. */
async function waitForLine(p: Proc, what: string, match: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = p.logs.find(match);
    if (found) return found;
    if (p.exited) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before logging ${what}:\n${p.output}`);
    if (Date.now() > deadline) throw new Error(`${p.name} did not log ${what} within ${timeoutMs} ms:\n${p.output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const COORDINATOR = ['coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--threads', '1'];
const WORKER = ['--metrics-port', '0', '--threads', '1', '--backoff-max', '0.5', '--log-level', 'info'];

/** The last line of a process's stderr (the CLI's one-line error). */
function lastLine(p: Proc): string {
  return p.output.trim().split('\n').at(-1) ?? '';
}

// The mlp checkpoint: parameters plus Adam's two moments, float32 (~2.8 MB), and a small header.
const MLP_PARAMETERS = buildModel(PRESETS.mlp, new Rng(1), { numClasses: 10 }).model.parameterCount();
const MLP_CHECKPOINT_BYTES = 3 * 4 * MLP_PARAMETERS;

const noTmpfs = tmpfsUnavailable();
const skipNote = noTmpfs ? ` (skipped: ${noTmpfs})` : '';

describe('checkpoint directory on a full disk', () => {
  it.skipIf(noTmpfs !== '')(`default (continue): warns naming the file and ENOSPC, keeps the previous checkpoint, trains on, writes --save and the summary, tells workers; exits 1 naming the path${skipNote}`, async () => {
    // Room for one checkpoint but not for a second next to it (the atomic write needs both).
    const disk = tmpfs(Math.ceil(1.5 * MLP_CHECKPOINT_BYTES));
    const out = tempDir('meshgrad-enospc-out-');
    const latest = join(disk.dir, 'latest.safetensors');
    const coordinator = start('coordinator', [
      ...COORDINATOR, '--train-samples', '1280', '--batch-size', '128', '--epochs', '2', '--test-samples', '500',
      '--checkpoint-dir', disk.dir, '--checkpoint-every', '2', '--save', join(out, 'model.safetensors'), '--summary-json', join(out, 'summary.json'),
    ]);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const worker = start('worker', ['worker', '--connect', url, ...WORKER]);
    const code = await exitCode(coordinator);

    expect(code, coordinator.output).toBe(1);
    const failure = `checkpoint at step 20 failed: could not write ${latest}: ENOSPC: no space left on device, write; the previous checkpoint (step 2) is kept`;
    expect(lastLine(coordinator)).toBe(`meshgrad: ${failure}`);
    expect(coordinator.logs.filter((l) => l.msg === 'checkpoint written').map((l) => l.step)).toEqual([2]);
    const warned = coordinator.logs.filter((l) => l.msg === 'checkpoint failed; training goes on (--checkpoint-failure continue)');
    expect(warned.map((l) => l.step)).toEqual([4, 6, 8, 10, 12, 14, 16, 18, 20]);
    for (const l of warned) {
      expect(l).toMatchObject({ level: 'warn', path: latest, code: 'ENOSPC', previousStep: 2 });
      expect(l.error).toMatch(new RegExp(`^could not write ${latest}: ENOSPC: no space left on device`));
    }
    expect(coordinator.logs.filter((l) => l.msg === 'final checkpoint failed')).toMatchObject([{ level: 'error', path: latest, step: 20, failures: 10 }]);

    // The previous checkpoint is whole and no temp file is left on the disk (history.json, the
    // run's per-epoch figures for `meshgrad report`, is small enough to be written or not).
    expect(readdirSync(disk.dir).filter((f) => f !== 'history.json')).toEqual(['latest.safetensors']);
    expect(((await loadCheckpoint(latest)).meta.cursor as RunCursor).step).toBe(2);
    // The run went on to the end, and what lives on the other disk was written.
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ steps: 20, interrupted: false, checkpoint: null, checkpointFailures: 10, failure });
    expect((await loadCheckpoint(join(out, 'model.safetensors'))).meta.steps).toBe(20);
    // The worker was told the run finished (leave), so it stops instead of reconnecting.
    expect(await exitCode(worker)).toBe(0);
    expect(worker.logs.some((l) => l.msg === 'run finished')).toBe(true);
  });

  it.skipIf(noTmpfs !== '')(`--checkpoint-failure stop: stops at the failed checkpoint, writes --save and the summary, tells workers (shutdown), exits 1 naming the path${skipNote}`, async () => {
    const disk = tmpfs(1 << 20); // not even one checkpoint fits
    const out = tempDir('meshgrad-enospc-out-');
    const latest = join(disk.dir, 'latest.safetensors');
    const coordinator = start('coordinator', [
      ...COORDINATOR, '--train-samples', '1280', '--batch-size', '128', '--epochs', '2', '--test-samples', '500', '--checkpoint-failure', 'stop',
      '--checkpoint-dir', disk.dir, '--checkpoint-every', '2', '--save', join(out, 'model.safetensors'), '--summary-json', join(out, 'summary.json'),
    ]);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const worker = start('worker', ['worker', '--connect', url, ...WORKER]);
    const code = await exitCode(coordinator);

    expect(code, coordinator.output).toBe(1);
    const failure = `checkpoint at step 2 failed: could not write ${latest}: ENOSPC: no space left on device, write; there is no earlier checkpoint`;
    expect(lastLine(coordinator)).toBe(`meshgrad: ${failure}`);
    expect(coordinator.logs.find((l) => l.msg === 'checkpoint failed; stopping the run (--checkpoint-failure stop)')).toMatchObject({ level: 'error', path: latest, step: 2, code: 'ENOSPC' });
    expect(coordinator.logs.find((l) => l.msg === 'final checkpoint failed')).toMatchObject({ step: 2, failures: 2 });
    expect(readdirSync(disk.dir)).toEqual([]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ steps: 2, interrupted: true, checkpoint: null, checkpointFailures: 2, failure });
    expect((await loadCheckpoint(join(out, 'model.safetensors'))).meta.steps).toBe(2);
    // Told `leave` (shutdown: a restarted coordinator may resume), not cut off with 1001.
    const lost = await waitForLine(worker, "the coordinator's leave", (l) => l.msg === 'connection lost; reconnecting');
    expect(lost.reason).toBe('coordinator shutting down');
  });

  it.skipIf(noTmpfs !== '')(`counts every failed checkpoint in meshgrad_checkpoint_failures_total; the run still returns its summary${skipNote}`, async () => {
    const disk = tmpfs(1 << 20);
    const registry = new Registry();
    const c = await cluster.coordinator(baseConfig({ trainSamples: 512, maxSteps: 4, checkpointDir: disk.dir, checkpointEvery: 2, testSamples: 200 }), undefined, createCoordinatorMetrics(registry));
    const worker = cluster.worker(c.url);
    const summary = await c.run();
    await c.close();
    expect(summary).toMatchObject({ steps: 4, interrupted: false, checkpoint: null, checkpointFailures: 3 });
    expect(summary.failure).toMatch(/^checkpoint at step 4 failed: could not write .*latest\.safetensors: ENOSPC/);
    const value = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
    expect(await value('meshgrad_checkpoint_failures_total')).toBe(3); // steps 2 and 4, and the end
    expect(await value('meshgrad_checkpoints_total')).toBe(0);
    expect(await cluster.exited(worker)).toBe(0);
  });
});

describe('--save on a full disk', () => {
  it.skipIf(noTmpfs !== '')(`fails naming the file and the cause, and the workers are still told the run finished (leave) first${skipNote}`, async () => {
    const disk = tmpfs(256 * 1024); // the parameters alone are ~0.9 MB
    const save = join(disk.dir, 'model.safetensors');
    const c = await cluster.coordinator(baseConfig({ trainSamples: 512, maxSteps: 2, save, testSamples: 200 }));
    const worker = cluster.worker(c.url);
    await expect(c.run()).rejects.toThrow(new RegExp(`^could not write ${save}: ENOSPC: no space left on device`));
    expect(await cluster.exited(worker)).toBe(0); // `leave {reason: finished}`, not a 1001 close and reconnects
    expect(readdirSync(disk.dir)).toEqual([]);
  });
});

describe('left-over temporary files', () => {
  it('are removed at start (only those of meshgrad’s temp-name pattern, not a live writer’s), and the count is logged', async () => {
    const dir = tempDir('meshgrad-sweep-');
    const dead = spawnSync(process.execPath, ['-e', '']).pid; // a process id no longer in use
    const leftOver = [`.latest.safetensors.tmp-${dead}-0123456789ab`, `.model.safetensors.tmp-${dead}-abcdef012345`];
    const live = `.latest.safetensors.tmp-${process.pid}-00112233aabb`; // this test process: alive
    const others = ['notes.txt', `latest.safetensors.tmp-${dead}-0123456789ab`, '.latest.safetensors.tmp-x', 'model.safetensors'];
    for (const name of [...leftOver, live, ...others]) writeFileSync(join(dir, name), 'partial');
    const coordinator = start('coordinator', [...COORDINATOR, '--checkpoint-dir', dir]);
    const removed = await coordinator.waitForLog('removed left-over temporary files');
    expect(removed).toMatchObject({ level: 'info', dir, count: 2 });
    expect((removed.files as string[]).sort()).toEqual([...leftOver].sort());
    expect(await coordinator.waitForLog('left temporary files of a live process alone')).toMatchObject({ files: [live] });
    await coordinator.waitForLog('waiting for workers');
    expect(readdirSync(dir).sort()).toEqual([live, ...others].sort());
    for (const name of others) expect(readFileSync(join(dir, name), 'utf8')).toBe('partial');
    await coordinator.stop();
    expect(coordinator.child.exitCode).toBe(0);
  });
});

describe('a frozen worker (SIGSTOP) holding a shard', () => {
  it('is named in a warning once the step is late; SIGTERM then abandons the step, checkpoints the last completed one and exits 0 within the bound; --resume uses every sample once', async () => {
    const dir = tempDir('meshgrad-frozen-');
    const common = { trainSamples: 2560, batchSize: 128, testSamples: 500 } as const;
    const coordinator = start('coordinator', [
      ...COORDINATOR, '--train-samples', '2560', '--batch-size', '128', '--epochs', '100', '--test-samples', '500',
      '--min-workers', '2', '--balance', 'even', '--checkpoint-dir', dir, '--stop-timeout', '3',
      // The step must wait for the frozen worker: no copy of its shard to the healthy one.
      '--no-speculation',
    ]);
    const metrics = `http://127.0.0.1:${String((await coordinator.waitForLog('metrics listening')).port)}`;
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    start('healthy', ['worker', '--connect', url, '--name', 'healthy', ...WORKER]);
    const frozen = start('frozen', ['worker', '--connect', url, '--name', 'frozen', ...WORKER]);
    // Some steps timed (the straggler threshold follows them), then the freeze.
    await coordinator.waitForLog('progress', 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    frozen.child.kill('SIGSTOP');

    // The step waits for it: the coordinator says so, naming it, well before the heartbeat drop (20 s).
    const late = await waitForLine(coordinator, 'a straggler warning', (l) => l.msg === 'step waiting for a late worker', 15_000);
    expect(late.level).toBe('warn');
    expect(String(late.worker)).toMatch(/^w\d+ \(frozen\)$/);
    expect(Number(late.heldMs)).toBeGreaterThan(Number(late.thresholdMs));
    expect(Number(late.thresholdMs)).toBeGreaterThanOrEqual(1000);
    expect(coordinator.logs.filter((l) => l.msg === 'step waiting for a late worker' && l.step === late.step)).toHaveLength(1);
    expect(coordinator.logs.some((l) => l.msg === 'worker dropped')).toBe(false);
    expect(sampleValue((await get(`${metrics}/metrics`)).body, 'meshgrad_straggler_warnings_total')).toBeGreaterThanOrEqual(1);

    const sigterm = Date.now();
    coordinator.child.kill('SIGTERM');
    const code = await exitCode(coordinator);
    const stopMs = Date.now() - sigterm;
    expect(code, coordinator.output).toBe(0);
    // It waited --stop-timeout (3 s) for the step, then gave it up: well inside docker stop's 10 s.
    expect(stopMs).toBeGreaterThanOrEqual(2900);
    expect(stopMs).toBeLessThan(9500);
    console.log(`coordinator exit ${stopMs} ms after SIGTERM (--stop-timeout 3)`);
    const abandoned = coordinator.logs.find((l) => l.msg === 'stop: abandoned the unfinished step');
    expect(abandoned).toMatchObject({ level: 'warn', step: late.step, lastCompletedStep: late.step });
    expect(abandoned?.waitingFor).toEqual([late.worker]);
    const written = coordinator.logs.filter((l) => l.msg === 'checkpoint written').at(-1);
    expect(written?.step).toBe(late.step);
    const cursor = (await loadCheckpoint(join(dir, 'latest.safetensors'))).meta.cursor as RunCursor;
    expect(cursor.step).toBe(late.step);
    frozen.child.kill('SIGKILL');

    // Resumed in-process (to audit samples) with one fresh worker: the rest of that epoch, from
    // the step that was abandoned. Together the two runs use each sample of it exactly once.
    const stepsPerEpoch = 2560 / 128;
    const resumed = await cluster.coordinator(baseConfig({ ...common, epochs: cursor.epoch + 1, checkpointDir: dir, resume: true, auditSamples: true }));
    cluster.worker(resumed.url);
    const rest = await resumed.run();
    expect(rest).toMatchObject({ interrupted: false, steps: (cursor.epoch + 1) * stepsPerEpoch, failure: null });
    const usage = resumed.sampleUsage.get(cursor.epoch)!;
    const order = epochPermutation(2560, 1, cursor.epoch);
    const before = new Set(order.subarray(0, cursor.batch * 128));
    for (let i = 0; i < 2560; i++) expect(usage[i], `sample ${i}`).toBe(before.has(i) ? 0 : 1);
    expect([...resumed.sampleUsage.keys()]).toEqual([cursor.epoch]);
  });
});

describe('a worker process given SIGTERM', () => {
  it('leaves the run (a leave, not a failure); its shard is redone and every sample is used once', async () => {
    const registry = new Registry();
    let victim: ReturnType<Cluster['worker']> | null = null;
    const c = await cluster.coordinator(baseConfig({ trainSamples: 3840, batchSize: 128, auditSamples: true, minWorkers: 1, testSamples: 200 }), (e) => {
      if (e.step === 5 && victim) {
        victim.kill('SIGTERM');
        victim = null;
      }
    }, createCoordinatorMetrics(registry));
    const stays = cluster.worker(c.url);
    const leaves = cluster.worker(c.url);
    for (let i = 0; c.activeWorkers.length < 2; i++) {
      if (i > 600) throw new Error('the two workers did not join');
      await new Promise((r) => setTimeout(r, 50));
    }
    victim = leaves;
    const summary = await c.run();
    expect(summary.steps).toBe(30);
    expect(summary.workersJoined).toBe(2);
    expect(summary.workers).toBe(1);
    expect(c.sampleUsage.get(0)!.every((n) => n === 1)).toBe(true);
    expect(await cluster.exited(leaves)).toBe(0);
    expect(await cluster.exited(stays)).toBe(0);
    const count = async (name: string, labels: Record<string, string>): Promise<number> =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))?.value ?? 0;
    expect(await count('meshgrad_membership_changes_total', { kind: 'leave' })).toBe(1);
    expect(await count('meshgrad_membership_changes_total', { kind: 'drop' })).toBe(0);
    for (const kind of ['disconnect', 'timeout', 'silent', 'rejected']) expect(await count('meshgrad_worker_failures_total', { kind })).toBe(0);
  });
});

/**
 * `--suite models` (issue 12): the training step of the four presets of the speed comparison —
 * `mlp` (batch 128, Fashion-MNIST), `cnn` (batch 128), `char-lstm` (batch 32 × context 64,
 * Moby-Dick) and `gpt-tiny` (batch 32 × 64) — in meshgrad on its wasm backend with 1 and with 2
 * threads, next to PyTorch with as many threads, and the ratio PyTorch ms / meshgrad ms (> 1:
 * meshgrad is faster) against the acceptance targets: at least 0.8× PyTorch's speed on 1 thread
 * (mlp at least 1.0×), and with 2 threads every preset faster than with 1 and at least 0.8×
 * PyTorch. The 1-thread profile of each preset (bench/profile.ts) shows where meshgrad's time goes.
 *
 * A meshgrad step is exactly the trainer's (shared/train/single-process.ts): batch gather, then in
 * one backend scope forward + cross-entropy + backward, gradient clipping where the preset sets
 * clipNorm, and the preset's optimizer. PyTorch's step is bench/torch_presets.py (the same models,
 * optimizers and clipping, on a fixed random batch of the same shape and dtype), run by Debian's
 * `/usr/bin/python3` (python3-torch, a reference outside the npm install) with the environment of
 * a fair comparison: Debian's OpenMP OpenBLAS (LD_LIBRARY_PATH), OMP_NUM_THREADS = the threads
 * measured, no OPENBLAS_CORETYPE. Its parameter count must equal meshgrad's model's: a guard that
 * the two architectures match. Without python3-torch the suite says so and shows meshgrad alone.
 *
 * TensorFlow.js is not in this suite any more: its CPU backend needs ~30 s per CNN step (its WASM
 * backend has no convolution gradients, and tfjs has no attention layer), and PyTorch is the
 * competitor the issue names; the MLP suite keeps the tfjs comparison.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HeapStats } from '../shared/backend/wasm/heap.js';
import { setDefaultBackend } from '../shared/backend/default.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import type { Dataset } from '../shared/data/dataset.js';
import { openDataset } from '../shared/data/registry.js';
import { BatchSampler } from '../shared/data/sampler.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel, contextLength, type ModelSpec } from '../shared/nn/spec.js';
import { clipGradNorm } from '../shared/optim/clip.js';
import { createOptimizer, type OptimizerName } from '../shared/optim/factory.js';
import { computeGradients } from '../shared/train/classify.js';
import { attachGrads, detachGrads, paramSlots } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';
import { openMeshgradEngine, type MeshgradEngine, type MeshgradEngineId } from './backends.js';
import { checkLossDecrease, heapFlat } from './mlp-step.js';
import { profilePreset, type ProfileResult } from './profile.js';
import { timingStats, type TimingStats } from './report.js';

/** The presets compared, in the order they run and print. */
export const MODEL_PRESETS = ['mlp', 'cnn', 'char-lstm', 'gpt-tiny'] as const;
export type ModelPresetName = (typeof MODEL_PRESETS)[number];

export type ThreadCount = 1 | 2;
export const MODEL_THREADS: readonly ThreadCount[] = [1, 2];

/** Issue 12's acceptance targets, as PyTorch median ms / meshgrad median ms. */
export const MODEL_TARGETS = {
  oneThread: { mlp: 1.0, cnn: 0.8, 'char-lstm': 0.8, 'gpt-tiny': 0.8 } as Readonly<Record<ModelPresetName, number>>,
  twoThreads: 0.8,
  /** meshgrad's 2-thread step must be faster than its 1-thread step (1-thread ms / 2-thread ms above this). */
  twoThreadScaling: 1,
} as const;

/** The dataset each preset trains on (its batch size and hyper-parameters are the preset's defaults). */
const DATASETS: Readonly<Record<ModelPresetName, string>> = { mlp: 'fashion-mnist', cnn: 'fashion-mnist', 'char-lstm': 'moby-dick', 'gpt-tiny': 'moby-dick' };

/** Warm-up and timed steps per preset (the same for both engines); --quick: a smoke test. */
const STEPS: Readonly<Record<ModelPresetName, { warmup: number; timed: number }>> = {
  mlp: { warmup: 10, timed: 50 },
  cnn: { warmup: 3, timed: 20 },
  'char-lstm': { warmup: 3, timed: 20 },
  'gpt-tiny': { warmup: 3, timed: 20 },
};
const QUICK_STEPS = { warmup: 1, timed: 3 } as const;
/** Profiled steps per preset at 1 thread (after 2 warm-up steps; --quick: 1 warm-up + 2). */
const PROFILE_STEPS = 5;
/** Rows of each profile that the suite keeps (the biggest). */
export const PROFILE_TOP_ROWS = 8;

/** Debian's python3, which python3-torch installs torch for. */
export const DEFAULT_PYTHON = '/usr/bin/python3';
/** Debian's OpenMP build of OpenBLAS (libopenblas0-openmp), which torch's BLAS calls should reach. */
export const OPENBLAS_OPENMP_DIR = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/** bench/torch_presets.py, found from the source tree (vitest) or from dist/bench (the built bench). */
export function torchScriptPath(): string {
  const beside = fileURLToPath(new URL('./torch_presets.py', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL('../../bench/torch_presets.py', import.meta.url));
}

/** A preset's setting as both engines run it. */
export interface PresetSetting {
  readonly preset: ModelPresetName;
  readonly dataset: string;
  readonly batchSize: number;
  /** Tokens per sample (language models), else null. */
  readonly context: number | null;
  readonly optimizer: OptimizerName;
  readonly lr: number;
  readonly weightDecay: number | null;
  readonly clipNorm: number | null;
}

export function presetSetting(preset: ModelPresetName): PresetSetting {
  const spec: ModelSpec = PRESETS[preset];
  const d = spec.defaults ?? {};
  if (d.batchSize === undefined) throw new Error(`internal: preset ${preset} has no default batch size`);
  return {
    preset,
    dataset: DATASETS[preset],
    batchSize: d.batchSize,
    context: contextLength(spec) ?? null,
    optimizer: d.optimizer ?? 'adam',
    lr: d.lr ?? 1e-3,
    weightDecay: d.weightDecay ?? null,
    clipNorm: d.clipNorm ?? null,
  };
}

/** A preset's training split, opened once per preset for all its runs. */
export function openPresetData(preset: ModelPresetName): Dataset {
  return openDataset(DATASETS[preset], { contextLength: contextLength(PRESETS[preset]) }).train;
}

/** The number of parameters of meshgrad's `preset` model for a dataset of `numClasses` classes. */
export function meshgradParamCount(preset: ModelPresetName, numClasses: number): number {
  setDefaultBackend(cpu);
  const { model } = buildModel(PRESETS[preset], new Rng(1), { numClasses });
  return model.parameters().reduce((s, p) => s + p.size, 0);
}

// ---------------------------------------------------------------------------------------------
// meshgrad
// ---------------------------------------------------------------------------------------------

export interface MeshgradRun {
  readonly description: string;
  readonly threads: number;
  readonly params: number;
  readonly warmupSteps: number;
  readonly timing: TimingStats;
  readonly samplesPerSecond: number;
  /** Loss of the first (warm-up) step. */
  readonly initialLoss: number;
  /** Losses of the timed steps. */
  readonly losses: readonly number[];
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly lossCheck: { readonly passed: boolean; readonly detail: string };
  /** The wasm heap after the warm-up and after the timed steps (flat: every step recycles its memory). */
  readonly heap: { readonly before: HeapStats; readonly after: HeapStats; readonly flat: boolean } | null;
}

export function engineIdFor(threads: ThreadCount): MeshgradEngineId {
  return threads === 2 ? 'meshgrad-wasm-2t' : 'meshgrad-wasm-1t';
}

/**
 * `warmup + timed` training steps of `preset` on `engine`, as the trainer runs them: batch gather,
 * then in one backend scope forward, cross-entropy, backward, clipping (if the preset sets
 * clipNorm) and the optimizer step; then the gradients are detached. Times the timed steps.
 */
export function runMeshgradPreset(preset: ModelPresetName, engine: MeshgradEngine, data: Dataset, steps: { warmup: number; timed: number }): MeshgradRun {
  const setting = presetSetting(preset);
  const spec = PRESETS[preset];
  const backend = engine.backend;
  setDefaultBackend(backend);
  try {
    const { model } = buildModel(spec, new Rng(1), { numClasses: data.numClasses });
    const params = model.parameters().reduce((s, p) => s + p.size, 0);
    const slots = paramSlots(model);
    const optimizer = createOptimizer(setting.optimizer, slots, { lr: setting.lr, weightDecay: setting.weightDecay ?? undefined, vectorOps: backend.vectorOps?.() });
    const sampler = new BatchSampler({ size: data.size, batchSize: setting.batchSize, seed: 1, dropLast: true });
    if (sampler.numBatches < steps.warmup + steps.timed) throw new Error(`${preset}: ${steps.warmup + steps.timed} steps need more than the epoch's ${sampler.numBatches} batches`);
    const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
    const clipNorm = setting.clipNorm;
    model.train();
    const times: number[] = [];
    const losses: number[] = [];
    let initialLoss = NaN;
    let heapBefore: HeapStats | null = null;
    let i = 0;
    for (const indices of sampler.epoch(0)) {
      if (i >= steps.warmup + steps.timed) break;
      if (i === steps.warmup) heapBefore = engine.memoryStats();
      const started = performance.now();
      const batch = data.batch(indices, buffers);
      const loss = backend.scope(() => {
        const r = computeGradients(model, batch);
        attachGrads(model, slots);
        if (clipNorm !== null) clipGradNorm(slots, clipNorm);
        optimizer.step();
        return r.loss;
      });
      detachGrads(model, slots);
      const ms = performance.now() - started;
      if (i === 0) initialLoss = loss;
      if (i >= steps.warmup) {
        times.push(ms);
        losses.push(loss);
      }
      i++;
    }
    const heapAfter = engine.memoryStats();
    const timing = timingStats(times);
    return {
      description: engine.description,
      threads: engine.threads,
      params,
      warmupSteps: steps.warmup,
      timing,
      samplesPerSecond: (setting.batchSize * 1000) / timing.meanMs,
      initialLoss,
      losses,
      firstLoss: losses[0] ?? NaN,
      lastLoss: losses[losses.length - 1] ?? NaN,
      lossCheck: checkLossDecrease(initialLoss, losses),
      heap: heapBefore && heapAfter ? { before: heapBefore, after: heapAfter, flat: heapFlat(heapBefore, heapAfter) } : null,
    };
  } finally {
    setDefaultBackend(cpu);
  }
}

// ---------------------------------------------------------------------------------------------
// PyTorch
// ---------------------------------------------------------------------------------------------

export interface TorchAvailability {
  readonly available: boolean;
  /** The python interpreter asked. */
  readonly python: string;
  /** torch's version, when available. */
  readonly version: string | null;
  /** Why PyTorch is not measured ('' when it is). */
  readonly reason: string;
}

/** Whether `python` exists and imports torch (Debian: apt install python3-torch). */
export function torchAvailability(python: string = DEFAULT_PYTHON): TorchAvailability {
  if (!existsSync(python)) return { available: false, python, version: null, reason: `${python} not found (PyTorch comes from Debian's python3-torch)` };
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { available: false, python, version: null, reason: `${python} did not run: ${r.error.message}` };
  if (r.status !== 0) return { available: false, python, version: null, reason: `${python} has no torch module (apt install python3-torch)` };
  return { available: true, python, version: r.stdout.trim(), reason: '' };
}

/**
 * The environment of PyTorch's child process with `threads` threads: this one's, with Debian's
 * OpenMP OpenBLAS first on LD_LIBRARY_PATH, OMP_NUM_THREADS = threads, and OPENBLAS_CORETYPE removed
 * (OpenBLAS then picks its kernels for this CPU itself).
 */
export function torchEnvironment(threads: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.OPENBLAS_CORETYPE;
  const previous = base.LD_LIBRARY_PATH;
  env.LD_LIBRARY_PATH = previous ? `${OPENBLAS_OPENMP_DIR}:${previous}` : OPENBLAS_OPENMP_DIR;
  env.OMP_NUM_THREADS = String(threads);
  return env;
}

/** What bench/torch_presets.py prints (one JSON line). */
interface TorchScriptOutput {
  readonly preset: string;
  readonly threads: number;
  readonly batchSize: number;
  readonly params: number;
  readonly warmupSteps: number;
  readonly timedSteps: number;
  readonly medianMs: number | null;
  readonly meanMs: number | null;
  readonly minMs: number | null;
  readonly maxMs: number | null;
  readonly firstLoss: number | null;
  readonly lastLoss: number | null;
  readonly torch: string;
  readonly blas: readonly string[];
}

export interface TorchRun {
  /** Threads torch reports using (torch.get_num_threads() after set_num_threads). */
  readonly threads: number;
  readonly params: number;
  readonly warmupSteps: number;
  readonly timing: TimingStats;
  readonly samplesPerSecond: number;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly torchVersion: string;
  /** The BLAS / OpenMP libraries the child mapped (to show which OpenBLAS build ran). */
  readonly blas: readonly string[];
  /** The command line, for running it by hand (with the environment above). */
  readonly command: string;
}

export interface TorchRunOptions {
  readonly warmup: number;
  readonly timed: number;
  /** The vocabulary size of the language models (the dataset's number of classes). */
  readonly vocab: number;
  readonly python?: string;
}

/** PyTorch's step of `preset` with `threads` threads (bench/torch_presets.py); throws, with its stderr, when the child fails. */
export function runTorchPreset(preset: ModelPresetName, threads: number, options: TorchRunOptions): TorchRun {
  const python = options.python ?? DEFAULT_PYTHON;
  const args = [torchScriptPath(), '--preset', preset, '--threads', String(threads), '--warmup', String(options.warmup), '--steps', String(options.timed), '--vocab', String(options.vocab)];
  const r = spawnSync(python, args, { encoding: 'utf8', env: torchEnvironment(threads), timeout: 600_000, maxBuffer: 16 * 2 ** 20 });
  const command = [python, ...args].join(' ');
  if (r.error) throw new Error(`PyTorch ${preset} (${threads} thread(s)): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`PyTorch ${preset} (${threads} thread(s)) exited with ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  let out: TorchScriptOutput;
  try {
    out = JSON.parse(line) as TorchScriptOutput;
  } catch {
    throw new Error(`PyTorch ${preset}: not a JSON line: ${line.slice(0, 200)}`);
  }
  const nan = (v: number | null): number => (v === null ? NaN : v);
  const timing: TimingStats = { runs: out.timedSteps, medianMs: nan(out.medianMs), meanMs: nan(out.meanMs), minMs: nan(out.minMs), maxMs: nan(out.maxMs) };
  return {
    threads: out.threads,
    params: out.params,
    warmupSteps: out.warmupSteps,
    timing,
    samplesPerSecond: (out.batchSize * 1000) / timing.meanMs,
    firstLoss: nan(out.firstLoss),
    lastLoss: nan(out.lastLoss),
    torchVersion: out.torch,
    blas: out.blas,
    command,
  };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export interface ModelComparisonRow {
  readonly preset: ModelPresetName;
  readonly threads: ThreadCount;
  readonly batchSize: number;
  readonly meshgrad: MeshgradRun | null;
  /** Why meshgrad's run failed (an error inside the engine), else null. */
  readonly meshgradError: string | null;
  readonly torch: TorchRun | null;
  /** Why PyTorch's run failed or was skipped, else null. */
  readonly torchError: string | null;
  /** meshgrad's and PyTorch's parameter counts are equal (null: not both measured). */
  readonly paramsMatch: boolean | null;
  /**
   * PyTorch median ms / meshgrad median ms (> 1: meshgrad faster), the median over the rounds;
   * null without both. `meshgrad` and `torch` are the runs of the median round.
   */
  readonly ratio: number | null;
  /** Each round's medians and ratio, in the order they ran (each round: meshgrad, then PyTorch, back to back). */
  readonly rounds: readonly { readonly meshgradMs: number; readonly torchMs: number; readonly ratio: number }[];
  /** The ratio the target asks for. */
  readonly target: number;
  /** ratio >= target (null without both). */
  readonly met: boolean | null;
}

export interface ModelScaling {
  readonly preset: ModelPresetName;
  /** meshgrad 1-thread median ms / 2-thread median ms (> 1: 2 threads faster); null without both. */
  readonly meshgrad: number | null;
  /** The same for PyTorch. */
  readonly torch: number | null;
  /** meshgrad's 2 threads beat its 1 thread (the target); null without both. */
  readonly met: boolean | null;
}

export interface PresetProfile {
  readonly preset: ModelPresetName;
  readonly profile: ProfileResult | null;
  readonly error: string | null;
}

export interface ModelStepsResult {
  readonly presets: readonly PresetSetting[];
  readonly threads: readonly ThreadCount[];
  readonly steps: Readonly<Partial<Record<ModelPresetName, { warmup: number; timed: number }>>>;
  readonly torch: TorchAvailability;
  /** What PyTorch's child processes ran with. */
  readonly torchEnvironment: { readonly LD_LIBRARY_PATH: string; readonly OMP_NUM_THREADS: string; readonly OPENBLAS_CORETYPE: string };
  readonly targets: typeof MODEL_TARGETS;
  readonly rows: readonly ModelComparisonRow[];
  readonly scaling: readonly ModelScaling[];
  /** meshgrad's 1-thread profile of each preset, its top rows only. */
  readonly profiles: readonly PresetProfile[];
  readonly notes: readonly string[];
  /** Every meshgrad run finished with a finite, falling loss and a flat heap; every PyTorch run that ran finished, with meshgrad's parameter count. */
  readonly ok: boolean;
}

export interface ModelStepsOptions {
  readonly quick?: boolean;
  readonly log?: (line: string) => void;
  /** Default: all four. */
  readonly presets?: readonly ModelPresetName[];
  /** Default: 1 and 2. */
  readonly threads?: readonly ThreadCount[];
  /** Override the warm-up / timed steps of every preset (tests). */
  readonly steps?: { readonly warmup: number; readonly timed: number };
  /** The interpreter with torch (default /usr/bin/python3). */
  readonly python?: string;
  /** Profile each preset at 1 thread (default true). */
  readonly profile?: boolean;
  /** Profiled steps (default 5; --quick 2). */
  readonly profileSteps?: number;
  /**
   * Rounds per preset and thread count (default 3; --quick 1): each round times meshgrad and then
   * PyTorch back to back, so a change in the host's speed (a shared VM's neighbours) lands on both
   * engines of a round rather than between them; the reported ratio is the median round's.
   */
  readonly rounds?: number;
}

/** Rounds of meshgrad-then-PyTorch per preset and thread count. */
export const MODEL_ROUNDS = 3;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function runModelStepsSuite(options: ModelStepsOptions = {}): Promise<ModelStepsResult> {
  const log = options.log ?? (() => {});
  const quick = options.quick ?? false;
  const presets = options.presets ?? MODEL_PRESETS;
  const threadCounts = options.threads ?? MODEL_THREADS;
  const torch = torchAvailability(options.python);
  log(torch.available ? `  PyTorch ${torch.version} (${torch.python})` : `  PyTorch not measured: ${torch.reason}`);
  const rows: ModelComparisonRow[] = [];
  const scaling: ModelScaling[] = [];
  const profiles: PresetProfile[] = [];
  const notes: string[] = [];
  const stepsUsed: Partial<Record<ModelPresetName, { warmup: number; timed: number }>> = {};
  let ok = true;

  for (const preset of presets) {
    const setting = presetSetting(preset);
    const steps = options.steps ?? (quick ? QUICK_STEPS : STEPS[preset]);
    stepsUsed[preset] = steps;
    let data: Dataset | null = null;
    let dataError: string | null = null;
    try {
      data = openPresetData(preset);
    } catch (err) {
      dataError = `${setting.dataset}: ${errorText(err)}`;
      ok = false;
    }
    const rounds = Math.max(1, options.rounds ?? (quick ? 1 : MODEL_ROUNDS));
    const vocab = data?.numClasses ?? 0;
    const meshgradRuns = new Map<ThreadCount, { run: MeshgradRun | null; error: string | null }>();
    const torchRuns = new Map<ThreadCount, { run: TorchRun | null; error: string | null }>();
    for (const threads of threadCounts) {
      // Per round: meshgrad's steps, then PyTorch's, back to back.
      const pairs: Array<{ m: MeshgradRun; t: TorchRun | null }> = [];
      let meshgradError: string | null = dataError;
      let torchError: string | null = torch.available ? null : torch.reason;
      if (data) {
        let engine: MeshgradEngine | null = null;
        try {
          engine = await openMeshgradEngine(engineIdFor(threads));
          for (let round = 1; round <= rounds && meshgradError === null; round++) {
            const tag = rounds > 1 ? ` (round ${round} of ${rounds})` : '';
            log(`  ${preset}: ${engine.description}, ${steps.warmup} warm-up + ${steps.timed} timed steps${tag}`);
            const m = runMeshgradPreset(preset, engine, data, steps);
            if (!m.lossCheck.passed || (m.heap !== null && !m.heap.flat)) ok = false;
            if (round === 1 && threads === 1 && (options.profile ?? true)) {
              const profileSteps = options.profileSteps ?? (quick ? 2 : PROFILE_STEPS);
              log(`  ${preset}: profile, ${profileSteps} steps at 1 thread`);
              try {
                const p = profilePreset(preset, engine.backend, profileSteps, quick ? 1 : 2);
                profiles.push({ preset, profile: { ...p, rows: p.rows.slice(0, PROFILE_TOP_ROWS) }, error: null });
              } catch (err) {
                profiles.push({ preset, profile: null, error: errorText(err) });
                ok = false;
              }
            }
            let t: TorchRun | null = null;
            if (torch.available && torchError === null) {
              log(`  ${preset}: PyTorch ${threads} thread(s)${tag}`);
              try {
                t = runTorchPreset(preset, threads, { warmup: steps.warmup, timed: steps.timed, vocab, python: torch.python });
              } catch (err) {
                torchError = errorText(err);
                ok = false;
                log(`  ${preset}: PyTorch ${threads} thread(s) FAILED: ${torchError}`);
              }
            }
            pairs.push({ m, t });
          }
        } catch (err) {
          meshgradError = errorText(err);
          ok = false;
          log(`  ${preset}: meshgrad ${threads} thread(s) FAILED: ${meshgradError}`);
        } finally {
          await engine?.close();
        }
      }
      const timedRounds = pairs.filter((p): p is { m: MeshgradRun; t: TorchRun } => p.t !== null);
      const roundFigures = timedRounds.map((p) => ({ meshgradMs: p.m.timing.medianMs, torchMs: p.t.timing.medianMs, ratio: p.t.timing.medianMs / p.m.timing.medianMs }));
      // The median round (by ratio; the lower middle one of an even count), or meshgrad's median run alone.
      const order = roundFigures.map((_, i) => i).sort((a, b) => roundFigures[a].ratio - roundFigures[b].ratio);
      const mid = order.length > 0 ? order[Math.floor((order.length - 1) / 2)] : -1;
      const byMs = pairs.map((_, i) => i).sort((a, b) => pairs[a].m.timing.medianMs - pairs[b].m.timing.medianMs);
      const chosen = mid >= 0 ? timedRounds[mid] : pairs.length > 0 ? { m: pairs[byMs[Math.floor((byMs.length - 1) / 2)]].m, t: null } : null;
      meshgradRuns.set(threads, { run: chosen?.m ?? null, error: meshgradError });
      torchRuns.set(threads, { run: chosen?.t ?? null, error: chosen?.t ? null : (torchError ?? 'not run') });
      const m = meshgradRuns.get(threads)!;
      const t = torchRuns.get(threads)!;
      const paramsMatch = m.run && t.run ? timedRounds.every((p) => p.m.params === p.t.params) : null;
      if (paramsMatch === false) ok = false;
      const ratio = mid >= 0 ? roundFigures[mid].ratio : null;
      const target = threads === 1 ? MODEL_TARGETS.oneThread[preset] : MODEL_TARGETS.twoThreads;
      rows.push({
        preset,
        threads,
        batchSize: setting.batchSize,
        meshgrad: m.run,
        meshgradError: m.error,
        torch: t.run,
        torchError: t.error,
        paramsMatch,
        ratio: ratio !== null && Number.isFinite(ratio) ? ratio : null,
        rounds: roundFigures,
        target,
        met: ratio !== null && Number.isFinite(ratio) ? ratio >= target : null,
      });
    }
    const speedup = (one: number | undefined, two: number | undefined): number | null => (one !== undefined && two !== undefined && Number.isFinite(one / two) ? one / two : null);
    if (threadCounts.includes(1) && threadCounts.includes(2)) {
      const m = speedup(meshgradRuns.get(1)?.run?.timing.medianMs, meshgradRuns.get(2)?.run?.timing.medianMs);
      const t = speedup(torchRuns.get(1)?.run?.timing.medianMs, torchRuns.get(2)?.run?.timing.medianMs);
      scaling.push({ preset, meshgrad: m, torch: t, met: m === null ? null : m > MODEL_TARGETS.twoThreadScaling });
    }
  }

  if (!torch.available) notes.push(`PyTorch not measured: ${torch.reason}; meshgrad's figures alone`);
  const blas = rows.find((r) => r.torch)?.torch?.blas ?? [];
  if (blas.length > 0) notes.push(`PyTorch's process loaded: ${blas.join(', ')}`);
  for (const r of rows) {
    if (r.paramsMatch === false) notes.push(`${r.preset}: PARAMETER COUNTS DIFFER: meshgrad ${r.meshgrad?.params}, PyTorch ${r.torch?.params} (the architectures do not match)`);
  }
  const result: ModelStepsResult = {
    presets: presets.map(presetSetting),
    threads: threadCounts,
    steps: stepsUsed,
    torch,
    torchEnvironment: { LD_LIBRARY_PATH: `${OPENBLAS_OPENMP_DIR} (prepended)`, OMP_NUM_THREADS: '<threads>', OPENBLAS_CORETYPE: 'unset' },
    targets: MODEL_TARGETS,
    rows,
    scaling,
    profiles,
    notes,
    ok,
  };
  return result;
}

/**
 * `--suite webgpu`, its training-step half (issue 14): the step of the mlp, cnn, char-lstm and
 * gpt-tiny presets, at the models suite's batch sizes (bench/model-steps.ts), on
 *   - meshgrad's WebGPU backend: the model built with the webgpu backend as the default backend,
 *     so the parameters and every tensor of the step live on the device; the step is the trainer's
 *     device step (shared/train/single-process.ts, the `mirror` branch): batch gather, then in one
 *     scope forward + cross-entropy + backward (recordGradients), clipping where the preset sets
 *     clipNorm (clipGradNormOnDevice) and the optimizer update (DeviceOptimizer), all recorded on
 *     the device, and the step's loss and correct count awaited (its one read-back);
 *   - meshgrad's wasm backend with a thread per core (os.availableParallelism()), the models
 *     suite's step (runMeshgradPreset);
 *   - TensorFlow.js's WebGPU backend (tfjs-backend-webgpu) for mlp and cnn: bench/mlp-step.ts's tfjs
 *     step (and bench/tfjs-cnn.ts's CNN), awaited, on its own device on the same adapter.
 * Every engine starts from meshgrad's seeded weights and sees the same batches, so the step-0
 * losses agree; that and a falling loss show that no broken step is timed. Prints ms/step, the
 * ratios wasm ms / webgpu ms and tfjs-webgpu ms / webgpu ms (> 1: meshgrad webgpu is faster), and
 * the issue's targets: on a software adapter (lavapipe) the mlp step no slower than tfjs-webgpu on
 * that adapter; on a real GPU the gpt-tiny step at least 10x the wasm backend on all cores. On a
 * software adapter the figures compare kernel efficiency against tfjs-webgpu, not GPU speed.
 */

import os from 'node:os';
import type { Backend } from '../shared/backend/backend.js';
import { defaultBackend, setDefaultBackend } from '../shared/backend/default.js';
import type { AdapterSummary } from '../shared/backend/webgpu/gpu-loader.js';
import { WebGpuBackend } from '../shared/backend/webgpu/webgpu-backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import type { BatchBuffers, Dataset } from '../shared/data/dataset.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel } from '../shared/nn/spec.js';
import { recordGradients, settle } from '../shared/train/classify.js';
import { clipGradNormOnDevice } from '../shared/train/device-state.js';
import { DeviceOptimizer } from '../shared/optim/device-optimizer.js';
import { Rng } from '../shared/util/random.js';
import type { MeshgradEngine } from './backends.js';
import { batchStream, createTfjsAsyncStep, measureSteps, STEP0_LOSS_TOLERANCE, type AsyncTrainStep, type StepMeasurement } from './mlp-step.js';
import { MODEL_PRESETS, openPresetData, presetSetting, runMeshgradPreset, type ModelPresetName, type PresetSetting } from './model-steps.js';
import { fmt, fmtRatio, formatTable } from './report.js';
import { cnnTfjsModel } from './tfjs-cnn.js';

export const WEBGPU_STEP_ENGINES = ['meshgrad-webgpu', 'meshgrad-wasm', 'tfjs-webgpu'] as const;
export type WebGpuStepEngine = (typeof WEBGPU_STEP_ENGINES)[number];

/** The presets tfjs-webgpu is measured on, as the issue asks (its language models would need tfjs ports of meshgrad's LSTM and transformer). */
export const TFJS_WEBGPU_PRESETS: readonly ModelPresetName[] = ['mlp', 'cnn'];

/** The issue's targets, as the other engine's median ms / meshgrad webgpu's median ms. */
export const WEBGPU_STEP_TARGETS = {
  /** On a software adapter: the mlp step no slower than tfjs-webgpu on the same adapter. */
  software: { preset: 'mlp', versus: 'tfjs-webgpu', ratio: 1 },
  /** On a real GPU: the gpt-tiny step at least 10x the wasm backend on all cores. */
  hardware: { preset: 'gpt-tiny', versus: 'meshgrad-wasm', ratio: 10 },
} as const satisfies Record<string, { preset: ModelPresetName; versus: WebGpuStepEngine; ratio: number }>;

/** Warm-up and timed steps per preset, the models suite's; --quick: a smoke test. */
const STEPS: Readonly<Record<ModelPresetName, { warmup: number; timed: number }>> = {
  mlp: { warmup: 10, timed: 50 },
  cnn: { warmup: 3, timed: 20 },
  'char-lstm': { warmup: 3, timed: 20 },
  'gpt-tiny': { warmup: 3, timed: 20 },
};
const QUICK_STEPS = { warmup: 1, timed: 3 } as const;

export interface WebGpuStepRun extends StepMeasurement {
  readonly engine: WebGpuStepEngine;
  /** Parameters of meshgrad's model (null for tfjs, which trains a copy of meshgrad's weights). */
  readonly params: number | null;
}

export interface WebGpuStepRow {
  readonly preset: ModelPresetName;
  readonly setting: PresetSetting;
  readonly steps: { readonly warmup: number; readonly timed: number };
  readonly runs: Readonly<Record<WebGpuStepEngine, WebGpuStepRun | null>>;
  /** Why an engine has no run: its error, or why it is not measured on this preset. */
  readonly missing: Readonly<Partial<Record<WebGpuStepEngine, string>>>;
  /** Engines that failed (an error, not a preset they are not measured on). */
  readonly failed: readonly WebGpuStepEngine[];
  /** meshgrad wasm median ms / meshgrad webgpu median ms (> 1: webgpu faster); null without both. */
  readonly wasmOverWebgpu: number | null;
  /** tfjs-webgpu median ms / meshgrad webgpu median ms (> 1: meshgrad faster); null without both. */
  readonly tfjsOverWebgpu: number | null;
  /** Engines whose step-0 loss differs from meshgrad wasm's by more than STEP0_LOSS_TOLERANCE (same weights, same first batch). */
  readonly initialLossMismatch: readonly WebGpuStepEngine[];
}

export interface WebGpuStepTarget {
  readonly kind: 'software' | 'hardware';
  readonly preset: ModelPresetName;
  readonly versus: WebGpuStepEngine;
  /** versus median ms / meshgrad webgpu median ms; null when a figure is missing. */
  readonly ratio: number | null;
  readonly target: number;
  /** This adapter is the kind the target is for (software target: a software adapter). */
  readonly applies: boolean;
  /** ratio >= target (null without the figure). */
  readonly met: boolean | null;
}

export interface WebGpuStepSuiteResult {
  readonly adapter: AdapterSummary;
  /** Threads of the wasm engine (a thread per core). */
  readonly wasmThreads: number;
  readonly descriptions: Readonly<Partial<Record<WebGpuStepEngine, string>>>;
  readonly rows: readonly WebGpuStepRow[];
  readonly targets: readonly WebGpuStepTarget[];
  /** Every run finished with a finite, falling loss and the wasm engine's step-0 loss, no tfjs leak, no wasm heap growth; no engine failed. */
  readonly ok: boolean;
}

export interface WebGpuStepSuiteOptions {
  readonly log?: (line: string) => void;
  /** Default: all four. */
  readonly presets?: readonly ModelPresetName[];
  /** Default: all three (tfjs-webgpu on mlp and cnn only). */
  readonly engines?: readonly WebGpuStepEngine[];
  /** Override every preset's warm-up / timed steps (tests). */
  readonly steps?: { readonly warmup: number; readonly timed: number };
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * meshgrad's training step of `preset` on the webgpu backend, as the trainer's device branch runs
 * it; the model is built with `gpu` as the default backend (so every parameter lives on the
 * device), and `gpu` stays the default backend until `dispose`.
 */
export async function createWebGpuPresetStep(preset: ModelPresetName, gpu: WebGpuBackend, data: Dataset): Promise<AsyncTrainStep & { readonly params: number }> {
  const setting = presetSetting(preset);
  const previous = defaultBackend();
  setDefaultBackend(gpu);
  try {
    const { model } = buildModel(PRESETS[preset], new Rng(1), { numClasses: data.numClasses });
    const optimizer = new DeviceOptimizer(setting.optimizer, model.parameters(), { lr: setting.lr, weightDecay: setting.weightDecay ?? undefined });
    const nextIndices = batchStream(data.size, setting.batchSize, 1);
    const buffers: BatchBuffers = { x: new Float32Array(0), y: new Int32Array(0) };
    const clipNorm = setting.clipNorm;
    model.train();
    return {
      engine: 'meshgrad-webgpu',
      description: `meshgrad webgpu (${gpu.adapter.name})`,
      params: model.parameters().reduce((s, p) => s + p.size, 0),
      async step(): Promise<number> {
        const batch = data.batch(nextIndices(), buffers);
        // As the trainer's device step: forward, backward, clipping and the update on the device.
        const figures = gpu.scope(() => {
          const f = recordGradients(model, batch);
          if (clipNorm !== null) clipGradNormOnDevice(model.parameters(), clipNorm);
          optimizer.step();
          return f;
        });
        const result = await settle(figures);
        model.zeroGrad();
        return result.loss;
      },
      liveTensors: () => null,
      memoryStats: () => null,
      dispose: () => setDefaultBackend(previous),
    };
  } catch (err) {
    setDefaultBackend(previous);
    throw err;
  }
}

/** The wasm backend with a thread per core, as the models suite's step takes it. */
async function openWasmAllCores(): Promise<MeshgradEngine> {
  const wasm = await WasmBackend.create({ threads: os.availableParallelism() });
  return {
    // MeshgradEngineId names the 1- and 2-thread engines only; runMeshgradPreset reads the backend, threads and description, not the id.
    id: wasm.threads === 1 ? 'meshgrad-wasm-1t' : 'meshgrad-wasm-2t',
    backend: wasm,
    wasm,
    threads: wasm.threads,
    flavour: wasm.flavour,
    description: `meshgrad wasm (${wasm.flavour}, ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}, one per core)`,
    memoryStats: () => wasm.memoryStats(),
    close: () => wasm.close(),
  };
}

async function runEngine(engine: WebGpuStepEngine, preset: ModelPresetName, data: Dataset, steps: { warmup: number; timed: number }, gpu: WebGpuBackend, wasm: () => Promise<MeshgradEngine>): Promise<WebGpuStepRun> {
  const setting = presetSetting(preset);
  if (engine === 'meshgrad-wasm') {
    const m = runMeshgradPreset(preset, await wasm(), data, steps);
    return { ...m, engine, liveTensors: null };
  }
  const timed = async (step: AsyncTrainStep, params: number | null): Promise<WebGpuStepRun> => {
    try {
      const m = await measureSteps(step, steps.warmup, steps.timed, setting.batchSize);
      return { ...m, engine, params };
    } finally {
      step.dispose();
    }
  };
  if (engine === 'meshgrad-webgpu') {
    const step = await createWebGpuPresetStep(preset, gpu, data);
    return timed(step, step.params);
  }
  const options = { batchSize: setting.batchSize, lr: setting.lr, seed: 1 };
  return timed(await createTfjsAsyncStep({ train: data }, 'webgpu', options, preset === 'cnn' ? cnnTfjsModel : undefined), null);
}

/** The step table of `--suite webgpu`; opens the WebGPU backend (throws with the reason where there is no adapter). */
export async function runWebGpuStepSuite(quick: boolean, options: WebGpuStepSuiteOptions = {}): Promise<WebGpuStepSuiteResult> {
  const log = options.log ?? (() => {});
  const presets = options.presets ?? MODEL_PRESETS;
  const engines = options.engines ?? WEBGPU_STEP_ENGINES;
  const gpu = await WebGpuBackend.create();
  log(`  adapter: ${gpu.adapter.name} (${gpu.adapter.description || 'no description'})`);
  let wasmEngine: MeshgradEngine | null = null;
  const wasm = async (): Promise<MeshgradEngine> => (wasmEngine ??= await openWasmAllCores());
  const rows: WebGpuStepRow[] = [];
  const descriptions: Partial<Record<WebGpuStepEngine, string>> = {};
  try {
    for (const preset of presets) {
      const setting = presetSetting(preset);
      const steps = options.steps ?? (quick ? QUICK_STEPS : STEPS[preset]);
      const runs: Record<WebGpuStepEngine, WebGpuStepRun | null> = { 'meshgrad-webgpu': null, 'meshgrad-wasm': null, 'tfjs-webgpu': null };
      const missing: Partial<Record<WebGpuStepEngine, string>> = {};
      const failed: WebGpuStepEngine[] = [];
      let data: Dataset | null = null;
      try {
        data = openPresetData(preset);
      } catch (err) {
        for (const e of engines) missing[e] = `${setting.dataset}: ${errorText(err)}`;
        failed.push(...engines);
      }
      for (const engine of WEBGPU_STEP_ENGINES) {
        if (!engines.includes(engine)) missing[engine] ??= 'not asked for';
        else if (engine === 'tfjs-webgpu' && !TFJS_WEBGPU_PRESETS.includes(preset)) missing[engine] = `not measured on ${preset} (tfjs-webgpu runs mlp and cnn only)`;
        if (data === null || missing[engine] !== undefined) continue;
        log(`  ${preset}: ${engine}, ${steps.warmup} warm-up + ${steps.timed} timed steps`);
        try {
          const run = await runEngine(engine, preset, data, steps, gpu, wasm);
          runs[engine] = run;
          descriptions[engine] = run.description;
        } catch (err) {
          missing[engine] = errorText(err);
          failed.push(engine);
          log(`  ${preset}: ${engine} FAILED: ${missing[engine]}`);
        }
      }
      const ratio = (other: WebGpuStepRun | null): number | null => {
        const r = other && runs['meshgrad-webgpu'] ? other.timing.medianMs / runs['meshgrad-webgpu'].timing.medianMs : NaN;
        return Number.isFinite(r) ? r : null;
      };
      const reference = runs['meshgrad-wasm'];
      const initialLossMismatch = reference
        ? WEBGPU_STEP_ENGINES.filter((e) => runs[e] !== null && !(Math.abs(runs[e]!.initialLoss - reference.initialLoss) <= STEP0_LOSS_TOLERANCE))
        : [];
      rows.push({ preset, setting, steps, runs, missing, failed, wasmOverWebgpu: ratio(runs['meshgrad-wasm']), tfjsOverWebgpu: ratio(runs['tfjs-webgpu']), initialLossMismatch });
    }
  } finally {
    await (wasmEngine as MeshgradEngine | null)?.close();
    await gpu.close();
  }
  const software = gpu.adapter.software;
  const targets = (['software', 'hardware'] as const).map((kind): WebGpuStepTarget => {
    const t = WEBGPU_STEP_TARGETS[kind];
    const row = rows.find((r) => r.preset === t.preset);
    const ratio = row ? (t.versus === 'tfjs-webgpu' ? row.tfjsOverWebgpu : row.wasmOverWebgpu) : null;
    return { kind, preset: t.preset, versus: t.versus, ratio, target: t.ratio, applies: software === (kind === 'software'), met: ratio === null ? null : ratio >= t.ratio };
  });
  const runOk = (r: WebGpuStepRun): boolean => r.lossCheck.passed && (r.liveTensors === null || r.liveTensors.after === r.liveTensors.before) && (r.heap === null || r.heap.flat);
  const ok = rows.every((row) => row.failed.length === 0 && row.initialLossMismatch.length === 0 && WEBGPU_STEP_ENGINES.every((e) => row.runs[e] === null || runOk(row.runs[e]!)));
  return { adapter: gpu.adapter, wasmThreads: os.availableParallelism(), descriptions, rows, targets, ok };
}

const metText = (met: boolean | null): string => (met === null ? 'not judged (a figure is missing)' : met ? 'MET' : 'NOT MET');

/** The suite's table: ms/step per engine and preset, the ratios, the targets, and what failed. */
export function webGpuStepTable(r: WebGpuStepSuiteResult): string {
  const ms = (run: WebGpuStepRun | null): string => (run === null ? '-' : fmt(run.timing.medianMs, run.timing.medianMs < 10 ? 2 : 1));
  const ratio = (v: number | null): string => (v === null ? '-' : fmtRatio(v));
  const loss = (run: WebGpuStepRun | null): string => (run === null ? '-' : fmt(run.initialLoss, 4));
  const rows = r.rows.map((row) => {
    const g = row.runs['meshgrad-webgpu'];
    const checks = [
      ...WEBGPU_STEP_ENGINES.filter((e) => row.runs[e] !== null && !row.runs[e]!.lossCheck.passed).map((e) => `${e} loss NOT DOWN`),
      ...row.initialLossMismatch.map((e) => `${e} step-0 loss DIFFERS`),
      ...row.failed.map((e) => `${e} FAILED`),
    ];
    return [
      row.preset,
      row.setting.context === null ? String(row.setting.batchSize) : `${row.setting.batchSize} x ${row.setting.context}`,
      ms(g),
      ms(row.runs['meshgrad-wasm']),
      ms(row.runs['tfjs-webgpu']),
      ratio(row.wasmOverWebgpu),
      ratio(row.tfjsOverWebgpu),
      WEBGPU_STEP_ENGINES.map((e) => loss(row.runs[e])).join(' / '),
      g ? `${fmt(g.firstLoss, 3)} -> ${fmt(g.lastLoss, 3)}` : '-',
      checks.length === 0 ? 'ok' : checks.join('; '),
    ];
  });
  const table = formatTable(
    ['preset', 'batch', 'webgpu ms', `wasm ${r.wasmThreads}t ms`, 'tfjs-webgpu ms', 'wasm / webgpu', 'tfjs-webgpu / webgpu', 'step-0 loss (webgpu / wasm / tfjs)', 'webgpu loss first -> last', 'checks'],
    rows,
    new Set([2, 3, 4, 5, 6]),
  );
  const title = r.adapter.software
    ? `Training steps on WebGPU, adapter ${r.adapter.name}: a SOFTWARE adapter, so these figures compare meshgrad's kernel efficiency against tfjs-webgpu on the same adapter, not GPU speed`
    : `Training steps on WebGPU, adapter ${r.adapter.name}`;
  const steps = r.rows.map((row) => `  ${row.preset}: ${row.setting.optimizer} lr ${row.setting.lr}${row.setting.clipNorm !== null ? `, clip ${row.setting.clipNorm}` : ''}; ${row.steps.warmup} warm-up + ${row.steps.timed} timed steps per engine`);
  const engines = WEBGPU_STEP_ENGINES.flatMap((e) => (r.descriptions[e] ? [`  ${e}: ${r.descriptions[e]}`] : []));
  const notes = r.rows.flatMap((row) =>
    WEBGPU_STEP_ENGINES.flatMap((e) => {
      const run = row.runs[e];
      const leak = run?.liveTensors && run.liveTensors.after !== run.liveTensors.before ? [`  ${row.preset} ${e}: live tfjs tensors ${run.liveTensors.before} -> ${run.liveTensors.after} (LEAK)`] : [];
      const heap = run?.heap && !run.heap.flat ? [`  ${row.preset} ${e}: wasm heap GREW over the timed steps`] : [];
      const why = row.failed.includes(e) ? [`  ${row.preset} ${e}: FAILED: ${row.missing[e] ?? ''}`] : [];
      return [...leak, ...heap, ...why];
    }),
  );
  const targetLine = (t: WebGpuStepTarget): string => {
    const what = t.kind === 'software' ? `on a software adapter, ${t.preset} no slower than tfjs-webgpu on the same adapter` : `on a real GPU, ${t.preset} at least ${t.target}x the wasm backend on all ${r.wasmThreads} cores`;
    const measure = t.versus === 'tfjs-webgpu' ? 'tfjs-webgpu ms / webgpu ms' : 'wasm ms / webgpu ms';
    const scope = t.applies ? '' : ` (not this adapter's target: it is ${r.adapter.software ? 'a software adapter' : 'a real GPU'}; shown for information)`;
    return `  ${what} (${measure} >= ${t.target}x): ${ratio(t.ratio)}: ${metText(t.met)}${scope}`;
  };
  return [
    title,
    '(a step = batch gather + forward + cross-entropy + backward + optimizer step + the step\'s read-back; meshgrad webgpu: parameters and every tensor on the device,',
    ' clipping and the optimizer on the device too, only the loss and correct count read back; ms = median ms/step;',
    ' wasm / webgpu = wasm ms / webgpu ms and tfjs-webgpu / webgpu = tfjs-webgpu ms / webgpu ms: > 1 means meshgrad webgpu is faster)',
    ...engines,
    ...steps,
    '',
    table,
    '',
    ...notes,
    'Targets (issue 14):',
    ...r.targets.map(targetLine),
  ].join('\n');
}

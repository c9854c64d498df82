/**
 * Where a training step's time goes, per preset: every Backend call is timed (by method, and by
 * op for unary/binary/reduce), the optimizer update and the batch gather are timed apart, and the
 * rest of the step — the op layer's shape checks, autograd's graph walk, closures, tensor objects,
 * garbage collection — is what remains. Run it to choose the work (docs/benchmarks.md).
 *
 *   node dist/bench/profile.js [--model NAME]... [--steps N] [--threads N] [--backend wasm|cpu]
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Backend, MatmulSpec } from '../shared/backend/backend.js';
import { setDefaultBackend } from '../shared/backend/default.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { openDataset } from '../shared/data/registry.js';
import { BatchSampler } from '../shared/data/sampler.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel, contextLength, type ModelSpec } from '../shared/nn/spec.js';
import { createOptimizer } from '../shared/optim/factory.js';
import { computeGradients } from '../shared/train/classify.js';
import { attachGrads, detachGrads, paramSlots } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';

/** The four presets of the speed comparison, with the batch size their presets train with. */
export const PROFILE_PRESETS: Record<string, { dataset: string; batchSize: number }> = {
  mlp: { dataset: 'fashion-mnist', batchSize: 128 },
  cnn: { dataset: 'fashion-mnist', batchSize: 128 },
  'char-lstm': { dataset: 'moby-dick', batchSize: 32 },
  'char-gru': { dataset: 'moby-dick', batchSize: 32 },
  'gpt-tiny': { dataset: 'moby-dick', batchSize: 32 },
};

interface Tally {
  ms: number;
  calls: number;
}

/** A product's shape as a key: batch x [m, k] x [k, n], with its transposes (and GFLOPS later). */
function matmulKey(s: MatmulSpec): string {
  return `matmul ${s.batch > 1 ? `${s.batch}x` : ''}[${s.m},${s.k}]${s.transA ? 'ᵀ' : ''}x[${s.k},${s.n}]${s.transB ? 'ᵀ' : ''}`;
}

function gflops(name: string, ms: number, calls: number): string {
  const m = name.match(/^matmul (?:(\d+)x)?\[(\d+),(\d+)\]ᵀ?x\[\d+,(\d+)\]/);
  if (!m) return '';
  const flops = 2 * Number(m[1] ?? 1) * Number(m[2]) * Number(m[3]) * Number(m[4]) * calls;
  return `${(flops / (ms * 1e6)).toFixed(1)} GFLOPS`;
}

/** Wraps `backend` so that each call is added to `tallies` under its method (and op) name. */
function timed(backend: Backend, tallies: Map<string, Tally>): Backend {
  return new Proxy(backend, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'scope' || prop === 'vectorOps') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => {
        const started = performance.now();
        const out: unknown = Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        const name = typeof args[0] === 'string' ? `${String(prop)}:${args[0]}` : prop === 'matmul' ? matmulKey(args[2] as MatmulSpec) : String(prop);
        const t = tallies.get(name) ?? { ms: 0, calls: 0 };
        t.ms += performance.now() - started;
        t.calls++;
        tallies.set(name, t);
        return out;
      };
    },
  });
}

export interface ProfileResult {
  readonly model: string;
  readonly batchSize: number;
  readonly steps: number;
  readonly stepMs: number;
  readonly rows: { name: string; msPerStep: number; callsPerStep: number; share: number }[];
}

export function profilePreset(name: string, backend: Backend, steps: number, warmup = 2): ProfileResult {
  const preset = PROFILE_PRESETS[name];
  const spec: ModelSpec = PRESETS[name];
  const tallies = new Map<string, Tally>();
  const wrapped = timed(backend, tallies);
  setDefaultBackend(wrapped);
  try {
    const data = openDataset(preset.dataset, { contextLength: contextLength(spec) });
    const { model } = buildModel(spec, new Rng(1), { numClasses: data.train.numClasses });
    const slots = paramSlots(model);
    const optimizer = createOptimizer(spec.defaults?.optimizer ?? 'adam', slots, { lr: spec.defaults?.lr ?? 1e-3, weightDecay: spec.defaults?.weightDecay, vectorOps: backend.vectorOps?.() });
    const sampler = new BatchSampler({ size: data.train.size, batchSize: preset.batchSize, seed: 1, dropLast: true });
    const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
    let total = 0;
    let i = 0;
    const add = (key: string, ms: number): void => {
      const t = tallies.get(key) ?? { ms: 0, calls: 0 };
      t.ms += ms;
      t.calls++;
      tallies.set(key, t);
    };
    for (const indices of sampler.epoch(0)) {
      if (i === warmup) tallies.clear();
      if (i >= warmup + steps) break;
      const started = performance.now();
      const batch = data.train.batch(indices, buffers);
      const gathered = performance.now();
      wrapped.scope(() => {
        computeGradients(model, batch);
        attachGrads(model, slots);
        const o = performance.now();
        optimizer.step();
        add('(optimizer step)', performance.now() - o);
      });
      detachGrads(model, slots);
      const ms = performance.now() - started;
      if (i >= warmup) {
        total += ms;
        add('(batch gather)', gathered - started);
      }
      i++;
    }
    const stepMs = total / steps;
    const inBackend = [...tallies.values()].reduce((s, t) => s + t.ms, 0) / steps;
    const rows = [...tallies.entries()].map(([k, t]) => ({ name: k, msPerStep: t.ms / steps, callsPerStep: t.calls / steps, share: t.ms / steps / stepMs }));
    rows.push({ name: '(outside: op layer, autograd, objects, GC)', msPerStep: stepMs - inBackend, callsPerStep: 0, share: (stepMs - inBackend) / stepMs });
    rows.sort((a, b) => b.msPerStep - a.msPerStep);
    return { model: name, batchSize: preset.batchSize, steps, stepMs, rows };
  } finally {
    setDefaultBackend(cpu);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      steps: { type: 'string', default: '10' },
      threads: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const models = values.model ?? ['mlp', 'cnn', 'char-lstm', 'gpt-tiny'];
  for (const m of models) if (PROFILE_PRESETS[m] === undefined) throw new Error(`--model ${m}: not one of ${Object.keys(PROFILE_PRESETS).join(', ')}`);
  const steps = Number(values.steps);
  const backend = values.backend === 'cpu' ? cpu : await WasmBackend.create({ threads: Number(values.threads) });
  try {
    for (const m of models) {
      const r = profilePreset(m, backend, steps);
      console.log(`\n${m} (batch ${r.batchSize}, ${values.backend}, ${values.threads} thread(s)): ${r.stepMs.toFixed(1)} ms/step over ${steps} steps`);
      for (const row of r.rows.slice(0, 40)) console.log(`  ${row.name.padEnd(52)} ${row.msPerStep.toFixed(2).padStart(8)} ms ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.callsPerStep > 0 ? `${row.callsPerStep.toFixed(0)} calls` : ''} ${gflops(row.name, row.msPerStep, row.callsPerStep)}`);
    }
  } finally {
    if (backend instanceof WasmBackend) await backend.close();
  }
}

// Run as a script (also through a symlinked path); imported by bench/model-steps.ts otherwise.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}

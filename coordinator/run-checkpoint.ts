/**
 * The coordinator's checkpoint: the model's state (parameters and buffers such as BatchNorm's
 * running statistics, under PyTorch's names) and optimizer state (safetensors, via
 * shared/checkpoint) plus everything needed to continue the run exactly — the data cursor (epoch,
 * batch within the epoch's seeded permutation), step and parameter version, the running epoch
 * statistics, and the settings the run must keep (a resume with a different model, seed, batch
 * size or dataset is refused, naming the difference).
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../shared/checkpoint/checkpoint.js';
import type { Module } from '../shared/nn/module.js';
import type { Optimizer } from '../shared/optim/types.js';
import { checkpointParams, loadModelState } from '../shared/train/params.js';

export const LATEST = 'latest.safetensors';

export interface RunCursor {
  readonly epoch: number;
  /** Batches of `epoch` already trained. */
  readonly batch: number;
  readonly step: number;
  readonly version: number;
  readonly samples: number;
  readonly epochLossSum: number;
  readonly epochCorrect: number;
  readonly epochSeen: number;
}

/** Settings a resumed run must share with the run that wrote the checkpoint. */
export interface RunIdentity {
  readonly runId: string;
  readonly model: unknown;
  readonly dataset: string;
  readonly seed: number;
  readonly batchSize: number;
  readonly optimizer: string;
  readonly trainSamples: number | null;
}

export function latestPath(dir: string): string {
  return join(dir, LATEST);
}

export async function saveRunCheckpoint(dir: string, model: Module, optimizer: Optimizer, cursor: RunCursor, identity: RunIdentity): Promise<string> {
  const path = latestPath(dir);
  await saveCheckpoint(path, {
    params: checkpointParams(model),
    optimizer: optimizer.stateDict(),
    meta: { cursor, identity },
  });
  return path;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A JSON value as a short string for a message (long values cut, with an ellipsis). */
function brief(value: unknown): string {
  if (value === undefined) return '(absent)';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The first place where two JSON values differ, as `path: a vs b` (e.g. `layers[2].out: 256 vs
 * 128`, `layers: 6 vs 7 entries`, `defaults.lr: 0.001 vs (absent)`); null when they are the same
 * JSON. Object keys are compared in `a`'s order, then those only `b` has.
 */
export function firstJsonDifference(a: unknown, b: unknown, path = ''): string | null {
  const [x, y] = [a, b].map((v) => (v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as unknown)));
  return differenceAt(x, y, path);
}

function differenceAt(a: unknown, b: unknown, path: string): string | null {
  const here = path || '(the whole value)';
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const d = differenceAt(a[i], b[i], `${path}[${i}]`);
      if (d !== null) return d;
    }
    return a.length === b.length ? null : `${here}: ${a.length} vs ${b.length} entries`;
  }
  if (isObject(a) && isObject(b)) {
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
    for (const key of keys) {
      const d = differenceAt(a[key], b[key], path ? `${path}.${key}` : key);
      if (d !== null) return d;
    }
    return null;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? null : `${here}: ${brief(a)} vs ${brief(b)}`;
}

/**
 * Loads `dir`'s latest checkpoint into `model` and `optimizer`; returns the cursor, the run id and
 * the names of buffers the file lacks (a checkpoint written before buffers were saved: they keep
 * their initial values, and training goes on updating them).
 */
export async function loadRunCheckpoint(dir: string, model: Module, optimizer: Optimizer, expected: Omit<RunIdentity, 'runId'>): Promise<{ cursor: RunCursor; runId: string; missingBuffers: string[] }> {
  const path = latestPath(dir);
  if (!existsSync(path)) throw new Error(`--resume: no checkpoint at ${path}`);
  const ckpt = await loadCheckpoint(path);
  const meta = ckpt.meta as { cursor?: RunCursor; identity?: RunIdentity };
  if (!meta.cursor || !meta.identity) throw new Error(`${path}: not a coordinator checkpoint (no cursor or run identity in its metadata)`);
  for (const key of ['model', 'dataset', 'seed', 'batchSize', 'optimizer', 'trainSamples'] as const) {
    if (!sameJson(meta.identity[key], expected[key])) {
      // A model spec is long: name its first difference rather than print both.
      if (key === 'model') throw new Error(`--resume: ${path} was written with a different model spec: ${firstJsonDifference(meta.identity.model, expected.model) ?? 'its JSON differs'} (checkpoint vs this run)`);
      throw new Error(`--resume: ${path} was written with ${key} ${JSON.stringify(meta.identity[key])}, this run has ${JSON.stringify(expected[key])}`);
    }
  }
  const missingBuffers = loadModelState(model, ckpt, path, { allowMissingBuffers: true });
  if (!ckpt.optimizer) throw new Error(`${path}: has no optimizer state`);
  optimizer.loadStateDict(ckpt.optimizer);
  return { cursor: meta.cursor, runId: meta.identity.runId, missingBuffers };
}

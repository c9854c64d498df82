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
      throw new Error(`--resume: ${path} was written with ${key} ${JSON.stringify(meta.identity[key])}, this run has ${JSON.stringify(expected[key])}`);
    }
  }
  const missingBuffers = loadModelState(model, ckpt, path, { allowMissingBuffers: true });
  if (!ckpt.optimizer) throw new Error(`${path}: has no optimizer state`);
  optimizer.loadStateDict(ckpt.optimizer);
  return { cursor: meta.cursor, runId: meta.identity.runId, missingBuffers };
}

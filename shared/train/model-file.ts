/**
 * A model's state to and from a safetensors checkpoint file, for library users: the parameters and
 * buffers under PyTorch's state_dict names (as the trainers write them), plus optional metadata.
 */

import { loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.js';
import type { Module } from '../nn/module.js';
import { checkpointParams, loadModelState } from './params.js';

/** Writes `model`'s parameters and buffers to `path` (atomically); `meta` must be JSON-serialisable. */
export async function saveModel(path: string, model: Module, meta: Record<string, unknown> = {}): Promise<void> {
  await saveCheckpoint(path, { params: checkpointParams(model), meta });
}

/**
 * Loads the parameters and buffers in `path` into `model` (which must have the same names and
 * shapes); returns the file's metadata.
 */
export async function loadModel(path: string, model: Module): Promise<Record<string, unknown>> {
  const checkpoint = await loadCheckpoint(path);
  loadModelState(model, checkpoint, path);
  return checkpoint.meta;
}

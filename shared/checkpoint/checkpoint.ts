/**
 * Training checkpoints as safetensors files that PyTorch can read (safetensors.torch.load_file):
 * the model's state under PyTorch's state_dict names — parameters and float buffers (BatchNorm's
 * running_mean / running_var) as F32 tensors, integer buffers (num_batches_tracked) as I64 as
 * torch keeps them, so `load_state_dict(strict=True)` takes the file as it is — optimizer buffers
 * as 1-D F32 tensors under `optimizer.<key>`, and in `__metadata__`: `format: "pt"`,
 * `meshgrad.optimizer` (JSON of the optimizer's kind, step and hyperparameters) and
 * `meshgrad.meta` (JSON of the caller's meta). Files are written atomically, so a crash mid-save
 * keeps the previous checkpoint.
 */

import { readFile } from 'node:fs/promises';
import type { OptimizerKind, OptimizerStateDict } from '../optim/types.js';
import { writeFileAtomic } from './atomic.js';
import { CheckpointFormatError } from './errors.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from './safetensors.js';

/** How a model tensor is stored: F32, or I64 for buffers PyTorch holds as int64 (integral values). */
export type CheckpointDtype = 'F32' | 'I64';

/** A model tensor (parameter or buffer) to save: meshgrad holds every one as float32. */
export interface CheckpointParam {
  readonly name: string;
  readonly shape: readonly number[];
  readonly value: Float32Array;
  /** The file's dtype (default F32); I64 needs integral values. */
  readonly dtype?: CheckpointDtype;
}

export interface CheckpointContents {
  /** The model's state: parameters and buffers (checkpointParams in shared/train/params.ts). */
  readonly params: ReadonlyArray<CheckpointParam>;
  readonly optimizer?: OptimizerStateDict;
  /** Any JSON-serialisable values (epoch, RNG state, config, ...). */
  readonly meta?: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  /** Every model tensor (parameters and buffers) by name, as float32 whatever its file dtype. */
  readonly params: Map<string, { shape: number[]; value: Float32Array; dtype: CheckpointDtype }>;
  readonly optimizer: OptimizerStateDict | null;
  readonly meta: Record<string, unknown>;
}

const OPTIMIZER_PREFIX = 'optimizer.';
const OPTIMIZER_KEY = 'meshgrad.optimizer';
const META_KEY = 'meshgrad.meta';
const OPTIMIZER_KINDS: readonly string[] = ['sgd', 'adam', 'adamw'] satisfies OptimizerKind[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** float32 values that must be integers → int64. */
function toInt64(path: string, p: CheckpointParam): BigInt64Array {
  const out = new BigInt64Array(p.value.length);
  p.value.forEach((v, i) => {
    if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 63) throw new RangeError(`saveCheckpoint(${path}): tensor '${p.name}' is stored as I64 but element ${i} is ${v}, not an int64 integer`);
    out[i] = BigInt(v);
  });
  return out;
}

/** int64 values → float32, refusing any that float32 cannot hold exactly (beyond 2^24 most cannot). */
function fromInt64(path: string, name: string, data: BigInt64Array): Float32Array {
  const out = new Float32Array(data.length);
  data.forEach((v, i) => {
    const n = Number(v);
    if (BigInt(n) !== v || Math.fround(n) !== n) throw new CheckpointFormatError(path, `tensor '${name}' (I64) holds ${v} at element ${i}, which meshgrad's float32 buffers cannot hold exactly`);
    out[i] = n;
  });
  return out;
}

/** Saves parameters, optimizer state and metadata to `path` (atomically). */
export async function saveCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  const tensors = new Map<string, SafeTensor>();
  for (const p of contents.params) {
    if (p.name.startsWith(OPTIMIZER_PREFIX)) {
      throw new RangeError(`saveCheckpoint(${path}): parameter name '${p.name}' clashes with the '${OPTIMIZER_PREFIX}' prefix kept for optimizer buffers`);
    }
    if (tensors.has(p.name)) throw new RangeError(`saveCheckpoint(${path}): parameter name '${p.name}' appears twice`);
    const dtype = p.dtype ?? 'F32';
    if (dtype === 'F32') tensors.set(p.name, { dtype, shape: p.shape, data: p.value });
    else if (dtype === 'I64') tensors.set(p.name, { dtype, shape: p.shape, data: toInt64(path, p) });
    else throw new RangeError(`saveCheckpoint(${path}): tensor '${p.name}' has dtype '${String(dtype)}' (supported: F32, I64)`);
  }
  const metadata: Record<string, string> = { format: 'pt' };
  if (contents.optimizer !== undefined) {
    const { kind, step, hyper, buffers } = contents.optimizer;
    for (const [key, buffer] of Object.entries(buffers)) {
      tensors.set(`${OPTIMIZER_PREFIX}${key}`, { dtype: 'F32', shape: [buffer.length], data: buffer });
    }
    metadata[OPTIMIZER_KEY] = JSON.stringify({ kind, step, hyper });
  }
  const metaJson = JSON.stringify(contents.meta ?? {});
  if (!isRecord(JSON.parse(metaJson))) throw new TypeError(`saveCheckpoint(${path}): meta must be a JSON object`);
  metadata[META_KEY] = metaJson;
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

function parseOptimizer(file: string, json: string, buffers: Record<string, Float32Array>): OptimizerStateDict {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new CheckpointFormatError(file, `metadata '${OPTIMIZER_KEY}' is not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(value)) throw new CheckpointFormatError(file, `metadata '${OPTIMIZER_KEY}' is not a JSON object`);
  const { kind, step, hyper } = value;
  if (typeof kind !== 'string' || !OPTIMIZER_KINDS.includes(kind)) {
    throw new CheckpointFormatError(file, `optimizer kind ${JSON.stringify(kind)} is not one of ${OPTIMIZER_KINDS.join(', ')}`);
  }
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    throw new CheckpointFormatError(file, `optimizer step ${JSON.stringify(step)} is not a non-negative integer`);
  }
  if (!isRecord(hyper)) throw new CheckpointFormatError(file, 'optimizer hyper is not an object');
  const checkedHyper: Record<string, number | boolean> = {};
  for (const [key, v] of Object.entries(hyper)) {
    if (typeof v !== 'number' && typeof v !== 'boolean') {
      throw new CheckpointFormatError(file, `optimizer hyper '${key}' is ${JSON.stringify(v)}, not a number or boolean`);
    }
    checkedHyper[key] = v;
  }
  return { kind: kind as OptimizerKind, step, hyper: checkedHyper, buffers };
}

/** Loads a checkpoint written by saveCheckpoint; errors name the file. */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const { tensors, metadata } = decodeSafetensors(await readFile(path), path);
  const params = new Map<string, { shape: number[]; value: Float32Array; dtype: CheckpointDtype }>();
  const buffers: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) {
    if (name.startsWith(OPTIMIZER_PREFIX)) {
      if (!(t.data instanceof Float32Array)) throw new CheckpointFormatError(path, `tensor '${name}' has dtype ${t.dtype}, expected F32`);
      buffers[name.slice(OPTIMIZER_PREFIX.length)] = t.data;
    } else if (t.data instanceof Float32Array) {
      params.set(name, { shape: [...t.shape], value: t.data, dtype: 'F32' });
    } else if (t.data instanceof BigInt64Array) {
      params.set(name, { shape: [...t.shape], value: fromInt64(path, name, t.data), dtype: 'I64' });
    } else {
      throw new CheckpointFormatError(path, `tensor '${name}' has dtype ${t.dtype}, expected F32 (or I64 for integer buffers)`);
    }
  }
  const optimizerJson = metadata[OPTIMIZER_KEY];
  if (optimizerJson === undefined && Object.keys(buffers).length > 0) {
    throw new CheckpointFormatError(path, `has '${OPTIMIZER_PREFIX}*' tensors but no '${OPTIMIZER_KEY}' metadata`);
  }
  const optimizer = optimizerJson === undefined ? null : parseOptimizer(path, optimizerJson, buffers);

  let meta: Record<string, unknown> = {};
  const metaJson = metadata[META_KEY];
  if (metaJson !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(metaJson);
    } catch (error) {
      throw new CheckpointFormatError(path, `metadata '${META_KEY}' is not valid JSON (${(error as Error).message})`);
    }
    if (!isRecord(value)) throw new CheckpointFormatError(path, `metadata '${META_KEY}' is not a JSON object`);
    meta = value;
  }
  return { params, optimizer, meta };
}

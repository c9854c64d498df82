/**
 * The bridge between a Module's parameter tensors and the optimizers' flat host arrays. On a host
 * backend a slot's `value` IS the tensor's storage, so an optimizer step updates the model in place.
 */

import type { CheckpointParam, LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import type { Module, StateEntry } from '../nn/module.js';
import type { ParamSlot } from '../optim/types.js';
import type { Tensor } from '../tensor/tensor.js';

function hostFloat32(t: Tensor, what: string): Float32Array {
  const data = t.dataSync();
  if (!(data instanceof Float32Array)) throw new TypeError(`${what} must be float32 for training, got ${t.dtype}`);
  return data;
}

export function paramSlots(model: Module): ParamSlot[] {
  return model.namedParameters().map(([name, p]) => ({ name, value: hostFloat32(p, `parameter ${name}`), grad: null }));
}

/** Points each slot's grad at the gradient backward() left on the matching parameter (null if none). */
export function attachGrads(model: Module, slots: readonly ParamSlot[]): void {
  const params = model.parameters();
  if (params.length !== slots.length) throw new Error(`internal: ${slots.length} slots for ${params.length} parameters`);
  params.forEach((p, i) => {
    slots[i].grad = p.grad ? hostFloat32(p.grad, `gradient of ${slots[i].name}`) : null;
  });
}

/**
 * The model's state as checkpoint entries (names, shapes and their live float32 storage): the
 * parameters, then the buffers (BatchNorm's running_mean, running_var, num_batches_tracked), under
 * PyTorch's state_dict names. Buffers PyTorch holds as int64 (num_batches_tracked) are marked I64.
 */
export function checkpointParams(model: Module): CheckpointParam[] {
  const integers = model.integerBufferNames();
  return [
    ...model.namedParameters().map(([name, p]): CheckpointParam => ({ name, shape: p.shape, value: hostFloat32(p, `parameter ${name}`) })),
    ...model.namedBuffers().map(([name, b]): CheckpointParam => ({ name, shape: b.shape, value: hostFloat32(b, `buffer ${name}`), dtype: integers.has(name) ? 'I64' : 'F32' })),
  ];
}

/**
 * The buffers as slots (their live storage, no gradient), for code that snapshots and restores
 * values by slot, such as early stopping keeping the best epoch's state.
 */
export function bufferSlots(model: Module): ParamSlot[] {
  return model.namedBuffers().map(([name, b]) => ({ name, value: hostFloat32(b, `buffer ${name}`), grad: null }));
}

/**
 * Loads a checkpoint's model state (parameters and buffers) into `model`. A file without the
 * model's buffers (written before meshgrad saved them) is refused unless `allowMissingBuffers`,
 * in which case the buffers keep their current values and their names are returned. Any other
 * difference (missing or unexpected names, shapes) throws, naming `file`.
 */
export function loadModelState(model: Module, checkpoint: Pick<LoadedCheckpoint, 'params'>, file: string, options: { allowMissingBuffers?: boolean } = {}): string[] {
  const state = new Map<string, Tensor | StateEntry>(checkpoint.params);
  const missing = model.namedBuffers().filter(([name]) => !state.has(name));
  if (missing.length > 0 && !options.allowMissingBuffers) {
    throw new Error(`${file} has no ${missing.map(([name]) => name).join(', ')} (buffers such as BatchNorm running statistics; a file written before meshgrad saved them holds parameters only)`);
  }
  for (const [name, b] of missing) state.set(name, b);
  try {
    model.loadStateDict(state);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  return missing.map(([name]) => name);
}

/** Drops the step's gradients from the parameters and the slots (their memory is recycled). */
export function detachGrads(model: Module, slots: readonly ParamSlot[]): void {
  model.zeroGrad();
  for (const s of slots) s.grad = null;
}

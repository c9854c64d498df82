/**
 * The bridge between a Module's parameter tensors and the optimizers' flat host arrays. On a host
 * backend a slot's `value` IS the tensor's storage, so an optimizer step updates the model in place.
 */

import type { CheckpointParam } from '../checkpoint/checkpoint.js';
import type { Module } from '../nn/module.js';
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

/** The parameters as checkpoint entries (names, shapes and their live float32 storage). */
export function checkpointParams(model: Module): CheckpointParam[] {
  return model.namedParameters().map(([name, p]) => ({ name, shape: p.shape, value: hostFloat32(p, `parameter ${name}`) }));
}

/** Drops the step's gradients from the parameters and the slots (their memory is recycled). */
export function detachGrads(model: Module, slots: readonly ParamSlot[]): void {
  model.zeroGrad();
  for (const s of slots) s.grad = null;
}

/**
 * A model on a device backend (WebGPU), seen by code written for host arrays: the optimizers,
 * gradient clipping, early stopping's snapshots and checkpoints all work on Float32Arrays. A
 * DeviceMirror keeps a host copy of the parameters (the optimizer's slots), fills the slots'
 * gradients from one batched read per step, and writes the updated parameters back in place.
 *
 * Per step this moves the gradients device → host and the parameters host → device; the
 * activations, the backward pass and every intermediate stay on the device. (A distributed worker
 * moves exactly these anyway: it sends gradients and receives parameters.)
 */

import type { Backend, DeviceBuffer } from '../backend/backend.js';
import type { CheckpointParam } from '../checkpoint/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { ParamSlot } from '../optim/types.js';
import type { FloatArray } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

/** Reads buffers back with one round trip where the backend batches reads. */
export function readAll(backend: Backend, buffers: readonly DeviceBuffer[]): Promise<FloatArray[]> {
  return backend.readMany ? backend.readMany(buffers) : Promise.all(buffers.map((b) => backend.read(b)));
}

function float32(values: FloatArray, what: string): Float32Array {
  if (!(values instanceof Float32Array)) throw new TypeError(`${what} must be float32 for training`);
  return values;
}

export class DeviceMirror {
  private constructor(
    private readonly backend: Backend,
    private readonly params: ReadonlyArray<[string, Tensor]>,
    private readonly buffers: ReadonlyArray<[string, Tensor]>,
    /** The optimizer's slots: host copies of the parameters, gradients filled by `readGradients`. */
    readonly slots: ParamSlot[],
    /** Host copies of the buffers (running statistics), refreshed by `pullBuffers`. */
    readonly bufferSlots: ParamSlot[],
  ) {}

  static async create(model: Module): Promise<DeviceMirror> {
    const params = model.namedParameters();
    const buffers = model.namedBuffers();
    const backend = params[0]?.[1].backend;
    if (backend === undefined) throw new Error('the model has no parameters');
    const values = await readAll(backend, [...params, ...buffers].map(([, t]) => t.buffer));
    const slots = params.map(([name], i): ParamSlot => ({ name, value: float32(values[i], `parameter ${name}`), grad: null }));
    const bufferSlots = buffers.map(([name], i): ParamSlot => ({ name, value: float32(values[params.length + i], `buffer ${name}`), grad: null }));
    return new DeviceMirror(backend, params, buffers, slots, bufferSlots);
  }

  /**
   * Issues the read of this step's gradients (call it inside the step's scope, after backward):
   * the promise fills each slot's grad (null where a parameter got none).
   */
  readGradients(): Promise<void> {
    const withGrad = this.params.map(([, p], i) => [i, p.grad] as const).filter((e): e is readonly [number, Tensor] => e[1] !== null);
    const reads = readAll(this.backend, withGrad.map(([, g]) => g.buffer));
    return reads.then((values) => {
      for (const s of this.slots) s.grad = null;
      withGrad.forEach(([i], k) => (this.slots[i].grad = float32(values[k], `gradient of ${this.slots[i].name}`)));
    });
  }

  /** Writes the host parameters (after an optimizer step or a restore) into the device tensors. */
  pushParams(): void {
    this.params.forEach(([, p], i) => this.backend.write(p.buffer, this.slots[i].value));
  }

  /** Writes the host buffers (a restored snapshot) into the device tensors. */
  pushBuffers(): void {
    this.buffers.forEach(([, b], i) => this.backend.write(b.buffer, this.bufferSlots[i].value));
  }

  /** Refreshes the host copies of the buffers (BatchNorm's running statistics change on the device). */
  async pullBuffers(): Promise<void> {
    const values = await readAll(this.backend, this.buffers.map(([, b]) => b.buffer));
    values.forEach((v, i) => this.bufferSlots[i].value.set(v));
  }

  /** The model's state as checkpoint entries, from the host copies (pull the buffers first). */
  checkpointParams(model: Module): CheckpointParam[] {
    const integers = model.integerBufferNames();
    return [
      ...this.params.map(([name, p], i): CheckpointParam => ({ name, shape: p.shape, value: this.slots[i].value })),
      ...this.buffers.map(([name, b], i): CheckpointParam => ({ name, shape: b.shape, value: this.bufferSlots[i].value, dtype: integers.has(name) ? 'I64' : 'F32' })),
    ];
  }

  /** Drops the step's gradients (their device memory is recycled with the step's scope). */
  clearGradients(model: Module): void {
    model.zeroGrad();
    for (const s of this.slots) s.grad = null;
  }
}

/**
 * A model on a device backend (WebGPU), between steps: host copies of its parameters and buffers
 * for what works on Float32Arrays (early stopping's snapshots, checkpoints), refreshed from the
 * device only when needed (`pull*`, at an epoch's end or a save) and written back after a
 * restore (`push*`); and gradient clipping on the device, so a training step (forward, backward,
 * clipping and the DeviceOptimizer's update) never moves parameters or gradients to the host.
 */

import type { Backend, DeviceBuffer } from '../backend/backend.js';
import type { CheckpointParam } from '../checkpoint/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { ParamSlot } from '../optim/types.js';
import type { FloatArray } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, div, lt, mul, noGrad, sqrt, sum, where } from '../ops/index.js';

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
    /** Host copies of the parameters, refreshed by `pullParams` (their grads stay null). */
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

  /** Writes the host parameters (after an optimizer step or a restore) into the device tensors. */
  pushParams(): void {
    this.params.forEach(([, p], i) => this.backend.write(p.buffer, this.slots[i].value));
  }

  /** Writes the host buffers (a restored snapshot) into the device tensors. */
  pushBuffers(): void {
    this.buffers.forEach(([, b], i) => this.backend.write(b.buffer, this.bufferSlots[i].value));
  }

  /** Refreshes the host copies of the parameters (the optimizer updates them on the device). */
  async pullParams(): Promise<void> {
    const values = await readAll(this.backend, this.params.map(([, p]) => p.buffer));
    values.forEach((v, i) => this.slots[i].value.set(v));
  }

  /** Refreshes the host copies of the buffers (BatchNorm's running statistics change on the device). */
  async pullBuffers(): Promise<void> {
    const values = await readAll(this.backend, this.buffers.map(([, b]) => b.buffer));
    values.forEach((v, i) => this.bufferSlots[i].value.set(v));
  }

  /** The model's state as checkpoint entries, from the host copies (pull them first). */
  checkpointParams(model: Module): CheckpointParam[] {
    const integers = model.integerBufferNames();
    return [
      ...this.params.map(([name, p], i): CheckpointParam => ({ name, shape: p.shape, value: this.slots[i].value })),
      ...this.buffers.map(([name, b], i): CheckpointParam => ({ name, shape: b.shape, value: this.bufferSlots[i].value, dtype: integers.has(name) ? 'I64' : 'F32' })),
    ];
  }

}

/**
 * torch.nn.utils.clip_grad_norm_ on the device, as shared/optim/clip.ts on the host: the global
 * L2 norm of every gradient, and when it exceeds maxNorm each gradient scaled in place by
 * maxNorm / (‖g‖ + 1e-6). A non-finite norm leaves the gradients untouched (as the host version).
 * The sum of squares is float32 here (float64 on the host): the norms agree to float32 rounding.
 */
export function clipGradNormOnDevice(params: readonly Tensor[], maxNorm: number): void {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new RangeError(`clipGradNorm: maxNorm must be a positive finite number, got ${String(maxNorm)}`);
  }
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) return;
  noGrad(() => {
    let total = sum(mul(grads[0], grads[0]));
    for (const g of grads.slice(1)) total = add(total, sum(mul(g, g)));
    const norm = sqrt(total);
    const scale = div(maxNorm, add(norm, 1e-6));
    const factor = where(mul(lt(scale, 1), lt(norm, Infinity)), scale, 1);
    for (const g of grads) g.backend.assign(g.buffer, mul(g, factor).buffer);
  });
}

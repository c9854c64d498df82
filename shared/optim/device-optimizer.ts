/**
 * The optimizer of a model that lives on a device (WebGPU): the same SGD, Adam and AdamW as the
 * host optimizers, run by the backend's in-place update kernels (`adamUpdate`, `sgdUpdate`) on the
 * parameters' and gradients' device buffers, so a training step never brings parameters or
 * gradients to the host. Hyper-parameters, their defaults and their checks come from the host
 * optimizer of the same name (built once over the model's shapes, never stepped); the per-step
 * scalars from `adamArgs`, which the host Adam uses too. State (moments, momentum buffers) is
 * allocated on the device up front, outside any step's scope, so it outlives every step.
 */

import type { Backend, DeviceBuffer } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { createOptimizer, type OptimizerName, type OptimizerOptions } from './factory.js';
import { adamArgs } from './update-kernels.js';

interface AdamState {
  readonly m: DeviceBuffer;
  readonly v: DeviceBuffer;
  /** The parameter's own step count (it advances only when the parameter had a gradient). */
  t: number;
}

export class DeviceOptimizer {
  private readonly backend: Backend;
  private readonly hyper: Record<string, number | boolean>;
  private readonly adam: AdamState[] = [];
  private readonly momentum: Array<{ buffer: DeviceBuffer; started: boolean } | null> = [];
  private steps = 0;

  constructor(
    readonly name: OptimizerName,
    private readonly params: readonly Tensor[],
    options: OptimizerOptions,
  ) {
    const first = params[0];
    if (first === undefined) throw new Error('DeviceOptimizer: the model has no parameters');
    this.backend = first.backend;
    // The host optimizer validates the options and fills in the defaults; its slots are placeholders.
    const host = createOptimizer(name, params.map((p, i) => ({ name: String(i), value: new Float32Array(p.size), grad: null })), { ...options, vectorOps: undefined });
    this.hyper = { ...host.stateDict().hyper };
    for (const p of params) {
      if (p.dtype !== 'float32') throw new TypeError(`DeviceOptimizer: parameters must be float32, got ${p.dtype}`);
      if (name === 'sgd') this.momentum.push(this.num('momentum') > 0 ? { buffer: this.backend.fill('float32', p.size, 0), started: false } : null);
      else this.adam.push({ m: this.backend.fill('float32', p.size, 0), v: this.backend.fill('float32', p.size, 0), t: 0 });
    }
  }

  private num(key: string): number {
    return Number(this.hyper[key]);
  }

  get lr(): number {
    return this.num('lr');
  }

  set lr(value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${this.name}: lr must be a finite number >= 0, got ${value}`);
    this.hyper.lr = value;
  }

  /** Optimizer steps taken. */
  get stepCount(): number {
    return this.steps;
  }

  /** Records one update of every parameter that has a gradient (null grads are skipped, as in PyTorch). */
  step(): void {
    const lr = this.lr;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (g === null) return;
      if (this.name === 'sgd') {
        const state = this.momentum[i];
        const args = { lr, momentum: this.num('momentum'), keep: 1 - this.num('dampening'), nesterov: this.hyper.nesterov === true, weightDecay: this.num('weightDecay'), first: state !== null && !state.started };
        this.backend.sgdUpdate(p.buffer, g.buffer, state?.buffer ?? null, args);
        if (state) state.started = true;
        return;
      }
      const state = this.adam[i];
      state.t++;
      const args = adamArgs(lr, this.num('beta1'), this.num('beta2'), this.num('eps'), this.num('weightDecay'), this.name === 'adamw', state.t);
      this.backend.adamUpdate(p.buffer, g.buffer, state.m, state.v, args);
    });
    this.steps++;
  }
}

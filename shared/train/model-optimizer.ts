/**
 * An optimizer bound to a Module's parameters, for hand-written training loops: `step()` hands the
 * gradients that `loss.backward()` left on the parameters to the optimizer (shared/optim works on
 * flat Float32Arrays, which on a host backend are the tensors' own storage) and updates the model
 * in place; `zeroGrad()` drops the gradients. Host backends (cpu, wasm) only.
 */

import type { Module } from '../nn/module.js';
import { clipGradNorm } from '../optim/clip.js';
import { createOptimizer, type OptimizerName, type OptimizerOptions } from '../optim/factory.js';
import type { Optimizer, ParamSlot } from '../optim/types.js';
import { attachGrads, detachGrads, paramSlots } from './params.js';

export class ModelOptimizer {
  /** The underlying optimizer (its state dict, its slots). */
  readonly optimizer: Optimizer;
  private readonly slots: ParamSlot[];

  constructor(
    readonly model: Module,
    name: OptimizerName,
    options: OptimizerOptions,
  ) {
    this.slots = paramSlots(model);
    this.optimizer = createOptimizer(name, this.slots, options);
  }

  get lr(): number {
    return this.optimizer.lr;
  }

  set lr(value: number) {
    this.optimizer.lr = value;
  }

  /** Clips the gradients backward() left to a global norm of at most `maxNorm`; returns the norm before. */
  clipGradNorm(maxNorm: number): number {
    attachGrads(this.model, this.slots);
    return clipGradNorm(this.slots, maxNorm);
  }

  /** One update from the gradients that backward() left on the model's parameters. */
  step(): void {
    attachGrads(this.model, this.slots);
    this.optimizer.step();
  }

  /** Drops the parameters' gradients (call before the next backward). */
  zeroGrad(): void {
    detachGrads(this.model, this.slots);
  }
}

/** `new ModelOptimizer(model, name, options)`: e.g. optimizerFor(model, 'sgd', { lr: 0.1, momentum: 0.9 }). */
export function optimizerFor(model: Module, name: OptimizerName, options: OptimizerOptions): ModelOptimizer {
  return new ModelOptimizer(model, name, options);
}

/**
 * What every op uses to build its result: argument checks shared by all ops, and `record`, which
 * attaches the backward rule to the result only when grad mode is on and some input requires a
 * gradient — otherwise the closure (and the activations it captured) is never kept.
 */

import type { DeviceBuffer } from '../backend/backend.js';
import { isGradEnabled } from '../autograd/grad-mode.js';
import { Tensor, type GradNode } from '../tensor/tensor.js';
import type { Shape } from '../tensor/shape.js';

export type BackwardRule = GradNode['backward'];

export function record(op: string, inputs: readonly Tensor[], buffer: DeviceBuffer, shape: Shape, backward: BackwardRule): Tensor {
  const backend = inputs[0].backend;
  const track = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  return new Tensor(backend, buffer, shape, track, track ? { op, inputs, backward } : null);
}

/** A result that never has a gradient (comparisons, masks). */
export function constant(like: Tensor, buffer: DeviceBuffer, shape: Shape): Tensor {
  return new Tensor(like.backend, buffer, shape, false, null);
}

export function checkCompatible(op: string, tensors: readonly Tensor[]): void {
  const first = tensors[0];
  for (const t of tensors) {
    if (t.backend !== first.backend) throw new Error(`${op}: tensors on different backends ('${first.backend.name}' and '${t.backend.name}')`);
    if (t.dtype !== first.dtype) throw new TypeError(`${op}: mixed dtypes ${first.dtype} and ${t.dtype}`);
  }
}

/** Numbers become scalar constants of the other operand's dtype and backend. */
export function lift(x: Tensor | number, like: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  return new Tensor(like.backend, like.backend.fill(like.dtype, 1, x), []);
}

/** Tensor constructors: from data, constants, and seeded random fills. */

import type { Backend } from '../backend/backend.js';
import { defaultBackend } from '../backend/default.js';
import { allocArray, dtypeOf, type DType, type FloatArray } from '../tensor/dtype.js';
import { assertValidShape, formatShape, shapeSize, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';

export interface CreateOptions {
  readonly dtype?: DType;
  readonly backend?: Backend;
  readonly requiresGrad?: boolean;
  /**
   * Keep `data` as the tensor's `hostData` when the backend holds it on a device, for values code
   * must inspect on the host without reading the device back (token ids for an Embedding).
   */
  readonly retainHost?: boolean;
}

/**
 * A tensor over `data` with `shape` (default: 1-D). A typed array of the requested dtype is taken
 * as is (not copied) on the CPU backend; anything else is converted.
 */
export function tensor(data: FloatArray | ArrayLike<number>, shape?: Shape, options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? (data instanceof Float64Array ? 'float64' : 'float32');
  let array: FloatArray;
  if ((data instanceof Float32Array || data instanceof Float64Array) && dtypeOf(data) === dtype) array = data;
  else {
    array = allocArray(dtype, data.length);
    for (let i = 0; i < data.length; i++) array[i] = data[i];
  }
  const s = shape ?? [array.length];
  assertValidShape(s);
  if (shapeSize(s) !== array.length) throw new RangeError(`tensor(): ${array.length} values do not fill shape ${formatShape(s)}`);
  const backend = options.backend ?? defaultBackend(dtype);
  const t = new Tensor(backend, backend.upload(array), s, options.requiresGrad ?? false);
  if (options.retainHost && backend.readSync(t.buffer) === null) t.hostData = array;
  return t;
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  assertValidShape(shape);
  const dtype = options.dtype ?? 'float32';
  const backend = options.backend ?? defaultBackend(dtype);
  return new Tensor(backend, backend.fill(dtype, shapeSize(shape), value), shape, options.requiresGrad ?? false);
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function scalar(value: number, options: CreateOptions = {}): Tensor {
  return full([], value, options);
}

/** Samples from N(mean, std²). */
export function randn(shape: Shape, rng: Rng, options: CreateOptions & { mean?: number; std?: number } = {}): Tensor {
  const array = allocArray(options.dtype ?? 'float32', shapeSize(shape));
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  for (let i = 0; i < array.length; i++) array[i] = mean + std * rng.normal();
  return tensor(array, shape, options);
}

/** Samples from U[low, high). */
export function uniform(shape: Shape, rng: Rng, low: number, high: number, options: CreateOptions = {}): Tensor {
  const array = allocArray(options.dtype ?? 'float32', shapeSize(shape));
  for (let i = 0; i < array.length; i++) array[i] = low + (high - low) * rng.uniform();
  return tensor(array, shape, options);
}

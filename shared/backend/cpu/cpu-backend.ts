/**
 * The CPU backend: buffers are plain Float32Array / Float64Array on the host, and kernels are
 * the TypeScript reference implementations in this folder.
 */

import type { Backend, BinaryOp, DeviceBuffer, MatmulSpec, ReduceOp, UnaryOp } from '../backend.js';
import { allocArray, type DType, type FloatArray } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';
import { binaryKernel, unaryKernel, whereKernel } from './elementwise.js';
import { concatKernel, gatherKernel, padKernel, permuteKernel, scatterAddKernel, sliceKernel } from './layout.js';
import { matmulKernel } from './matmul.js';
import { reduceKernel } from './reduce.js';
import { col2imKernel, im2colKernel, maxPool2dBackwardKernel, maxPool2dKernel } from './conv.js';
import type { WindowSpec } from '../conv-spec.js';

/** A CPU buffer is the typed array itself (it already has `length`; `dtype` is added). */
class HostBuffer implements DeviceBuffer {
  constructor(readonly array: FloatArray) {}
  get dtype(): DType {
    return this.array instanceof Float32Array ? 'float32' : 'float64';
  }
  get length(): number {
    return this.array.length;
  }
}

function host(buffer: DeviceBuffer): FloatArray {
  if (!(buffer instanceof HostBuffer)) throw new TypeError('the CPU backend was given a buffer that belongs to another backend');
  return buffer.array;
}

function wrap(array: FloatArray): HostBuffer {
  return new HostBuffer(array);
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';

  scope<T>(fn: () => T): T {
    return fn();
  }

  upload(data: FloatArray): DeviceBuffer {
    return wrap(data);
  }
  fill(dtype: DType, length: number, value: number): DeviceBuffer {
    const a = allocArray(dtype, length);
    if (value !== 0) a.fill(value);
    return wrap(a);
  }
  read(buffer: DeviceBuffer): Promise<FloatArray> {
    return Promise.resolve(host(buffer));
  }
  readSync(buffer: DeviceBuffer): FloatArray {
    return host(buffer);
  }
  cast(buffer: DeviceBuffer, dtype: DType): DeviceBuffer {
    const a = host(buffer);
    const out = allocArray(dtype, a.length);
    out.set(a);
    return wrap(out);
  }
  unary(op: UnaryOp, a: DeviceBuffer): DeviceBuffer {
    return wrap(unaryKernel(op, host(a)));
  }
  binary(op: BinaryOp, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    return wrap(binaryKernel(op, host(a), aShape, host(b), bShape, outShape));
  }
  where(cond: DeviceBuffer, condShape: Shape, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    return wrap(whereKernel(host(cond), condShape, host(a), aShape, host(b), bShape, outShape));
  }
  reduce(op: ReduceOp, a: DeviceBuffer, shape: Shape, axes: readonly number[]): DeviceBuffer {
    return wrap(reduceKernel(op, host(a), shape, axes));
  }
  matmul(a: DeviceBuffer, b: DeviceBuffer, spec: MatmulSpec): DeviceBuffer {
    return wrap(matmulKernel(host(a), host(b), spec));
  }
  permute(a: DeviceBuffer, shape: Shape, perm: readonly number[]): DeviceBuffer {
    return wrap(permuteKernel(host(a), shape, perm));
  }
  slice(a: DeviceBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): DeviceBuffer {
    return wrap(sliceKernel(host(a), shape, begin, size));
  }
  pad(a: DeviceBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): DeviceBuffer {
    return wrap(padKernel(host(a), shape, outShape, begin));
  }
  concat(inputs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number): DeviceBuffer {
    return wrap(concatKernel(inputs.map(host), shapes, axis));
  }
  gather(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array): DeviceBuffer {
    return wrap(gatherKernel(host(a), shape, axis, indices));
  }
  scatterAdd(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array, outShape: Shape): DeviceBuffer {
    return wrap(scatterAddKernel(host(a), shape, axis, indices, outShape));
  }
  im2col(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    return wrap(im2colKernel(host(x), shape, spec));
  }
  col2im(cols: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    return wrap(col2imKernel(host(cols), shape, spec));
  }
  maxPool2d(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    return wrap(maxPool2dKernel(host(x), shape, spec));
  }
  maxPool2dBackward(x: DeviceBuffer, shape: Shape, grad: DeviceBuffer, spec: WindowSpec): DeviceBuffer {
    return wrap(maxPool2dBackwardKernel(host(x), shape, host(grad), spec));
  }
}

/** The process's CPU backend; stateless, so one instance is shared. */
export const cpu: Backend = new CpuBackend();

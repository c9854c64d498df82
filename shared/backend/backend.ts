/**
 * The Backend interface: the only place where tensor data is touched. The op layer
 * (`shared/ops`) computes shapes, checks arguments and records gradients; a backend only runs
 * kernels over opaque buffers. Every kernel is synchronous and returns a new buffer, so a device
 * backend (WebGPU) can enqueue work and return at once; only `read` — bringing data back to the
 * host — is asynchronous. Host-visible backends (CPU) also answer `readSync`.
 *
 * All buffers hold dense, row-major (C-order) data; shapes travel beside them as plain arrays.
 */

import type { DType, FloatArray } from '../tensor/dtype.js';
import type { Shape } from '../tensor/shape.js';
import type { WindowSpec } from './conv-spec.js';
import type { AdamArgs, VectorOps } from '../optim/vector-ops.js';
import type { SgdArgs } from '../optim/update-kernels.js';
import type { NormKernels } from './fused-norm.js';
import type { RecurrentKernels } from './fused-recurrent.js';

/** An opaque handle to a backend's storage. */
export interface DeviceBuffer {
  readonly dtype: DType;
  readonly length: number;
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'sigmoid' | 'erf' | 'abs' | 'sign';
/** Comparisons return 1 where true and 0 where false, in the input dtype. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'gt' | 'ge' | 'eq';
export type ReduceOp = 'sum' | 'max';

export interface MatmulSpec {
  /** Number of matrices; each operand either has `batch` matrices or one shared by all (stride 0). */
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** a is stored [k, m] (transposed) instead of [m, k]. */
  readonly transA: boolean;
  /** b is stored [n, k] (transposed) instead of [k, n]. */
  readonly transB: boolean;
  readonly aBroadcast: boolean;
  readonly bBroadcast: boolean;
}

/** Every backend implements the whole table: the primitives below and the fused kernels. */
export interface Backend extends NormKernels, RecurrentKernels {
  readonly name: string;

  /**
   * Runs fn as one unit of work (a training step): buffers created inside may be recycled as soon
   * as it returns, so nothing created inside may be used afterwards. Backends without pooling
   * just run fn.
   */
  scope<T>(fn: () => T): T;

  /** SIMD kernels for optimizer updates and gradient sums on this backend's memory, if it has them. */
  vectorOps?(): VectorOps;

  /** Takes ownership of `data` when the backend can (CPU), or copies it to the device. */
  upload(data: FloatArray): DeviceBuffer;
  fill(dtype: DType, length: number, value: number): DeviceBuffer;
  read(buffer: DeviceBuffer): Promise<FloatArray>;
  /** Several reads with one round trip to the device, where the backend can batch them. */
  readMany?(buffers: readonly DeviceBuffer[]): Promise<FloatArray[]>;
  /**
   * Overwrites `buffer` in place with host `data` (same length and dtype): parameters a worker
   * receives, a checkpoint loaded into a model. Work recorded before still sees the old values.
   */
  write(buffer: DeviceBuffer, data: FloatArray): void;
  /**
   * Copies `src` into `dst` in place (same length and dtype), ordered after the work recorded
   * before it: running statistics updated inside a step, values restored from a snapshot.
   */
  assign(dst: DeviceBuffer, src: DeviceBuffer): void;
  /** The host array behind a buffer, or null when the data lives on a device. */
  readSync(buffer: DeviceBuffer): FloatArray | null;
  cast(buffer: DeviceBuffer, dtype: DType): DeviceBuffer;

  unary(op: UnaryOp, a: DeviceBuffer): DeviceBuffer;
  /** Elementwise with NumPy broadcasting of `aShape` and `bShape` to `outShape`. */
  binary(op: BinaryOp, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer;
  /** out = cond != 0 ? a : b, all three broadcast to `outShape`. */
  where(cond: DeviceBuffer, condShape: Shape, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer;
  /** Reduces the sorted, unique `axes` of `shape`; the result has those axes removed. */
  reduce(op: ReduceOp, a: DeviceBuffer, shape: Shape, axes: readonly number[]): DeviceBuffer;
  matmul(a: DeviceBuffer, b: DeviceBuffer, spec: MatmulSpec): DeviceBuffer;
  permute(a: DeviceBuffer, shape: Shape, perm: readonly number[]): DeviceBuffer;
  /** The block of `shape` starting at `begin` with extent `size`. */
  slice(a: DeviceBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): DeviceBuffer;
  /** Zeros of `outShape` with `a` (of `shape`) written at `begin`: the adjoint of `slice`. */
  pad(a: DeviceBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): DeviceBuffer;
  concat(inputs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number): DeviceBuffer;
  /** Selects `indices` along `axis`: out.shape = shape with shape[axis] replaced by indices.length. */
  gather(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array): DeviceBuffer;
  /** Zeros of `outShape` plus `a` added at `indices` along `axis` (repeats accumulate): the adjoint of `gather`. */
  scatterAdd(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array, outShape: Shape): DeviceBuffer;
  /** Windows of an NCHW input as rows: [N·oh·ow, C·kh·kw] (padding reads 0). */
  im2col(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer;
  /** The adjoint of im2col: sums columns back into an NCHW tensor of `shape`. */
  col2im(cols: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer;
  /**
   * One Adam/AdamW update in place of p, m and v from the gradient g (all float32, one length):
   * the reference is shared/optim/update-kernels.ts `adamUpdateReference`, which states the math.
   * The optimizer on a device (shared/optim/device-optimizer.ts) runs through this and sgdUpdate.
   */
  adamUpdate(p: DeviceBuffer, g: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, args: AdamArgs): void;
  /** One SGD update in place of p (and of the momentum buffer, null without momentum): `sgdUpdateReference`. */
  sgdUpdate(p: DeviceBuffer, g: DeviceBuffer, momentumBuffer: DeviceBuffer | null, args: SgdArgs): void;
  /** Max over each window: [N, C, oh, ow]. */
  maxPool2d(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer;
  /** The gradient of maxPool2d with respect to x, given the gradient of its output. */
  maxPool2dBackward(x: DeviceBuffer, shape: Shape, grad: DeviceBuffer, spec: WindowSpec): DeviceBuffer;
}

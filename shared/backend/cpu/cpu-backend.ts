/**
 * The CPU backend: buffers are plain Float32Array / Float64Array on the host, and kernels are
 * the TypeScript reference implementations in this folder.
 */

import type { AdamArgs } from '../../optim/vector-ops.js';
import { adamUpdateReference, sgdUpdateReference, type SgdArgs } from '../../optim/update-kernels.js';
import type { Backend, BinaryOp, DeviceBuffer, MatmulSpec, ReduceOp, UnaryOp } from '../backend.js';
import { allocArray, type DType, type FloatArray } from '../../tensor/dtype.js';
import type { Shape } from '../../tensor/shape.js';
import { binaryKernel, unaryKernel, whereKernel } from './elementwise.js';
import { concatKernel, gatherKernel, padKernel, permuteKernel, scatterAddKernel, sliceKernel } from './layout.js';
import { matmulKernel } from './matmul.js';
import { reduceKernel } from './reduce.js';
import { col2imKernel, im2colKernel, maxPool2dBackwardKernel, maxPool2dKernel } from './conv.js';
import type { WindowSpec } from '../conv-spec.js';
import type { GeluApproximation, LayerNormGradRequest, LayerNormGrads, LayerNormResult } from '../fused-norm.js';
import {
  geluBackwardKernel,
  geluKernel,
  reluBackwardKernel,
  reluKernel,
  layerNormBackwardKernel,
  layerNormKernel,
  logSoftmaxBackwardKernel,
  logSoftmaxKernel,
  softmaxBackwardKernel,
  softmaxKernel,
} from './fused-norm.js';
import type { GruCellGrads, GruCellResult, LstmCellGrads, LstmCellResult, RnnActivation } from '../fused-recurrent.js';
import { gruCellBackwardKernel, gruCellKernel, lstmCellBackwardKernel, lstmCellKernel, rnnCellBackwardKernel, rnnCellKernel } from './fused-recurrent.js';

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

/** A buffer's float32 array, for the optimizer updates (float32 state, as PyTorch). */
function hostFloat32(buffer: DeviceBuffer): Float32Array {
  const a = host(buffer);
  if (!(a instanceof Float32Array)) throw new TypeError(`optimizer updates run on float32 buffers, got ${buffer.dtype}`);
  return a;
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
  write(buffer: DeviceBuffer, data: FloatArray): void {
    const a = host(buffer);
    if (data.length !== a.length) throw new RangeError(`write: ${data.length} values into a buffer of ${a.length}`);
    a.set(data);
  }
  assign(dst: DeviceBuffer, src: DeviceBuffer): void {
    this.write(dst, host(src));
  }
  adamUpdate(p: DeviceBuffer, g: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, args: AdamArgs): void {
    adamUpdateReference(hostFloat32(p), hostFloat32(g), hostFloat32(m), hostFloat32(v), args);
  }
  sgdUpdate(p: DeviceBuffer, g: DeviceBuffer, momentumBuffer: DeviceBuffer | null, args: SgdArgs): void {
    sgdUpdateReference(hostFloat32(p), hostFloat32(g), momentumBuffer === null ? null : hostFloat32(momentumBuffer), args);
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

  // ---- fused: norms, activations, softmax (NormKernels, shared/backend/fused-norm.ts) ------

  softmax(x: DeviceBuffer, rows: number, cols: number, causal: boolean): DeviceBuffer {
    const a = host(x);
    const out = allocArray(x.dtype, a.length);
    softmaxKernel(a, out, rows, cols, causal);
    return wrap(out);
  }
  softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    const out = allocArray(y.dtype, y.length);
    softmaxBackwardKernel(host(y), host(gy), out, rows, cols);
    return wrap(out);
  }
  logSoftmax(x: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    const out = allocArray(x.dtype, x.length);
    logSoftmaxKernel(host(x), out, rows, cols);
    return wrap(out);
  }
  logSoftmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    const out = allocArray(y.dtype, y.length);
    logSoftmaxBackwardKernel(host(y), host(gy), out, rows, cols);
    return wrap(out);
  }
  layerNorm(x: DeviceBuffer, weight: DeviceBuffer | null, bias: DeviceBuffer | null, rows: number, cols: number, eps: number): LayerNormResult {
    const y = allocArray(x.dtype, x.length);
    const mean = allocArray(x.dtype, rows);
    const rstd = allocArray(x.dtype, rows);
    layerNormKernel(host(x), weight && host(weight), bias && host(bias), rows, cols, eps, y, mean, rstd);
    return { y: wrap(y), mean: wrap(mean), rstd: wrap(rstd) };
  }
  layerNormBackward(
    gy: DeviceBuffer,
    x: DeviceBuffer,
    mean: DeviceBuffer,
    rstd: DeviceBuffer,
    weight: DeviceBuffer | null,
    rows: number,
    cols: number,
    grads: LayerNormGradRequest,
  ): LayerNormGrads {
    const gx = allocArray(x.dtype, x.length);
    const gWeight = grads.weight ? allocArray(x.dtype, cols) : null;
    const gBias = grads.bias ? allocArray(x.dtype, cols) : null;
    layerNormBackwardKernel(host(gy), host(x), host(mean), host(rstd), weight && host(weight), rows, cols, gx, gWeight, gBias);
    return { gx: wrap(gx), gWeight: gWeight && wrap(gWeight), gBias: gBias && wrap(gBias) };
  }
  gelu(x: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    const out = allocArray(x.dtype, x.length);
    geluKernel(host(x), out, approximate);
    return wrap(out);
  }
  geluBackward(x: DeviceBuffer, gy: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    const out = allocArray(x.dtype, x.length);
    geluBackwardKernel(host(x), host(gy), out, approximate);
    return wrap(out);
  }
  relu(x: DeviceBuffer): DeviceBuffer {
    const out = allocArray(x.dtype, x.length);
    reluKernel(host(x), out);
    return wrap(out);
  }
  reluBackward(x: DeviceBuffer, gy: DeviceBuffer): DeviceBuffer {
    const out = allocArray(x.dtype, x.length);
    reluBackwardKernel(host(x), host(gy), out);
    return wrap(out);
  }

  // ---- fused: recurrent cells (RecurrentKernels, shared/backend/fused-recurrent.ts) --------

  lstmCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, c: DeviceBuffer, batch: number, hidden: number): LstmCellResult {
    const dtype = gi.dtype;
    const h = allocArray(dtype, batch * hidden);
    const cNext = allocArray(dtype, batch * hidden);
    const act = allocArray(dtype, batch * 5 * hidden);
    lstmCellKernel(host(gi), giRow, host(gh), bias && host(bias), host(c), batch, hidden, h, cNext, act);
    return { h: wrap(h), c: wrap(cNext), act: wrap(act) };
  }
  lstmCellBackward(
    act: DeviceBuffer,
    c: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradC: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): LstmCellGrads {
    const dtype = act.dtype;
    const gGates = allocArray(dtype, batch * 4 * hidden);
    const gc = allocArray(dtype, batch * hidden);
    lstmCellBackwardKernel(host(act), host(c), gradOut && host(gradOut), gradOutRow, gradH && host(gradH), gradC && host(gradC), batch, hidden, gGates, gc);
    return { gGates: wrap(gGates), gc: wrap(gc) };
  }
  gruCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, h: DeviceBuffer, batch: number, hidden: number): GruCellResult {
    const dtype = gi.dtype;
    const hNext = allocArray(dtype, batch * hidden);
    const act = allocArray(dtype, batch * 4 * hidden);
    gruCellKernel(host(gi), giRow, host(gh), bias && host(bias), host(h), batch, hidden, hNext, act);
    return { h: wrap(hNext), act: wrap(act) };
  }
  gruCellBackward(
    act: DeviceBuffer,
    h: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradHDirect: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): GruCellGrads {
    const dtype = act.dtype;
    const gGi = allocArray(dtype, batch * 3 * hidden);
    const gGh = allocArray(dtype, batch * 3 * hidden);
    const gh = allocArray(dtype, batch * hidden);
    gruCellBackwardKernel(host(act), host(h), gradOut && host(gradOut), gradOutRow, gradH && host(gradH), gradHDirect && host(gradHDirect), batch, hidden, gGi, gGh, gh);
    return { gGi: wrap(gGi), gGh: wrap(gGh), gh: wrap(gh) };
  }
  rnnCell(activation: RnnActivation, gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    const h = allocArray(gi.dtype, batch * hidden);
    rnnCellKernel(activation, host(gi), giRow, host(gh), bias && host(bias), batch, hidden, h);
    return wrap(h);
  }
  rnnCellBackward(activation: RnnActivation, h: DeviceBuffer, gradOut: DeviceBuffer | null, gradOutRow: number, gradH: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    const g = allocArray(h.dtype, batch * hidden);
    rnnCellBackwardKernel(activation, host(h), gradOut && host(gradOut), gradOutRow, gradH && host(gradH), batch, hidden, g);
    return wrap(g);
  }
}

/** The process's CPU backend; stateless, so one instance is shared. */
export const cpu: Backend = new CpuBackend();

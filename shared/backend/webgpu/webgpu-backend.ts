/**
 * The WebGPU backend: tensors live in GPU storage buffers for a whole step, every Backend method
 * records WGSL compute kernels (shared/backend/webgpu/kernels/), and only `read` brings data back.
 * `readSync` is always null: code that needs a value on the host must await it.
 *
 * Memory lifetime follows the wasm backend's contract: buffers allocated inside `scope(fn)` return
 * to a size-bucketed pool when fn returns (a training step reuses the previous step's buffers);
 * buffers allocated outside any scope (parameters, optimizer state) return to the pool once their
 * DeviceBuffer is collected. A buffer used after its scope ended is an error on its next use.
 *
 * Only float32: WGSL has no f64, and float64 tensors (gradient checks) stay on the CPU backend.
 * Loaded lazily: shared/backend/webgpu/gpu-loader.ts is the only importer of the `webgpu` package.
 */

/// <reference types="@webgpu/types" />

import type { Backend, BinaryOp, DeviceBuffer, MatmulSpec, ReduceOp, UnaryOp } from '../backend.js';
import type { DType, FloatArray } from '../../tensor/dtype.js';
import { shapeSize, type Shape } from '../../tensor/shape.js';
import type { WindowSpec } from '../conv-spec.js';
import type { GeluApproximation, LayerNormGradRequest, LayerNormGrads, LayerNormResult } from '../fused-norm.js';
import type { GruCellGrads, GruCellResult, LstmCellGrads, LstmCellResult, RnnActivation } from '../fused-recurrent.js';
import { GpuContext } from './context.js';
import { openGpu, type AdapterSummary } from './gpu-loader.js';
import { binaryGpu, copyKernel, fillKernel, geluBackwardGpu, geluGpu, reluBackwardGpu, reluGpu, unaryGpu, whereGpu } from './kernels/elementwise.js';
import { reduceGpu } from './kernels/reduce.js';
import { concatGpu, gatherGpu, padGpu, permuteGpu, scatterAddGpu, sliceGpu } from './kernels/layout.js';
import { col2imGpu, im2colGpu, maxPool2dBackwardGpu, maxPool2dGpu } from './kernels/window.js';
import { matmulGpu } from './kernels/matmul.js';
import { layerNormBackwardGpu, layerNormGpu, logSoftmaxBackwardGpu, logSoftmaxGpu, softmaxBackwardGpu, softmaxGpu } from './kernels/norm.js';
import { adamUpdateGpu, sgdUpdateGpu } from './kernels/optim.js';
import type { AdamArgs } from '../../optim/vector-ops.js';
import type { SgdArgs } from '../../optim/update-kernels.js';
import { gruCellBackwardGpu, gruCellGpu, lstmCellBackwardGpu, lstmCellGpu, rnnCellBackwardGpu, rnnCellGpu } from './kernels/recurrent.js';

export class GpuBuffer implements DeviceBuffer {
  readonly dtype: DType = 'float32';
  released = false;
  constructor(
    readonly gpu: GPUBuffer,
    readonly length: number,
  ) {}
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private readonly scopes: GpuBuffer[][] = [];
  private readonly collected: FinalizationRegistry<GPUBuffer>;

  private constructor(readonly ctx: GpuContext) {
    this.collected = new FinalizationRegistry((buffer) => ctx.releaseLater(buffer));
  }

  /** Opens the device (once per process); throws with the reason when there is no adapter. */
  static async create(): Promise<WebGpuBackend> {
    const opened = await openGpu();
    if (!opened.ok) throw new Error(opened.reason);
    return new WebGpuBackend(new GpuContext(opened.gpu.device, opened.gpu.adapter));
  }

  get adapter(): AdapterSummary {
    return this.ctx.adapter;
  }

  // -- buffers ---------------------------------------------------------------------------------

  private wrap(gpu: GPUBuffer, length: number): GpuBuffer {
    const b = new GpuBuffer(gpu, length);
    const scope = this.scopes[this.scopes.length - 1];
    if (scope) scope.push(b);
    else this.collected.register(b, gpu);
    return b;
  }

  /** The GPU buffer behind a DeviceBuffer of this backend, checked: float32, this backend, still alive. */
  private g(buffer: DeviceBuffer): GPUBuffer {
    if (!(buffer instanceof GpuBuffer)) throw new TypeError(`webgpu: a ${buffer.dtype} buffer of another backend was passed (move tensors with .to() first)`);
    if (buffer.released) throw new Error('webgpu: a buffer was used after the scope that created it ended');
    return buffer.gpu;
  }

  private opt(buffer: DeviceBuffer | null): GPUBuffer | null {
    return buffer === null ? null : this.g(buffer);
  }

  private float32(dtype: DType, what: string): void {
    if (dtype !== 'float32') throw new TypeError(`webgpu: ${what} must be float32 (the webgpu backend holds float32 only; float64 stays on the cpu backend), got ${dtype}`);
  }

  scope<T>(fn: () => T): T {
    this.scopes.push([]);
    try {
      return this.ctx.scope(fn);
    } finally {
      for (const b of this.scopes.pop()!) b.released = true;
    }
  }

  upload(data: FloatArray): DeviceBuffer {
    if (!(data instanceof Float32Array)) this.float32('float64', 'uploaded data');
    const gpu = this.ctx.alloc(4 * data.length);
    this.ctx.writeFresh(gpu, data);
    return this.wrap(gpu, data.length);
  }

  /** Overwrites a buffer in place with host data (parameters received by a worker, an optimizer's restored state). */
  write(buffer: DeviceBuffer, data: FloatArray): void {
    if (data.length !== buffer.length) throw new RangeError(`webgpu: writing ${data.length} values into a buffer of ${buffer.length}`);
    this.float32(data instanceof Float32Array ? 'float32' : 'float64', 'written data');
    this.ctx.writeInto(this.g(buffer), data);
  }

  assign(dst: DeviceBuffer, src: DeviceBuffer): void {
    if (dst.length !== src.length) throw new RangeError(`webgpu: assigning ${src.length} values into a buffer of ${dst.length}`);
    this.ctx.copy(this.g(src), 0, this.g(dst), 0, 4 * src.length);
  }

  fill(dtype: DType, length: number, value: number): DeviceBuffer {
    this.float32(dtype, 'fill');
    return this.wrap(fillKernel(this.ctx, length, value), length);
  }

  async read(buffer: DeviceBuffer): Promise<FloatArray> {
    const [bytes] = await this.ctx.readMany([[this.g(buffer), 4 * buffer.length]]);
    return new Float32Array(bytes);
  }

  /** Reads several buffers with one submit (a worker's gradients). */
  async readMany(buffers: readonly DeviceBuffer[]): Promise<Float32Array[]> {
    const all = await this.ctx.readMany(buffers.map((b) => [this.g(b), 4 * b.length] as const));
    return all.map((bytes) => new Float32Array(bytes));
  }

  readSync(): FloatArray | null {
    return null;
  }

  cast(buffer: DeviceBuffer, dtype: DType): DeviceBuffer {
    this.float32(dtype, 'cast target');
    return this.wrap(copyKernel(this.ctx, this.g(buffer), buffer.length), buffer.length);
  }

  /** Waits until the device has finished what was submitted (benchmarks, tests). */
  idle(): Promise<void> {
    return this.ctx.idle();
  }

  async close(): Promise<void> {
    await this.ctx.idle().catch(() => {});
  }

  // -- primitives ------------------------------------------------------------------------------

  unary(op: UnaryOp, a: DeviceBuffer): DeviceBuffer {
    return this.wrap(unaryGpu(this.ctx, op, this.g(a), a.length), a.length);
  }

  binary(op: BinaryOp, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    return this.wrap(binaryGpu(this.ctx, op, this.g(a), aShape, this.g(b), bShape, outShape), shapeSize(outShape));
  }

  where(cond: DeviceBuffer, condShape: Shape, a: DeviceBuffer, aShape: Shape, b: DeviceBuffer, bShape: Shape, outShape: Shape): DeviceBuffer {
    return this.wrap(whereGpu(this.ctx, this.g(cond), condShape, this.g(a), aShape, this.g(b), bShape, outShape), shapeSize(outShape));
  }

  reduce(op: ReduceOp, a: DeviceBuffer, shape: Shape, axes: readonly number[]): DeviceBuffer {
    const outLength = shapeSize(shape.filter((_, d) => !axes.includes(d)));
    return this.wrap(reduceGpu(this.ctx, op, this.g(a), shape, axes), outLength);
  }

  matmul(a: DeviceBuffer, b: DeviceBuffer, spec: MatmulSpec): DeviceBuffer {
    return this.wrap(matmulGpu(this.ctx, this.g(a), this.g(b), spec), spec.batch * spec.m * spec.n);
  }

  permute(a: DeviceBuffer, shape: Shape, perm: readonly number[]): DeviceBuffer {
    return this.wrap(permuteGpu(this.ctx, this.g(a), shape, perm), a.length);
  }

  slice(a: DeviceBuffer, shape: Shape, begin: readonly number[], size: readonly number[]): DeviceBuffer {
    return this.wrap(sliceGpu(this.ctx, this.g(a), shape, begin, size), shapeSize(size));
  }

  pad(a: DeviceBuffer, shape: Shape, outShape: Shape, begin: readonly number[]): DeviceBuffer {
    return this.wrap(padGpu(this.ctx, this.g(a), shape, outShape, begin), shapeSize(outShape));
  }

  concat(inputs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number): DeviceBuffer {
    const total = inputs.reduce((s, b) => s + b.length, 0);
    return this.wrap(concatGpu(this.ctx, inputs.map((b) => this.g(b)), shapes, axis), total);
  }

  gather(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array): DeviceBuffer {
    const outLength = (a.length / (shape[axis] || 1)) * indices.length;
    return this.wrap(gatherGpu(this.ctx, this.g(a), shape, axis, indices), shape[axis] === 0 ? 0 : outLength);
  }

  scatterAdd(a: DeviceBuffer, shape: Shape, axis: number, indices: Int32Array, outShape: Shape): DeviceBuffer {
    return this.wrap(scatterAddGpu(this.ctx, this.g(a), shape, axis, indices, outShape), shapeSize(outShape));
  }

  im2col(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const [n, c] = shape;
    return this.wrap(im2colGpu(this.ctx, this.g(x), shape, spec), n * spec.oh * spec.ow * c * spec.kh * spec.kw);
  }

  col2im(cols: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    return this.wrap(col2imGpu(this.ctx, this.g(cols), shape, spec), shapeSize(shape));
  }

  maxPool2d(x: DeviceBuffer, shape: Shape, spec: WindowSpec): DeviceBuffer {
    const [n, c] = shape;
    return this.wrap(maxPool2dGpu(this.ctx, this.g(x), shape, spec), n * c * spec.oh * spec.ow);
  }

  maxPool2dBackward(x: DeviceBuffer, shape: Shape, grad: DeviceBuffer, spec: WindowSpec): DeviceBuffer {
    return this.wrap(maxPool2dBackwardGpu(this.ctx, this.g(x), shape, this.g(grad), spec), shapeSize(shape));
  }

  adamUpdate(p: DeviceBuffer, g: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, args: AdamArgs): void {
    adamUpdateGpu(this.ctx, this.g(p), this.g(g), this.g(m), this.g(v), p.length, args);
  }

  sgdUpdate(p: DeviceBuffer, g: DeviceBuffer, momentumBuffer: DeviceBuffer | null, args: SgdArgs): void {
    sgdUpdateGpu(this.ctx, this.g(p), this.g(g), this.opt(momentumBuffer), p.length, args);
  }

  // -- fused kernels ---------------------------------------------------------------------------

  softmax(x: DeviceBuffer, rows: number, cols: number, causal: boolean): DeviceBuffer {
    return this.wrap(softmaxGpu(this.ctx, this.g(x), rows, cols, causal), rows * cols);
  }

  softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    return this.wrap(softmaxBackwardGpu(this.ctx, this.g(y), this.g(gy), rows, cols), rows * cols);
  }

  logSoftmax(x: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    return this.wrap(logSoftmaxGpu(this.ctx, this.g(x), rows, cols), rows * cols);
  }

  logSoftmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer {
    return this.wrap(logSoftmaxBackwardGpu(this.ctx, this.g(y), this.g(gy), rows, cols), rows * cols);
  }

  layerNorm(x: DeviceBuffer, weight: DeviceBuffer | null, bias: DeviceBuffer | null, rows: number, cols: number, eps: number): LayerNormResult {
    const r = layerNormGpu(this.ctx, this.g(x), this.opt(weight), this.opt(bias), rows, cols, eps);
    return { y: this.wrap(r.y, rows * cols), mean: this.wrap(r.mean, rows), rstd: this.wrap(r.rstd, rows) };
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
    const r = layerNormBackwardGpu(this.ctx, this.g(gy), this.g(x), this.g(mean), this.g(rstd), this.opt(weight), rows, cols, grads);
    return {
      gx: this.wrap(r.gx, rows * cols),
      gWeight: r.gWeight === null ? null : this.wrap(r.gWeight, cols),
      gBias: r.gBias === null ? null : this.wrap(r.gBias, cols),
    };
  }

  gelu(x: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    return this.wrap(geluGpu(this.ctx, this.g(x), x.length, approximate), x.length);
  }

  geluBackward(x: DeviceBuffer, gy: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer {
    return this.wrap(geluBackwardGpu(this.ctx, this.g(x), this.g(gy), x.length, approximate), x.length);
  }

  relu(x: DeviceBuffer): DeviceBuffer {
    return this.wrap(reluGpu(this.ctx, this.g(x), x.length), x.length);
  }

  reluBackward(x: DeviceBuffer, gy: DeviceBuffer): DeviceBuffer {
    return this.wrap(reluBackwardGpu(this.ctx, this.g(x), this.g(gy), x.length), x.length);
  }

  lstmCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, c: DeviceBuffer, batch: number, hidden: number): LstmCellResult {
    const r = lstmCellGpu(this.ctx, this.g(gi), giRow, this.g(gh), this.opt(bias), this.g(c), batch, hidden);
    return { h: this.wrap(r.h, batch * hidden), c: this.wrap(r.c, batch * hidden), act: this.wrap(r.act, batch * 5 * hidden) };
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
    const r = lstmCellBackwardGpu(this.ctx, this.g(act), this.g(c), this.opt(gradOut), gradOutRow, this.opt(gradH), this.opt(gradC), batch, hidden);
    return { gGates: this.wrap(r.gGates, batch * 4 * hidden), gc: this.wrap(r.gc, batch * hidden) };
  }

  gruCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, h: DeviceBuffer, batch: number, hidden: number): GruCellResult {
    const r = gruCellGpu(this.ctx, this.g(gi), giRow, this.g(gh), this.opt(bias), this.g(h), batch, hidden);
    return { h: this.wrap(r.h, batch * hidden), act: this.wrap(r.act, batch * 4 * hidden) };
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
    const r = gruCellBackwardGpu(this.ctx, this.g(act), this.g(h), this.opt(gradOut), gradOutRow, this.opt(gradH), this.opt(gradHDirect), batch, hidden);
    return { gGi: this.wrap(r.gGi, batch * 3 * hidden), gGh: this.wrap(r.gGh, batch * 3 * hidden), gh: this.wrap(r.gh, batch * hidden) };
  }

  rnnCell(activation: RnnActivation, gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    return this.wrap(rnnCellGpu(this.ctx, activation, this.g(gi), giRow, this.g(gh), this.opt(bias), batch, hidden), batch * hidden);
  }

  rnnCellBackward(activation: RnnActivation, h: DeviceBuffer, gradOut: DeviceBuffer | null, gradOutRow: number, gradH: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer {
    return this.wrap(rnnCellBackwardGpu(this.ctx, activation, this.g(h), this.opt(gradOut), gradOutRow, this.opt(gradH), batch, hidden), batch * hidden);
  }
}

/**
 * The Tensor: a dense, row-major array on some backend, plus what autograd needs — whether it
 * requires a gradient, its accumulated `.grad`, and (for results of ops) the `node` that knows how
 * to push a gradient back to its inputs. Tensors are immutable from the op layer's point of view;
 * only optimizers write parameter storage in place, outside any graph.
 *
 * Ops live in `shared/ops` as functions; this class stays small on purpose.
 */

import type { Backend, DeviceBuffer } from '../backend/backend.js';
import type { DType, FloatArray } from './dtype.js';
import { formatShape, shapeSize, type Shape } from './shape.js';
import { runBackward, type BackwardOptions } from '../autograd/backward.js';

/** How a result of an op sends its gradient back to the op's inputs. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * Given dL/d(output), returns dL/d(input) for each input, or null where `needed` is false.
   * Runs with grad recording off; may use any op.
   */
  backward(grad: Tensor, needed: readonly boolean[]): ReadonlyArray<Tensor | null>;
}

export class Tensor {
  readonly shape: Shape;
  grad: Tensor | null = null;
  /** The op that produced this tensor; null for leaves and after backward freed the graph. */
  node: GradNode | null;
  /**
   * For a device tensor created from host data with `retainHost`: that data, so code can inspect
   * the values (token ids) without a read-back. Null otherwise; never written after creation.
   */
  hostData: FloatArray | null = null;
  private storageBackend: Backend;
  private storage: DeviceBuffer;

  constructor(
    backend: Backend,
    buffer: DeviceBuffer,
    shape: Shape,
    public requiresGrad = false,
    node: GradNode | null = null,
  ) {
    const size = shapeSize(shape);
    if (size !== buffer.length) throw new RangeError(`shape ${formatShape(shape)} needs ${size} elements, the buffer has ${buffer.length}`);
    this.shape = Object.freeze([...shape]);
    this.node = node;
    this.storageBackend = backend;
    this.storage = buffer;
  }

  /** The backend that holds the data. */
  get backend(): Backend {
    return this.storageBackend;
  }
  /** The storage on `backend`. */
  get buffer(): DeviceBuffer {
    return this.storage;
  }

  /**
   * Swaps a leaf's storage for `buffer` on `backend` (same shape, any dtype), keeping the tensor
   * itself, so that every holder of it — a layer's field, an optimizer — sees the move. This is
   * what `Module.to` does to parameters and buffers (as torch's Module.to rebinds `param.data`);
   * no op uses it. Graphs recorded before still refer to this tensor: move between steps only.
   */
  relocate(backend: Backend, buffer: DeviceBuffer): void {
    if (!this.isLeaf) throw new Error(`relocate: only a leaf tensor can move, this one is the result of '${this.node!.op}'`);
    if (buffer.length !== this.size) throw new RangeError(`relocate: ${buffer.length} elements for a tensor of shape ${formatShape(this.shape)}`);
    this.storageBackend = backend;
    this.storage = buffer;
    this.hostData = null;
  }

  get dtype(): DType {
    return this.buffer.dtype;
  }
  get size(): number {
    return this.buffer.length;
  }
  get rank(): number {
    return this.shape.length;
  }
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The data on the host; throws for tensors that live on a device (use `data()`). */
  dataSync(): FloatArray {
    const array = this.backend.readSync(this.buffer) ?? this.hostData;
    if (array === null) throw new Error(`this tensor lives on the '${this.backend.name}' backend; read it with await tensor.data()`);
    return array;
  }

  /** The data on the host, read back from a device if needed. */
  data(): Promise<FloatArray> {
    return this.backend.read(this.buffer);
  }

  /** The single value of a one-element tensor (host backends only). */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs a one-element tensor, this one has shape ${formatShape(this.shape)}`);
    return this.dataSync()[0];
  }

  /** The same data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.backend, this.buffer, this.shape, false, null);
  }

  /**
   * Back-propagates from this tensor: accumulates dL/dx into `.grad` of every leaf that requires
   * it, then frees the graph. Without `grad`, this must be a one-element tensor (dL/dL = 1).
   */
  backward(grad?: Tensor, options?: BackwardOptions): void {
    runBackward(this, grad, options);
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}, ${this.backend.name}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

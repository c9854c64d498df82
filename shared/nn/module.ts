/**
 * Module: the base of every layer and model. Parameters, buffers (non-trained state such as running
 * statistics) and child modules are registered by name in order, so that `namedParameters()` and
 * `stateDict()` enumerate them exactly as PyTorch does (a module's own entries first, then each
 * child's under `child.`), and a state dict can be exchanged with PyTorch by name.
 *
 * Placement: `to(target)` moves every parameter and buffer (and gradient) of the tree to another
 * backend and/or dtype in place — the same tensor objects, names, order and requiresGrad — so one
 * model can run on the wasm backend while another stays on the CPU, whatever `setDefaultBackend`
 * says. Layers take the same choice at construction (`LayerPlacement`: `dtype`, `backend`), and
 * `placed` puts a freshly initialised tensor there. A dtype a backend cannot hold (float64
 * anywhere but the CPU backend) is an error naming the backend, never a silent move elsewhere.
 */

import type { Backend } from '../backend/backend.js';
import { checkBackendHolds, resolveBackend } from '../backend/default.js';
import type { DType, FloatArray } from '../tensor/dtype.js';
import { formatShape, sameShape, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { derivedSeed, type Rng } from '../util/random.js';

/** Where a layer creates its parameters and buffers (default: float32 on the default backend). */
export interface LayerPlacement {
  readonly dtype?: DType;
  /** Must hold `dtype`: float64 only on the CPU backend. */
  readonly backend?: Backend;
}

/** What `Module.to` accepts: a backend (dtypes kept), or a backend and / or a dtype. */
export type ModuleTarget = Backend | LayerPlacement;

function isBackend(target: ModuleTarget): target is Backend {
  return typeof (target as Partial<Backend>).upload === 'function';
}

/** A fresh host copy of `data` in `dtype` (never the array itself: a CPU upload would alias it). */
function hostCopy(data: FloatArray, dtype: DType): FloatArray {
  return dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data);
}

/**
 * `t` (an initial value, drawn in float32 on the default backend) as a tensor of the placement's
 * dtype on its backend: `t` itself when it already is one, else a copy. Initial values are drawn in
 * float32 whatever the dtype (as PyTorch does), so a float64 layer holds the same values.
 */
export function placed(t: Tensor, placement: LayerPlacement, who: string): Tensor {
  const dtype = placement.dtype ?? 'float32';
  const backend = resolveBackend(dtype, placement.backend, who);
  if (t.backend === backend && t.dtype === dtype) return t;
  const host = t.backend.readSync(t.buffer);
  if (host === null) throw new Error(`${who}: initial values on the '${t.backend.name}' backend cannot be read synchronously; build the layer on a host backend and move it with await module.toAsync(...)`);
  return new Tensor(backend, backend.upload(hostCopy(host, dtype)), t.shape, t.requiresGrad);
}

/** One tensor of a module to move, and where to. */
interface Move {
  readonly name: string;
  readonly tensor: Tensor;
  readonly backend: Backend;
  readonly dtype: DType;
}

/** What `loadStateDict` accepts per entry: a tensor, or a shape and host data. */
export interface StateEntry {
  readonly shape: Shape;
  readonly value: ArrayLike<number>;
}

/** How a buffer is held outside meshgrad. */
export interface BufferOptions {
  /**
   * PyTorch holds this buffer as int64 (`torch.long`, e.g. `num_batches_tracked`): meshgrad keeps
   * integral values in a float tensor, and checkpoints store it as I64 so PyTorch loads it as is.
   */
  readonly integer?: boolean;
}

export abstract class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly ownIntegerBuffers = new Set<string>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  protected registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name);
    t.requiresGrad = true;
    this.ownParams.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor, options: BufferOptions = {}): Tensor {
    this.checkName(name);
    this.ownBuffers.set(name, t);
    if (options.integer) this.ownIntegerBuffers.add(name);
    return t;
  }

  /** The generators this module draws from in forward (dropout masks), for reseedRandomStreams. */
  private readonly ownStreams: Rng[] = [];

  /** Declares a generator that forward draws from (dropout): reseedRandomStreams restarts it. */
  protected registerRandomStream(rng: Rng): Rng {
    this.ownStreams.push(rng);
    return rng;
  }

  /**
   * Restarts every random stream of the model (dropout masks) from `seed`: the k-th module's j-th
   * stream from derivedSeed(seed, k, j), in namedModules order. A distributed worker calls it per
   * shard with a seed named by the step and the shard's samples, so a shard's masks do not depend
   * on which worker computes it.
   */
  reseedRandomStreams(seed: number): void {
    this.namedModules().forEach(([, m], k) => m.ownStreams.forEach((rng, j) => rng.reseed(derivedSeed(seed, k, j))));
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new RangeError(`invalid member name '${name}'`);
    if (this.ownParams.has(name) || this.ownBuffers.has(name) || this.children.has(name)) throw new Error(`'${name}' is already registered`);
  }

  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    const stack: Array<[string, Module]> = [[prefix, this]];
    while (stack.length > 0) {
      const [name, m] = stack.pop()!;
      out.push([name, m]);
      const kids = [...m.children].map(([k, c]): [string, Module] => [name === '' ? k : `${name}.${k}`, c]);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
    }
    return out;
  }

  namedParameters(): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [prefix, m] of this.namedModules()) for (const [k, t] of m.ownParams) out.push([prefix === '' ? k : `${prefix}.${k}`, t]);
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [prefix, m] of this.namedModules()) for (const [k, t] of m.ownBuffers) out.push([prefix === '' ? k : `${prefix}.${k}`, t]);
    return out;
  }

  /** The dotted names of the buffers PyTorch holds as int64 (registered with `integer: true`). */
  integerBufferNames(): Set<string> {
    const out = new Set<string>();
    for (const [prefix, m] of this.namedModules()) for (const k of m.ownIntegerBuffers) out.add(prefix === '' ? k : `${prefix}.${k}`);
    return out;
  }

  /** Parameters then buffers, by their dotted names. The tensors share the module's storage. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into the existing parameter and buffer storage (so optimizers holding that
   * storage stay attached). Every name must match and every shape must agree; the error lists
   * missing, unexpected and mismatched names.
   */
  loadStateDict(state: ReadonlyMap<string, Tensor | StateEntry>): void {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of own) {
      const src = state.get(k);
      if (src && !sameShape(src.shape, t.shape)) mismatched.push(`${k}: ${formatShape(src.shape)} vs ${formatShape(t.shape)}`);
    }
    if (missing.length + unexpected.length + mismatched.length > 0) {
      const parts = [];
      if (missing.length) parts.push(`missing ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.join(', ')}`);
      if (mismatched.length) parts.push(`shape mismatch ${mismatched.join('; ')}`);
      throw new Error(`loadStateDict: ${parts.join('; ')}`);
    }
    for (const [k, t] of own) {
      const src = state.get(k)!;
      const values = 'value' in src ? src.value : src.dataSync();
      const typed = values instanceof Float32Array || values instanceof Float64Array ? values : Float64Array.from(values);
      // Into the model's dtype (a checkpoint's float32 into a float64 model and back).
      t.backend.write(t.buffer, typed instanceof Float64Array === (t.dtype === 'float64') ? typed : t.dtype === 'float64' ? Float64Array.from(typed) : Float32Array.from(typed));
    }
  }

  /**
   * Moves every parameter, buffer and gradient of this module and its children to `target` — a
   * backend, or `{ backend?, dtype? }` (what is not given stays as it is) — in place, and returns
   * `this`: names, registration order, requiresGrad and the tensor objects themselves are kept, so
   * fields holding them follow. Reads the values synchronously, so every tensor must be on a host
   * backend (cpu, wasm); from a device backend (webgpu) use `toAsync`. Nothing moves when any
   * tensor cannot: a dtype the target backend cannot hold (float64 off the CPU backend) throws
   * naming the backend. Build an optimizer after moving (its state is where the model was).
   */
  to(target: ModuleTarget): this {
    const moves = this.plannedMoves(target);
    const hosts = moves.map((m) => m.tensor.backend.readSync(m.tensor.buffer));
    const stuck = moves.findIndex((_, i) => hosts[i] === null);
    if (stuck >= 0) {
      const m = moves[stuck];
      throw new Error(`Module.to: '${m.name}' is on the '${m.tensor.backend.name}' backend, which reads asynchronously; use await module.toAsync(...)`);
    }
    moves.forEach((m, i) => Module.apply(m, hosts[i]!));
    return this;
  }

  /** `to` for any source backend: reads device tensors back (asynchronously) before moving them. */
  async toAsync(target: ModuleTarget): Promise<this> {
    const moves = this.plannedMoves(target);
    const hosts = await Promise.all(moves.map((m) => m.tensor.data()));
    moves.forEach((m, i) => Module.apply(m, hosts[i]));
    return this;
  }

  /** The tensors that `to(target)` changes (each once), checked first: the target must hold the dtype. */
  private plannedMoves(target: ModuleTarget): Move[] {
    const { backend, dtype } = isBackend(target) ? { backend: target, dtype: undefined } : target;
    const moves: Move[] = [];
    const seen = new Set<Tensor>();
    const add = (name: string, t: Tensor): void => {
      if (seen.has(t)) return;
      seen.add(t);
      const move = { name, tensor: t, backend: backend ?? t.backend, dtype: dtype ?? t.dtype };
      checkBackendHolds(move.backend, move.dtype, `Module.to: '${name}'`);
      if (move.backend !== t.backend || move.dtype !== t.dtype) moves.push(move);
    };
    for (const [name, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
      add(name, t);
      if (t.grad) add(`${name}.grad`, t.grad);
    }
    return moves;
  }

  private static apply(move: Move, host: FloatArray): void {
    move.tensor.relocate(move.backend, move.backend.upload(hostCopy(host, move.dtype)));
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  parameterCount(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }
}

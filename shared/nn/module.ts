/**
 * Module: the base of every layer and model. Parameters, buffers (non-trained state such as running
 * statistics) and child modules are registered by name in order, so that `namedParameters()` and
 * `stateDict()` enumerate them exactly as PyTorch does (a module's own entries first, then each
 * child's under `child.`), and a state dict can be exchanged with PyTorch by name.
 */

import { formatShape, sameShape, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { derivedSeed, type Rng } from '../util/random.js';

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

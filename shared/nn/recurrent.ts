/**
 * Sequence layers: Embedding and the recurrent stacks RNN (tanh or ReLU), LSTM and GRU, following
 * torch.nn's definitions, parameter names, layouts and initialisation, batch-first only: inputs are
 * [batch, seq, features]. Each layer's input projection W_ih·x + b_ih is one `linear` over all
 * steps; the recurrence is the fused layer op `recurrentLayer` (shared/ops/recurrent.ts): per step
 * one matrix product and one fused cell kernel, and back-propagation through time run inside its
 * own backward rule (one cell-backward kernel and one product per step, the weight gradient in
 * one product over all steps), as cuDNN does. The step formulas are PyTorch's, written out with
 * the kernels in shared/backend/fused-recurrent.ts.
 *
 * Truncated BPTT: `run(x, state)` takes and returns the recurrent state. Feed the state of one
 * chunk into the next *detached* (`detachState(state)`, i.e. `.detach()` on each tensor), so that
 * the values carry over while backward stops at the chunk boundary; without detaching, every
 * backward would walk back through all earlier chunks (whose graphs are already freed).
 *
 * Every layer takes `dtype` and `backend` (LayerPlacement); initial values are always drawn in
 * float32 (as PyTorch does) and stored in that dtype (float64 exists for gradient checks).
 */

import { zeros } from '../ops/create.js';
import { concat, gather, narrow, permute, reshape, unsqueeze } from '../ops/layout.js';
import { linear } from '../ops/matmul.js';
import { recurrentLayer } from '../ops/recurrent.js';
import type { DType } from '../tensor/dtype.js';
import { formatShape, shapeSize, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';
import { checkedStd, normalTensor, uniformTensor } from './init.js';
import { Module, placed, type LayerPlacement } from './module.js';

function checkPositiveInt(owner: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${owner}: ${name} must be a positive integer, got ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Embedding

export interface EmbeddingOptions extends LayerPlacement {
  /** Standard deviation of the N(0, std²) init: default 1 as torch.nn.Embedding; GPT-2 uses 0.02. */
  readonly std?: number;
}

/**
 * A lookup table: row i of `weight [numEmbeddings, dim]` is the vector of token i. Initialised
 * N(0, 1) like torch.nn.Embedding. The backward of the row gather scatter-adds, so a token that
 * occurs several times in a batch gets the sum of its gradients.
 */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, rng: Rng, options: EmbeddingOptions = {}) {
    super();
    checkPositiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    checkPositiveInt('Embedding', 'embeddingDim', embeddingDim);
    const std = checkedStd('Embedding', options.std ?? 1);
    this.weight = this.registerParameter('weight', placed(normalTensor([numEmbeddings, embeddingDim], std, rng), options, 'Embedding'));
  }

  /** Vectors of `indices` laid out as `shape`: the result is [...shape, embeddingDim]. */
  lookup(indices: Int32Array, shape: Shape): Tensor {
    if (shapeSize(shape) !== indices.length) throw new RangeError(`Embedding: ${indices.length} indices do not fill shape ${formatShape(shape)}`);
    for (let i = 0; i < indices.length; i++) {
      const v = indices[i];
      if (v < 0 || v >= this.numEmbeddings) throw new RangeError(`Embedding: index ${v} at position ${i} is out of range [0, ${this.numEmbeddings})`);
    }
    return reshape(gather(this.weight, 0, indices), [...shape, this.embeddingDim]);
  }

  /**
   * The Module entry point: `x` holds token ids as (integer-valued) floats, of any shape; the
   * result is [...x.shape, embeddingDim]. No gradient flows to `x` (indices are not differentiable).
   */
  forward(x: Tensor): Tensor {
    const values = x.dataSync();
    const idx = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      // Integers beyond 2^31 cannot be indices of any table, and would wrap in an Int32Array.
      if (!Number.isInteger(v) || v < 0 || v >= this.numEmbeddings) {
        throw new RangeError(`Embedding: index ${v} at position ${i} of input ${formatShape(x.shape)} is ${Number.isInteger(v) ? `out of range [0, ${this.numEmbeddings})` : 'not an integer'}`);
      }
      idx[i] = v;
    }
    return this.lookup(idx, x.shape);
  }
}

// ---------------------------------------------------------------------------------------------
// Recurrent stacks

export type RecurrentMode = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface RecurrentOptions extends LayerPlacement {
  /** Stacked layers; layer k > 0 reads the hidden sequence of layer k − 1 (default 1). */
  readonly numLayers?: number;
  /** Whether the layers have bias_ih / bias_hh (default true). */
  readonly bias?: boolean;
}

export interface RNNOptions extends RecurrentOptions {
  /** torch.nn.RNN's nonlinearity (default 'tanh'). */
  readonly nonlinearity?: 'tanh' | 'relu';
}

/** Hidden state of RNN and GRU: h [numLayers, batch, hidden]. */
export interface RNNState {
  readonly h: Tensor;
}

/** Hidden and cell state of LSTM, each [numLayers, batch, hidden]. */
export interface LSTMState {
  readonly h: Tensor;
  readonly c: Tensor;
}

export interface RecurrentResult<S> {
  /** Hidden states of the top layer at every step: [batch, seq, hidden]. */
  readonly output: Tensor;
  /** The state after the last step, to pass to the next `run` (detached, for truncated BPTT). */
  readonly state: S;
}

/** One layer's parameters; the biases are null without bias. */
export interface RecurrentLayerParams {
  readonly weightIh: Tensor;
  readonly weightHh: Tensor;
  readonly biasIh: Tensor | null;
  readonly biasHh: Tensor | null;
}

/** The same state with every tensor cut from the graph: what truncated BPTT carries between chunks. */
export function detachState(state: LSTMState): LSTMState;
export function detachState(state: RNNState): RNNState;
export function detachState(state: RNNState | LSTMState): RNNState | LSTMState {
  return 'c' in state ? { h: state.h.detach(), c: state.c.detach() } : { h: state.h.detach() };
}

const GATES: Record<RecurrentMode, number> = { rnn_tanh: 1, rnn_relu: 1, lstm: 4, gru: 3 };
const NAMES: Record<RecurrentMode, string> = { rnn_tanh: 'RNN', rnn_relu: 'RNN', lstm: 'LSTM', gru: 'GRU' };

/**
 * The shared machinery of RNN, LSTM and GRU. Per layer k, PyTorch's parameters, registered in its
 * order: weight_ih_l{k} [G·H, in], weight_hh_l{k} [G·H, H], bias_ih_l{k} [G·H], bias_hh_l{k} [G·H],
 * with G gates stacked along the first axis (LSTM: i, f, g, o; GRU: r, z, n), all U(±1/√H).
 */
export abstract class RecurrentBase<S extends RNNState> extends Module {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly layers: readonly RecurrentLayerParams[];
  protected readonly gates: number;
  protected readonly name: string;

  constructor(readonly mode: RecurrentMode, readonly inputSize: number, readonly hiddenSize: number, rng: Rng, options: RecurrentOptions) {
    super();
    this.name = NAMES[mode];
    this.gates = GATES[mode];
    this.numLayers = options.numLayers ?? 1;
    this.bias = options.bias ?? true;
    checkPositiveInt(this.name, 'inputSize', inputSize);
    checkPositiveInt(this.name, 'hiddenSize', hiddenSize);
    checkPositiveInt(this.name, 'numLayers', this.numLayers);
    // PyTorch's reset_parameters: every parameter U(−1/√H, 1/√H), drawn in registration order.
    const bound = 1 / Math.sqrt(hiddenSize);
    const gh = this.gates * hiddenSize;
    const make = (name: string, shape: Shape): Tensor => this.registerParameter(name, placed(uniformTensor(shape, bound, rng), options, this.name));
    const layers: RecurrentLayerParams[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const inF = k === 0 ? inputSize : hiddenSize;
      const weightIh = make(`weight_ih_l${k}`, [gh, inF]);
      const weightHh = make(`weight_hh_l${k}`, [gh, hiddenSize]);
      const biasIh = this.bias ? make(`bias_ih_l${k}`, [gh]) : null;
      const biasHh = this.bias ? make(`bias_hh_l${k}`, [gh]) : null;
      layers.push({ weightIh, weightHh, biasIh, biasHh });
    }
    this.layers = layers;
  }

  /** The parameters' dtype (it follows `Module.to`). */
  get dtype(): DType {
    return this.layers[0].weightIh.dtype;
  }

  /** The top layer's hidden sequence [batch, seq, hidden] for x [batch, seq, input], from a zero state. */
  forward(x: Tensor): Tensor {
    return this.run(x).output;
  }

  /** Runs the stack over x [batch, seq, input] from `state` (zeros when omitted). */
  run(x: Tensor, state?: S): RecurrentResult<S> {
    const H = this.hiddenSize;
    if (x.rank !== 3 || x.shape[2] !== this.inputSize) {
      throw new RangeError(`${this.name}: input must be [batch, seq, ${this.inputSize}] (batch-first), got ${formatShape(x.shape)}`);
    }
    const [B, T] = x.shape;
    if (B === 0 || T === 0) throw new RangeError(`${this.name}: input ${formatShape(x.shape)} has an empty batch or sequence`);
    if (x.dtype !== this.dtype) throw new TypeError(`${this.name}: input is ${x.dtype} but the parameters are ${this.dtype}`);
    const h0 = this.initial(state?.h, 'h', B, x);
    const c0 = this.mode === 'lstm' ? this.initial(this.cellOf(state), 'c', B, x) : null;

    // Time-major rows [T·B, features]: step t is the contiguous block of rows t·B … t·B + B − 1.
    let seq = reshape(permute(x, [1, 0, 2]), [T * B, this.inputSize]);
    const hN: Tensor[] = [];
    const cN: Tensor[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const p = this.layers[k];
      // W_ih·x + b_ih for every step of this layer in one matrix product; only the recurrent
      // half W_hh·h + b_hh has to wait for the previous step, which the fused layer op runs
      // (one product and one cell kernel per step, BPTT in its own backward rule).
      const inputProj = linear(seq, p.weightIh, p.biasIh);
      const layer = recurrentLayer(this.mode, inputProj, p.weightHh, p.biasHh, this.layerState(h0, k, B), c0 ? this.layerState(c0, k, B) : null);
      seq = layer.output;
      hN.push(layer.hT);
      if (layer.cT) cN.push(layer.cT);
    }
    const output = permute(reshape(seq, [T, B, H]), [1, 0, 2]);
    const stackLayers = (ts: Tensor[]): Tensor => (ts.length === 1 ? unsqueeze(ts[0], 0) : concat(ts.map((t) => unsqueeze(t, 0)), 0));
    const h = stackLayers(hN);
    const next = (this.mode === 'lstm' ? { h, c: stackLayers(cN) } : { h }) as S;
    return { output, state: next };
  }

  private cellOf(state: S | undefined): Tensor | undefined {
    if (state === undefined) return undefined;
    const c = (state as Partial<LSTMState>).c;
    if (c === undefined) throw new RangeError(`${this.name}: the state needs both h and c`);
    return c;
  }

  private initial(t: Tensor | undefined, what: string, batch: number, like: Tensor): Tensor {
    const want = [this.numLayers, batch, this.hiddenSize];
    if (t === undefined) return zeros(want, { dtype: this.dtype, backend: like.backend });
    if (t.rank !== 3 || t.shape[0] !== want[0] || t.shape[1] !== want[1] || t.shape[2] !== want[2]) {
      throw new RangeError(`${this.name}: state ${what} must be [numLayers, batch, hidden] = ${formatShape(want)}, got ${formatShape(t.shape)}`);
    }
    if (t.dtype !== this.dtype) throw new TypeError(`${this.name}: state ${what} is ${t.dtype} but the parameters are ${this.dtype}`);
    return t;
  }

  private layerState(all: Tensor, k: number, batch: number): Tensor {
    return reshape(this.numLayers === 1 ? all : narrow(all, 0, k, 1), [batch, this.hiddenSize]);
  }
}

function rnnMode(nonlinearity: string | undefined): RecurrentMode {
  if (nonlinearity === undefined || nonlinearity === 'tanh') return 'rnn_tanh';
  if (nonlinearity === 'relu') return 'rnn_relu';
  throw new RangeError(`RNN: nonlinearity must be 'tanh' or 'relu', got '${nonlinearity}'`);
}

/** Elman RNN, torch.nn.RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or ReLU), batch-first. */
export class RNN extends RecurrentBase<RNNState> {
  constructor(inputSize: number, hiddenSize: number, rng: Rng, options: RNNOptions = {}) {
    super(rnnMode(options.nonlinearity), inputSize, hiddenSize, rng, options);
  }
}

/** torch.nn.LSTM, batch-first; the state carries h and c. */
export class LSTM extends RecurrentBase<LSTMState> {
  constructor(inputSize: number, hiddenSize: number, rng: Rng, options: RecurrentOptions = {}) {
    super('lstm', inputSize, hiddenSize, rng, options);
  }
}

/** torch.nn.GRU, batch-first. */
export class GRU extends RecurrentBase<RNNState> {
  constructor(inputSize: number, hiddenSize: number, rng: Rng, options: RecurrentOptions = {}) {
    super('gru', inputSize, hiddenSize, rng, options);
  }
}

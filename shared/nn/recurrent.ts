/**
 * Sequence layers: Embedding and the recurrent stacks RNN (tanh or ReLU), LSTM and GRU, following
 * torch.nn's definitions, parameter names, layouts and initialisation, batch-first only: inputs are
 * [batch, seq, features]. Everything is composed from recorded ops, so autograd differentiates
 * through time by itself (back-propagation through time); the engine's backward is iterative, so
 * the depth of an unrolled sequence is no problem for the call stack.
 *
 * Truncated BPTT: `run(x, state)` takes and returns the recurrent state. Feed the state of one
 * chunk into the next *detached* (`detachState(state)`, i.e. `.detach()` on each tensor), so that
 * the values carry over while backward stops at the chunk boundary; without detaching, every
 * backward would walk back through all earlier chunks (whose graphs are already freed).
 */

import { relu } from '../ops/activations.js';
import { tensor, zeros } from '../ops/create.js';
import { add, mul, sigmoid, sub, tanh } from '../ops/elementwise.js';
import { concat, gather, narrow, permute, reshape, unsqueeze } from '../ops/layout.js';
import { linear } from '../ops/matmul.js';
import type { DType } from '../tensor/dtype.js';
import { formatShape, shapeSize, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';
import { checkedStd, normalTensor, uniformTensor } from './init.js';
import { Module } from './module.js';

/**
 * Initial values are always drawn in float32 (as PyTorch does); `float64` stores the same values
 * in float64, which exists for finite-difference gradient checks.
 */
function withDType(t: Tensor, dtype: DType): Tensor {
  return dtype === 'float32' ? t : tensor(Float64Array.from(t.dataSync()), t.shape, { dtype });
}

function checkPositiveInt(owner: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${owner}: ${name} must be a positive integer, got ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Embedding

export interface EmbeddingOptions {
  /** Storage type of the weight (default float32). */
  readonly dtype?: DType;
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
    this.weight = this.registerParameter('weight', withDType(normalTensor([numEmbeddings, embeddingDim], std, rng), options.dtype ?? 'float32'));
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

export interface RecurrentOptions {
  /** Stacked layers; layer k > 0 reads the hidden sequence of layer k − 1 (default 1). */
  readonly numLayers?: number;
  /** Whether the layers have bias_ih / bias_hh (default true). */
  readonly bias?: boolean;
  /** Storage type of the parameters (default float32); float64 is for gradient checks. */
  readonly dtype?: DType;
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
 * Splits `x` [steps·rows, f] (time-major) into `steps` tensors [rows, f].
 *
 * Numerical/complexity trap: the backward of each slice pads its gradient back to the full input
 * shape, so T direct slices of a [T·B, F] tensor cost O(T²·B·F) in backward — quadratic in the
 * sequence length. Halving recursively costs O(T·B·F) per level, O(T log T · B·F) in all. Without
 * a graph to record, slices are taken directly.
 */
function splitSteps(x: Tensor, steps: number, rows: number): Tensor[] {
  if (!x.requiresGrad) return Array.from({ length: steps }, (_, t) => narrow(x, 0, t * rows, rows));
  const out: Tensor[] = [];
  const split = (part: Tensor, n: number): void => {
    if (n === 1) {
      out.push(part);
      return;
    }
    const half = n >> 1;
    split(narrow(part, 0, 0, half * rows), half);
    split(narrow(part, 0, half * rows, (n - half) * rows), n - half);
  };
  split(x, steps);
  return out;
}

/**
 * The shared machinery of RNN, LSTM and GRU. Per layer k, PyTorch's parameters, registered in its
 * order: weight_ih_l{k} [G·H, in], weight_hh_l{k} [G·H, H], bias_ih_l{k} [G·H], bias_hh_l{k} [G·H],
 * with G gates stacked along the first axis (LSTM: i, f, g, o; GRU: r, z, n), all U(±1/√H).
 */
export abstract class RecurrentBase<S extends RNNState> extends Module {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly dtype: DType;
  readonly layers: readonly RecurrentLayerParams[];
  protected readonly gates: number;
  protected readonly name: string;

  constructor(readonly mode: RecurrentMode, readonly inputSize: number, readonly hiddenSize: number, rng: Rng, options: RecurrentOptions) {
    super();
    this.name = NAMES[mode];
    this.gates = GATES[mode];
    this.numLayers = options.numLayers ?? 1;
    this.bias = options.bias ?? true;
    this.dtype = options.dtype ?? 'float32';
    checkPositiveInt(this.name, 'inputSize', inputSize);
    checkPositiveInt(this.name, 'hiddenSize', hiddenSize);
    checkPositiveInt(this.name, 'numLayers', this.numLayers);
    // PyTorch's reset_parameters: every parameter U(−1/√H, 1/√H), drawn in registration order.
    const bound = 1 / Math.sqrt(hiddenSize);
    const gh = this.gates * hiddenSize;
    const make = (name: string, shape: Shape): Tensor => this.registerParameter(name, withDType(uniformTensor(shape, bound, rng), this.dtype));
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
    let hs: Tensor[] = [];
    const hN: Tensor[] = [];
    const cN: Tensor[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const p = this.layers[k];
      // W_ih·x + b_ih for every step of this layer in one matrix product; only the recurrent
      // half W_hh·h + b_hh has to wait for the previous step.
      const inputProj = splitSteps(linear(seq, p.weightIh, p.biasIh), T, B);
      let h = this.layerState(h0, k, B);
      let c = c0 ? this.layerState(c0, k, B) : null;
      hs = [];
      for (let t = 0; t < T; t++) {
        const gi = inputProj[t];
        const gh = linear(h, p.weightHh, p.biasHh);
        if (this.mode === 'lstm') [h, c] = lstmStep(gi, gh, c!, H);
        else if (this.mode === 'gru') h = gruStep(gi, gh, h, H);
        else h = this.mode === 'rnn_relu' ? relu(add(gi, gh)) : tanh(add(gi, gh));
        hs.push(h);
      }
      hN.push(h);
      if (c) cN.push(c);
      if (k + 1 < this.numLayers) seq = concat(hs, 0);
    }
    const output = concat(hs.map((ht) => unsqueeze(ht, 1)), 1);
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

/**
 * PyTorch's LSTM step, gates stacked i, f, g, o:
 *   i = σ(W_ii x + b_ii + W_hi h + b_hi)    f = σ(W_if x + b_if + W_hf h + b_hf)
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg) o = σ(W_io x + b_io + W_ho h + b_ho)
 *   c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')
 * `gi` and `gh` are the input and recurrent projections [B, 4H] (biases included).
 */
function lstmStep(gi: Tensor, gh: Tensor, c: Tensor, H: number): [Tensor, Tensor] {
  const gates = add(gi, gh);
  const i = sigmoid(narrow(gates, 1, 0, H));
  const f = sigmoid(narrow(gates, 1, H, H));
  const g = tanh(narrow(gates, 1, 2 * H, H));
  const o = sigmoid(narrow(gates, 1, 3 * H, H));
  const cNext = add(mul(f, c), mul(i, g));
  return [mul(o, tanh(cNext)), cNext];
}

/**
 * PyTorch's GRU step, gates stacked r, z, n:
 *   r = σ(W_ir x + b_ir + W_hr h + b_hr)    z = σ(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
 *   h' = (1 − z) ⊙ n + z ⊙ h
 * Note b_hn sits inside the reset gate's product, so the two projections cannot be summed
 * before splitting as in the LSTM. h' is computed as n + z ⊙ (h − n), the same value in one op less.
 */
function gruStep(gi: Tensor, gh: Tensor, h: Tensor, H: number): Tensor {
  const r = sigmoid(add(narrow(gi, 1, 0, H), narrow(gh, 1, 0, H)));
  const z = sigmoid(add(narrow(gi, 1, H, H), narrow(gh, 1, H, H)));
  const n = tanh(add(narrow(gi, 1, 2 * H, H), mul(r, narrow(gh, 1, 2 * H, H))));
  return add(n, mul(z, sub(h, n)));
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

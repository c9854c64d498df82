/**
 * Attention and transformer layers: LayerNorm, MultiHeadAttention, a pre-LayerNorm
 * TransformerBlock, and positional encodings (a learned table, and Vaswani et al.'s fixed
 * sinusoidal one). Names, layouts and initialisation follow PyTorch (torch.nn.LayerNorm,
 * torch.nn.MultiheadAttention with batch_first=True), so state dicts exchange by name.
 *
 * Each layer also has `forwardWith(params, x, …)`: the same computation with its parameters looked
 * up by state-dict name in a given map, as torch.func.functional_call does. `forward` is
 * `forwardWith` over the module's own parameters (tests gradient-check with random float64
 * stand-ins for the parameters this way).
 *
 * Every layer takes `dtype` and `backend` (LayerPlacement) and passes them to its children.
 */

import { ones, tensor, zeros, type CreateOptions } from '../ops/create.js';
import { dropout } from '../ops/dropout.js';
import { causalSoftmax, gelu, softmax } from '../ops/activations.js';
import { add, mul, where } from '../ops/elementwise.js';
import { narrow, permute, reshape } from '../ops/layout.js';
import { linear, matmulT } from '../ops/matmul.js';
import { checkCompatible, record } from '../ops/record.js';
import { allocArray, type DType } from '../tensor/dtype.js';
import type { Backend } from '../backend/backend.js';
import { resolveBackend } from '../backend/default.js';
import { formatShape, shapeSize } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';
import { checkedStd, normalTensor, xavierUniform } from './init.js';
import { GELU, Linear, Sequential } from './layers.js';
import { Module, placed, type LayerPlacement } from './module.js';

/** Parameters by state-dict name (relative to the module they are given to). */
export type ParamMap = ReadonlyMap<string, Tensor>;

/** Per [batch, seq] position, row-major: true / 1 marks padding, which is never attended to as a key. */
export type PaddingMask = ArrayLike<boolean | number>;

function ownParams(m: Module): ParamMap {
  return new Map(m.namedParameters());
}

function param(params: ParamMap, name: string, owner: string): Tensor {
  const t = params.get(name);
  if (!t) throw new Error(`${owner}: parameter '${name}' is missing from the given parameters (${[...params.keys()].join(', ') || 'none'})`);
  return t;
}

/** The entries under `prefix.`, with the prefix removed: a child's view of its parent's map. */
function scope(params: ParamMap, prefix: string): ParamMap {
  const out = new Map<string, Tensor>();
  for (const [k, t] of params) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), t);
  return out;
}

function checkPositiveInt(owner: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${owner}: ${name} must be a positive integer, got ${v}`);
}

function checkProbability(owner: string, p: number): void {
  if (!(p >= 0 && p < 1)) throw new RangeError(`${owner}: dropout must be in [0, 1), got ${p}`);
}

/** Just the placement fields of a layer's options, to hand to its children. */
function placement(options: LayerPlacement): LayerPlacement {
  return { dtype: options.dtype, backend: options.backend };
}

/** The dtype (default float32) and the backend (checked to hold it) that `who` creates tensors in. */
function resolved(options: LayerPlacement, who: string): { dtype: DType; backend: Backend } {
  const dtype = options.dtype ?? 'float32';
  return { dtype, backend: resolveBackend(dtype, options.backend, who) };
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

/**
 * y = (x − μ)/√(σ² + eps)·γ + β over the last axis, σ² the biased variance (as torch), as one
 * node over the fused Backend primitive (shared/backend/fused-norm.ts); γ and β have `dim` entries
 * (any shape of that size, [dim] in practice).
 * Numerical trap: σ² is the mean of squared deviations from μ (two passes), not E[x²] − μ², which
 * cancels catastrophically for rows with a large mean and can even come out negative (→ NaN in
 * the square root). eps sits inside the root, so a constant row gives 0, not 0/0.
 *
 * Backward (x̂ = (x − μ)·rstd recomputed from the saved per-row μ and rstd = 1/√(σ² + eps)):
 *   gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = gy·γ;  gγ = Σ_rows gy·x̂;  gβ = Σ_rows gy.
 * The two subtracted means are the gradient paths through μ and σ².
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  if (x.rank < 1) throw new RangeError(`layerNorm: input must have at least one axis, got ${formatShape(x.shape)}`);
  const cols = x.shape[x.rank - 1];
  const rows = shapeSize(x.shape.slice(0, -1));
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p && p.size !== cols) throw new RangeError(`layerNorm: ${name} ${formatShape(p.shape)} must have ${cols} entries for input ${formatShape(x.shape)}`);
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  checkCompatible('layerNorm', inputs);
  const backend = x.backend;
  const wb = weight ? weight.buffer : null;
  const { y, mean, rstd } = backend.layerNorm(x.buffer, wb, bias ? bias.buffer : null, rows, cols, eps);
  const wIndex = weight ? 1 : -1;
  const bIndex = bias ? inputs.length - 1 : -1;
  return record('layerNorm', inputs, y, x.shape, (g, needed) => {
    const r = backend.layerNormBackward(g.buffer, x.buffer, mean, rstd, wb, rows, cols, {
      weight: wIndex >= 0 && needed[wIndex],
      bias: bIndex >= 0 && needed[bIndex],
    });
    const grads: Array<Tensor | null> = [needed[0] ? new Tensor(backend, r.gx, x.shape) : null];
    if (weight) grads.push(r.gWeight ? new Tensor(backend, r.gWeight, weight.shape) : null);
    if (bias) grads.push(r.gBias ? new Tensor(backend, r.gBias, bias.shape) : null);
    return grads;
  });
}

export interface LayerNormOptions extends LayerPlacement {
  readonly eps?: number;
  readonly elementwiseAffine?: boolean;
}

/** torch.nn.LayerNorm(dim): `weight` [dim] = 1 and `bias` [dim] = 0 when elementwiseAffine. */
export class LayerNorm extends Module {
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(readonly dim: number, options: LayerNormOptions = {}) {
    super();
    checkPositiveInt('LayerNorm', 'dim', dim);
    this.eps = options.eps ?? 1e-5;
    if (!(this.eps >= 0 && Number.isFinite(this.eps))) throw new RangeError(`LayerNorm: eps must be a finite number >= 0, got ${this.eps}`);
    this.elementwiseAffine = options.elementwiseAffine ?? true;
    const at = resolved(options, 'LayerNorm');
    this.weight = this.elementwiseAffine ? this.registerParameter('weight', ones([dim], at)) : null;
    this.bias = this.elementwiseAffine ? this.registerParameter('bias', zeros([dim], at)) : null;
  }

  forward(x: Tensor): Tensor {
    return this.forwardWith(ownParams(this), x);
  }

  forwardWith(params: ParamMap, x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.dim) throw new RangeError(`LayerNorm(${this.dim}): input ${formatShape(x.shape)} must have last dimension ${this.dim}`);
    const w = this.elementwiseAffine ? param(params, 'weight', 'LayerNorm') : null;
    const b = this.elementwiseAffine ? param(params, 'bias', 'LayerNorm') : null;
    return layerNorm(x, w, b, this.eps);
  }
}

// ---------------------------------------------------------------------------------------------
// Multi-head attention

/**
 * The score given to masked (query, key) pairs. Numerical trap: −∞ is the textbook value, but a
 * row with every key masked then has max = −∞ and softmax computes (−∞) − (−∞) = NaN, which
 * spreads through the output and every gradient. A finite −1e9 still underflows exp() to exactly 0
 * next to any real score (so masked keys get exactly zero weight), and a fully masked row becomes
 * a harmless uniform row, which `attentionMasks` then zeroes. Masks are applied with `where`
 * (replacing the score) rather than by adding, so no real score is rounded away and masked scores
 * get no gradient.
 */
const MASKED_SCORE = -1e9;

export interface MultiHeadAttentionOptions extends LayerPlacement {
  /** Dropout on the attention probabilities in training. */
  readonly dropout?: number;
  /** in_proj_bias and out_proj.bias (default true). */
  readonly bias?: boolean;
}

export interface AttendOptions {
  /** Query t attends to keys 0..t only. */
  readonly causal?: boolean;
  /** [batch, seq] flattened row-major; true / 1 = padding (ignored as a key). */
  readonly paddingMask?: PaddingMask;
}

interface Masks {
  /** 1 where query i may attend to key j: [seq, seq] (causal only) or [batch, 1, seq, seq]. */
  readonly keep: Tensor | null;
  /** [batch, 1, seq, 1]: 0 for queries that have no key left at all; null when every query has one. */
  readonly liveRows: Tensor | null;
}

function attentionMasks(batch: number, seq: number, options: AttendOptions, like: Tensor): Masks {
  const causal = options.causal ?? false;
  const padding = options.paddingMask;
  const create = { dtype: like.dtype, backend: like.backend };
  if (!padding) {
    if (!causal) return { keep: null, liveRows: null };
    const keep = new Float64Array(seq * seq);
    for (let i = 0; i < seq; i++) for (let j = 0; j <= i; j++) keep[i * seq + j] = 1;
    return { keep: tensor(keep, [seq, seq], create), liveRows: null };
  }
  if (padding.length !== batch * seq) throw new RangeError(`attention: paddingMask has ${padding.length} entries, input [batch ${batch}, seq ${seq}] needs ${batch * seq}`);
  const isPad = new Uint8Array(batch * seq);
  for (let i = 0; i < padding.length; i++) {
    const v = padding[i];
    if (typeof v === 'number' && v !== 0 && v !== 1) throw new RangeError(`attention: paddingMask entry ${i} is ${v}; use 1 / true for padding, 0 / false otherwise`);
    isPad[i] = v ? 1 : 0;
  }
  const keep = new Float64Array(batch * seq * seq);
  const live = new Float64Array(batch * seq);
  let dead = false;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seq; i++) {
      const last = causal ? i : seq - 1;
      let any = 0;
      for (let j = 0; j <= last; j++) {
        if (!isPad[b * seq + j]) {
          keep[(b * seq + i) * seq + j] = 1;
          any = 1;
        }
      }
      live[b * seq + i] = any;
      if (!any) dead = true;
    }
  }
  return {
    keep: tensor(keep, [batch, 1, seq, seq], create),
    liveRows: dead ? tensor(live, [batch, 1, seq, 1], create) : null,
  };
}

/**
 * torch.nn.MultiheadAttention(dModel, numHeads, batch_first=True) used as self-attention:
 * `in_proj_weight` [3d, d] (rows: Q, K, V projections), `in_proj_bias` [3d], `out_proj` a Linear(d, d).
 * Per head h (dₕ = d/numHeads): softmax(QₕKₕᵀ/√dₕ, masked)·Vₕ; heads are concatenated and projected.
 */
export class MultiHeadAttention extends Module {
  readonly headDim: number;
  readonly dropout: number;
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor | null;
  readonly outProj: Linear;
  private readonly hasBias: boolean;
  private readonly rng: Rng;

  constructor(readonly dModel: number, readonly numHeads: number, rng: Rng, options: MultiHeadAttentionOptions = {}) {
    super();
    checkPositiveInt('MultiHeadAttention', 'dModel', dModel);
    checkPositiveInt('MultiHeadAttention', 'numHeads', numHeads);
    if (dModel % numHeads !== 0) throw new RangeError(`MultiHeadAttention: dModel ${dModel} is not divisible by numHeads ${numHeads}`);
    this.headDim = dModel / numHeads;
    this.dropout = options.dropout ?? 0;
    checkProbability('MultiHeadAttention', this.dropout);
    this.hasBias = options.bias ?? true;
    // torch builds out_proj (default Linear init) before _reset_parameters draws in_proj_weight
    // (xavier_uniform over the whole [3d, d], fanIn d, fanOut 3d) and zeroes both biases; the
    // draws happen in that order here too. Names are registered in torch's order.
    const at = placement(options);
    const outProj = new Linear(dModel, dModel, rng, { bias: this.hasBias, ...at });
    this.inProjWeight = this.registerParameter('in_proj_weight', placed(xavierUniform([3 * dModel, dModel], rng), at, 'MultiHeadAttention'));
    this.inProjBias = this.hasBias ? this.registerParameter('in_proj_bias', zeros([3 * dModel], resolved(at, 'MultiHeadAttention'))) : null;
    this.outProj = this.registerModule('out_proj', outProj);
    if (outProj.bias) outProj.bias.backend.write(outProj.bias.buffer, allocArray(outProj.bias.dtype, outProj.bias.size));
    // Forked always (not only when dropout > 0), so later layers' initialisation from `rng` does
    // not depend on the dropout setting.
    this.rng = this.registerRandomStream(rng.fork());
  }

  /** Unmasked self-attention. */
  forward(x: Tensor): Tensor {
    return this.attend(x);
  }

  /** Self-attention over x [batch, seq, d] → [batch, seq, d]; dropout on the probabilities when training. */
  attend(x: Tensor, options: AttendOptions = {}): Tensor {
    return this.forwardWith(ownParams(this), x, options);
  }

  /** The attention probabilities [batch, heads, seq(query), seq(key)] after masking, before dropout. */
  attentionWeights(x: Tensor, options: AttendOptions = {}): Tensor {
    return this.probabilities(ownParams(this), x, options).probs;
  }

  forwardWith(params: ParamMap, x: Tensor, options: AttendOptions = {}): Tensor {
    const { probs, v } = this.probabilities(params, x, options);
    const [batch, seq] = x.shape;
    const p = this.training && this.dropout > 0 ? dropout(probs, this.dropout, this.rng) : probs;
    const heads = matmulT(p, v, false, false); // [batch, heads, seq, dₕ]
    const merged = reshape(permute(heads, [0, 2, 1, 3]), [batch, seq, this.dModel]);
    const bOut = this.hasBias ? param(params, 'out_proj.bias', 'MultiHeadAttention') : null;
    return linear(merged, param(params, 'out_proj.weight', 'MultiHeadAttention'), bOut);
  }

  private probabilities(params: ParamMap, x: Tensor, options: AttendOptions): { probs: Tensor; v: Tensor } {
    if (x.rank !== 3 || x.shape[2] !== this.dModel) {
      throw new RangeError(`MultiHeadAttention(${this.dModel}): input must be [batch, seq, ${this.dModel}], got ${formatShape(x.shape)}`);
    }
    const [batch, seq] = x.shape;
    const d = this.dModel;
    const bIn = this.hasBias ? param(params, 'in_proj_bias', 'MultiHeadAttention') : null;
    const wIn = param(params, 'in_proj_weight', 'MultiHeadAttention');
    // Rows [0, d) of in_proj are Q, [d, 2d) K, [2d, 3d) V. Each projection is its own product with
    // its rows of the weight (narrowing the small weight, not the [batch, seq, 3d] activations:
    // their backward would pad three [batch, seq, 3d] gradients with zeros and add them), then
    // splits into heads as [batch, heads, seq, dₕ].
    const split = (part: number): Tensor => {
      const projected = linear(x, narrow(wIn, 0, part * d, d), bIn ? narrow(bIn, 0, part * d, d) : null); // [batch, seq, d]
      return permute(reshape(projected, [batch, seq, this.numHeads, this.headDim]), [0, 2, 1, 3]);
    };
    const q = split(0);
    const k = split(1);
    const v = split(2);
    // Scaling by 1/√dₕ keeps the logits' variance near 1 whatever the head width, so softmax does not saturate.
    let scores = mul(matmulT(q, k, false, true), 1 / Math.sqrt(this.headDim)); // [batch, heads, seq, seq]
    // The plain causal mask is fused into the softmax: keys j > i get probability exactly 0 and no
    // gradient, and their scores are never read (the same as MASKED_SCORE up to rounding: exp of it
    // underflows to exactly 0 next to any real score). Every query keeps at least key 0, so no row
    // is fully masked. Padding masks take the general `where` path below.
    if ((options.causal ?? false) && !options.paddingMask) return { probs: causalSoftmax(scores), v };
    const masks = attentionMasks(batch, seq, options, x);
    if (masks.keep) scores = where(masks.keep, scores, MASKED_SCORE);
    let probs = softmax(scores, -1);
    // A query with every key masked would otherwise average all values uniformly (padding included).
    if (masks.liveRows) probs = mul(probs, masks.liveRows);
    return { probs, v };
  }
}

// ---------------------------------------------------------------------------------------------
// Transformer block

export interface TransformerBlockOptions extends LayerPlacement {
  /** Hidden width of the MLP as a multiple of dModel (dModel·mlpRatio must be an integer). */
  readonly mlpRatio?: number;
  /** Attention-probability dropout, and dropout on each branch before its residual add. */
  readonly dropout?: number;
  readonly causal?: boolean;
}

export interface BlockForwardOptions {
  readonly paddingMask?: PaddingMask;
  /** Overrides the block's `causal` for this call. */
  readonly causal?: boolean;
}

/**
 * Pre-LayerNorm transformer block (GPT-2 style):
 *   h = x + drop(attn(ln1(x)));  y = h + drop(mlp(ln2(h))),  mlp = Linear(d, r·d) → GELU (erf) → Linear(r·d, d).
 * Children: `ln1`, `attn`, `ln2`, `mlp` (a Sequential: `mlp.0`, `mlp.1` GELU, `mlp.2`).
 */
export class TransformerBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln2: LayerNorm;
  readonly mlp: Sequential;
  readonly causal: boolean;
  readonly dropout: number;
  private readonly rng: Rng;

  constructor(readonly dModel: number, readonly numHeads: number, rng: Rng, options: TransformerBlockOptions = {}) {
    super();
    const ratio = options.mlpRatio ?? 4;
    const hidden = dModel * ratio;
    if (!Number.isInteger(hidden) || hidden <= 0) throw new RangeError(`TransformerBlock: dModel ${dModel} × mlpRatio ${ratio} = ${hidden} is not a positive integer`);
    this.dropout = options.dropout ?? 0;
    checkProbability('TransformerBlock', this.dropout);
    this.causal = options.causal ?? true;
    const at = placement(options);
    this.ln1 = this.registerModule('ln1', new LayerNorm(dModel, at));
    this.attn = this.registerModule('attn', new MultiHeadAttention(dModel, numHeads, rng, { dropout: this.dropout, ...at }));
    this.ln2 = this.registerModule('ln2', new LayerNorm(dModel, at));
    this.mlp = this.registerModule('mlp', new Sequential(new Linear(dModel, hidden, rng, at), new GELU(), new Linear(hidden, dModel, rng, at)));
    this.rng = this.registerRandomStream(rng.fork());
  }

  forward(x: Tensor, options: BlockForwardOptions = {}): Tensor {
    return this.forwardWith(ownParams(this), x, options);
  }

  forwardWith(params: ParamMap, x: Tensor, options: BlockForwardOptions = {}): Tensor {
    const attnOptions: AttendOptions = { causal: options.causal ?? this.causal, paddingMask: options.paddingMask };
    const a = this.attn.forwardWith(scope(params, 'attn'), this.ln1.forwardWith(scope(params, 'ln1'), x), attnOptions);
    const h = add(x, this.drop(a));
    const p = (name: string): Tensor => param(params, name, 'TransformerBlock');
    const m = linear(gelu(linear(this.ln2.forwardWith(scope(params, 'ln2'), h), p('mlp.0.weight'), p('mlp.0.bias'))), p('mlp.2.weight'), p('mlp.2.bias'));
    return add(h, this.drop(m));
  }

  private drop(t: Tensor): Tensor {
    return this.training && this.dropout > 0 ? dropout(t, this.dropout, this.rng) : t;
  }
}

// ---------------------------------------------------------------------------------------------
// Positional encodings

/**
 * x + table[0:seq] for x [..., seq, d] and a table [maxLen, d] (broadcast over the batch). The
 * table's gradient lands in its first `seq` rows.
 */
export function addPositions(x: Tensor, table: Tensor): Tensor {
  if (table.rank !== 2) throw new RangeError(`addPositions: table must be [maxLen, d], got ${formatShape(table.shape)}`);
  const [maxLen, d] = table.shape;
  if (x.rank < 2 || x.shape[x.rank - 1] !== d) throw new RangeError(`addPositions: input ${formatShape(x.shape)} must be [..., seq, ${d}] for a table ${formatShape(table.shape)}`);
  const seq = x.shape[x.rank - 2];
  if (seq > maxLen) throw new RangeError(`addPositions: sequence length ${seq} exceeds maxLen ${maxLen}`);
  return add(x, seq === maxLen ? table : narrow(table, 0, 0, seq));
}

export interface PositionalEmbeddingOptions extends LayerPlacement {
  /** Standard deviation of the N(0, std²) init; default 0.02 as GPT-2. */
  readonly std?: number;
}

/** A learned position table `weight` [maxLen, d], added to [batch, seq, d] inputs. */
export class PositionalEmbedding extends Module {
  readonly weight: Tensor;

  constructor(readonly maxLen: number, readonly dim: number, rng: Rng, options: PositionalEmbeddingOptions = {}) {
    super();
    checkPositiveInt('PositionalEmbedding', 'maxLen', maxLen);
    checkPositiveInt('PositionalEmbedding', 'dim', dim);
    const std = checkedStd('PositionalEmbedding', options.std ?? 0.02);
    this.weight = this.registerParameter('weight', placed(normalTensor([maxLen, dim], std, rng), options, 'PositionalEmbedding'));
  }

  forward(x: Tensor): Tensor {
    return this.forwardWith(ownParams(this), x);
  }

  forwardWith(params: ParamMap, x: Tensor): Tensor {
    return addPositions(x, param(params, 'weight', 'PositionalEmbedding'));
  }
}

/**
 * The fixed table of Vaswani et al. (2017), [maxLen, d], no gradient:
 *   PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
 * Computed in float64 and rounded once to the requested dtype (an odd d ends with a sine column).
 * Add it with `addPositions`.
 */
export function sinusoidalPositions(maxLen: number, dim: number, options: Pick<CreateOptions, 'dtype' | 'backend'> = {}): Tensor {
  checkPositiveInt('sinusoidalPositions', 'maxLen', maxLen);
  checkPositiveInt('sinusoidalPositions', 'dim', dim);
  const table = new Float64Array(maxLen * dim);
  for (let pos = 0; pos < maxLen; pos++) {
    for (let c = 0; c < dim; c += 2) {
      const angle = pos / Math.pow(10000, c / dim);
      table[pos * dim + c] = Math.sin(angle);
      if (c + 1 < dim) table[pos * dim + c + 1] = Math.cos(angle);
    }
  }
  return tensor(table, [maxLen, dim], { dtype: options.dtype ?? 'float32', backend: options.backend });
}

/**
 * The fixed sinusoidal table as a module (no parameters, no state-dict entry), for model specs. The
 * table is built in the placement's dtype on its backend, and rebuilt for an input of another dtype
 * or backend (a model moved by `Module.to`): it is a function of (maxLen, dim) only.
 */
export class SinusoidalPositions extends Module {
  private table: Tensor;
  constructor(readonly maxLen: number, readonly dim: number, options: LayerPlacement = {}) {
    super();
    this.table = sinusoidalPositions(maxLen, dim, resolved(options, 'SinusoidalPositions'));
  }
  forward(x: Tensor): Tensor {
    if (this.table.backend !== x.backend || this.table.dtype !== x.dtype) this.table = sinusoidalPositions(this.maxLen, this.dim, { dtype: x.dtype, backend: x.backend });
    return addPositions(x, this.table);
  }
}

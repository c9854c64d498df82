/**
 * Declarative model specs: a model is a JSON object (an input shape and a list of layers) that the
 * CLI reads by preset name or file, and that the coordinator sends to its workers, so every
 * process builds the same model. `buildModel` infers each layer's input size from the shapes
 * before it and fails before training, naming the layer and the shapes, when they do not fit.
 */

import { z } from 'zod';
import { formatShape, shapeSize } from '../tensor/shape.js';
import type { Rng } from '../util/random.js';
import { windowSpec } from '../backend/conv-spec.js';
import { AvgPool2d, Conv2d, Dropout, Flatten, GELU, LeakyReLU, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh } from './layers.js';
import { BatchNorm1d, BatchNorm2d } from './normalization.js';
import { Embedding, GRU, LSTM, RNN } from './recurrent.js';
import { LayerNorm, PositionalEmbedding, SinusoidalPositions, TransformerBlock } from './attention.js';
import type { Module } from './module.js';

const positiveInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const pairOf = (t: z.ZodNumber) => z.union([t, z.tuple([t, t])]);

export const layerSpecSchema = z.discriminatedUnion('type', [
  /** `out` defaults to the dataset's number of classes (the vocabulary, for language models). */
  z.object({ type: z.literal('linear'), out: positiveInt.optional(), bias: z.boolean().optional(), init: z.enum(['default', 'kaiming', 'xavier']).optional() }).strict(),
  /** Token ids [T] → vectors [T, dim]; `num` defaults to the dataset's vocabulary size. */
  z.object({ type: z.literal('embedding'), dim: positiveInt, num: positiveInt.optional(), std: z.number().nonnegative().optional() }).strict(),
  z.object({ type: z.enum(['rnn', 'lstm', 'gru']), hidden: positiveInt, layers: positiveInt.optional() }).strict(),
  z.object({ type: z.literal('positional'), kind: z.enum(['learned', 'sinusoidal']), std: z.number().nonnegative().optional() }).strict(),
  z.object({ type: z.literal('layernorm'), eps: z.number().positive().optional() }).strict(),
  z
    .object({ type: z.literal('transformer'), heads: positiveInt, mlpRatio: positiveInt.optional(), dropout: z.number().min(0).lt(1).optional(), causal: z.boolean().optional() })
    .strict(),
  z.object({ type: z.literal('flatten') }).strict(),
  z
    .object({
      type: z.literal('conv2d'),
      out: positiveInt,
      kernel: pairOf(positiveInt),
      stride: pairOf(positiveInt).optional(),
      padding: pairOf(nonNegInt).optional(),
      dilation: pairOf(positiveInt).optional(),
      bias: z.boolean().optional(),
    })
    .strict(),
  z.object({ type: z.literal('maxpool2d'), kernel: pairOf(positiveInt), stride: pairOf(positiveInt).optional(), padding: pairOf(nonNegInt).optional() }).strict(),
  z.object({ type: z.literal('avgpool2d'), kernel: pairOf(positiveInt), stride: pairOf(positiveInt).optional(), padding: pairOf(nonNegInt).optional() }).strict(),
  z.object({ type: z.literal('batchnorm1d'), eps: z.number().positive().optional(), momentum: z.number().min(0).max(1).optional() }).strict(),
  z.object({ type: z.literal('batchnorm2d'), eps: z.number().positive().optional(), momentum: z.number().min(0).max(1).optional() }).strict(),
  z.object({ type: z.literal('relu') }).strict(),
  z.object({ type: z.literal('leaky_relu'), negativeSlope: z.number().optional() }).strict(),
  z.object({ type: z.literal('gelu'), approximate: z.enum(['none', 'tanh']).optional() }).strict(),
  z.object({ type: z.literal('sigmoid') }).strict(),
  z.object({ type: z.literal('tanh') }).strict(),
  z.object({ type: z.literal('dropout'), p: z.number().min(0).lt(1) }).strict(),
]);

export const modelSpecSchema = z
  .object({
    name: z.string().min(1),
    /** Shape of one sample, without the batch dimension. */
    input: z.array(positiveInt).min(1),
    layers: z.array(layerSpecSchema).min(1),
    /** Suggested training hyper-parameters; CLI flags override them. */
    defaults: z
      .object({
        optimizer: z.enum(['sgd', 'adam', 'adamw']).optional(),
        lr: z.number().positive().optional(),
        batchSize: positiveInt.optional(),
        weightDecay: z.number().min(0).optional(),
        clipNorm: z.number().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type LayerSpec = z.infer<typeof layerSpecSchema>;
export type ModelSpec = z.infer<typeof modelSpecSchema>;

export class ModelSpecError extends Error {}

/** Validates unknown JSON as a model spec; the error names the offending path. */
export function parseModelSpec(json: unknown, source = 'model spec'): ModelSpec {
  const result = modelSpecSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ModelSpecError(`${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

/** Builds the layer for `spec` given the per-sample input shape; returns it and its output shape. */
/** What the data tells the builder: sizes a spec may leave out. */
export interface BuildContext {
  /** The dataset's number of classes (vocabulary size for text). */
  readonly numClasses?: number;
}

interface LayerContext extends BuildContext {
  /** Set once an embedding turned token ids into a sequence of vectors. */
  sequence: boolean;
}

function buildLayer(spec: LayerSpec, input: readonly number[], rng: Rng, where: string, context: LayerContext): { module: Module; output: number[] } {
  switch (spec.type) {
    case 'linear': {
      // On a flat input, or on each position of a sequence [T, features].
      if (input.length !== 1 && !(input.length === 2 && context.sequence)) {
        throw new ModelSpecError(`${where} (linear) needs a flat input, got ${formatShape(input)}; add a flatten layer before it`);
      }
      const out = spec.out ?? context.numClasses;
      if (out === undefined) throw new ModelSpecError(`${where} (linear) has no 'out' and the dataset gives no number of classes`);
      return { module: new Linear(input[input.length - 1], out, rng, { bias: spec.bias, init: spec.init }), output: [...input.slice(0, -1), out] };
    }
    case 'embedding': {
      if (input.length !== 1) throw new ModelSpecError(`${where} (embedding) needs token ids [time], got ${formatShape(input)}`);
      const num = spec.num ?? context.numClasses;
      if (num === undefined) throw new ModelSpecError(`${where} (embedding) has no 'num' and the dataset gives no vocabulary size`);
      context.sequence = true;
      return { module: new Embedding(num, spec.dim, rng, { std: spec.std }), output: [input[0], spec.dim] };
    }
    case 'rnn':
    case 'lstm':
    case 'gru': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (${spec.type}) needs a sequence [time, features], got ${formatShape(input)}`);
      const Cell = spec.type === 'lstm' ? LSTM : spec.type === 'gru' ? GRU : RNN;
      return { module: new Cell(input[1], spec.hidden, rng, { numLayers: spec.layers ?? 1 }), output: [input[0], spec.hidden] };
    }
    case 'positional': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (positional) needs a sequence [time, features], got ${formatShape(input)}`);
      const module = spec.kind === 'learned' ? new PositionalEmbedding(input[0], input[1], rng, { std: spec.std }) : new SinusoidalPositions(input[0], input[1]);
      return { module, output: [...input] };
    }
    case 'layernorm':
      return { module: new LayerNorm(input[input.length - 1], { eps: spec.eps }), output: [...input] };
    case 'transformer': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (transformer) needs a sequence [time, features], got ${formatShape(input)}`);
      if (input[1] % spec.heads !== 0) throw new ModelSpecError(`${where} (transformer): ${input[1]} features do not split into ${spec.heads} heads`);
      const module = new TransformerBlock(input[1], spec.heads, rng, { mlpRatio: spec.mlpRatio, dropout: spec.dropout, causal: spec.causal ?? true });
      return { module, output: [...input] };
    }
    case 'flatten':
      return { module: new Flatten(1), output: [shapeSize(input)] };
    case 'batchnorm1d':
      if (input.length !== 1 && input.length !== 2) throw new ModelSpecError(`${where} (batchnorm1d) needs a [features] or [channels, length] input, got ${formatShape(input)}`);
      return { module: new BatchNorm1d(input[0], { eps: spec.eps, momentum: spec.momentum }), output: [...input] };
    case 'batchnorm2d':
      if (input.length !== 3) throw new ModelSpecError(`${where} (batchnorm2d) needs a [channels, height, width] input, got ${formatShape(input)}`);
      return { module: new BatchNorm2d(input[0], { eps: spec.eps, momentum: spec.momentum }), output: [...input] };
    case 'conv2d':
    case 'avgpool2d':
    case 'maxpool2d': {
      if (input.length !== 3) throw new ModelSpecError(`${where} (${spec.type}) needs a [channels, height, width] input, got ${formatShape(input)}`);
      const [c, h, w] = input;
      const two = (p: number | readonly [number, number] | undefined, d: number): [number, number] => (p === undefined ? [d, d] : typeof p === 'number' ? [p, p] : [p[0], p[1]]);
      const kernel = two(spec.kernel, 1);
      let geometry;
      try {
        geometry = windowSpec(h, w, kernel, two(spec.stride, spec.type === 'conv2d' ? 1 : kernel[0]), two(spec.padding, 0), two(spec.type === 'conv2d' ? spec.dilation : undefined, 1));
      } catch (err) {
        throw new ModelSpecError(`${where} (${spec.type}): ${(err as Error).message} (input ${formatShape(input)})`);
      }
      if (spec.type === 'maxpool2d') return { module: new MaxPool2d(spec.kernel, { stride: spec.stride, padding: spec.padding }), output: [c, geometry.oh, geometry.ow] };
      if (spec.type === 'avgpool2d') return { module: new AvgPool2d(spec.kernel, { stride: spec.stride, padding: spec.padding }), output: [c, geometry.oh, geometry.ow] };
      const module = new Conv2d(c, spec.out, spec.kernel, rng, { stride: spec.stride, padding: spec.padding, dilation: spec.dilation, bias: spec.bias });
      return { module, output: [spec.out, geometry.oh, geometry.ow] };
    }
    case 'relu':
      return { module: new ReLU(), output: [...input] };
    case 'leaky_relu':
      return { module: new LeakyReLU(spec.negativeSlope), output: [...input] };
    case 'gelu':
      return { module: new GELU(spec.approximate), output: [...input] };
    case 'sigmoid':
      return { module: new Sigmoid(), output: [...input] };
    case 'tanh':
      return { module: new Tanh(), output: [...input] };
    case 'dropout':
      return { module: new Dropout(spec.p, rng.fork()), output: [...input] };
  }
}

export interface BuiltModel {
  readonly model: Sequential;
  readonly outputShape: readonly number[];
}

/** Tokens per sample a model reads, for sequence models (input [T]); undefined for others. */
export function contextLength(spec: ModelSpec): number | undefined {
  return spec.input.length === 1 && spec.layers[0]?.type === 'embedding' ? spec.input[0] : undefined;
}

export function buildModel(spec: ModelSpec, rng: Rng, buildContext: BuildContext = {}): BuiltModel {
  let shape: number[] = [...spec.input];
  const modules: Module[] = [];
  const context: LayerContext = { ...buildContext, sequence: false };
  spec.layers.forEach((layer, i) => {
    const built = buildLayer(layer, shape, rng, `layer ${i}`, context);
    modules.push(built.module);
    shape = built.output;
  });
  return { model: new Sequential(...modules), outputShape: shape };
}

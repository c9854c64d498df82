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
import { buildUserModel } from './user-model-build.js';
import { ModelSpecError } from './model-error.js';

export { ModelSpecError };

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

/** Suggested training hyper-parameters; CLI flags override them. */
const defaultsSchema = z
  .object({
    optimizer: z.enum(['sgd', 'adam', 'adamw']).optional(),
    lr: z.number().positive().optional(),
    batchSize: positiveInt.optional(),
    weightDecay: z.number().min(0).optional(),
    clipNorm: z.number().positive().optional(),
  })
  .strict();

export const modelSpecSchema = z
  .object({
    name: z.string().min(1),
    /** Shape of one sample, without the batch dimension. */
    input: z.array(positiveInt).min(1),
    layers: z.array(layerSpecSchema).min(1),
    defaults: defaultsSchema.optional(),
  })
  .strict();

/**
 * A model written as code: a module file's `defineModel({ name, input, create })` (user-model.ts),
 * which every process loads itself (`--module FILE`, the same file everywhere, as torchrun runs
 * the same script on every node). This JSON is what travels and is saved: the coordinator sends
 * it in the welcome, checkpoints and run records keep it; the code never travels.
 */
export const moduleSpecSchema = z
  .object({
    name: z.string().min(1),
    input: z.array(positiveInt).min(1),
    /** The module file's base name (for messages: each process resolves its own --module path). */
    module: z.string().min(1),
    /** The model reads token ids [time] (a language model): the dataset gives windows of this length. */
    tokens: z.boolean().optional(),
    defaults: defaultsSchema.optional(),
  })
  .strict();

export type LayerSpec = z.infer<typeof layerSpecSchema>;
/** A model as a list of layers (presets and JSON spec files). */
export type LayerModelSpec = z.infer<typeof modelSpecSchema>;
export type ModuleModelSpec = z.infer<typeof moduleSpecSchema>;
export type ModelSpec = LayerModelSpec | ModuleModelSpec;
export type ModelDefaults = z.infer<typeof defaultsSchema>;

export function isModuleSpec(spec: ModelSpec): spec is ModuleModelSpec {
  return 'module' in spec;
}


/** The keys a layer of `type` may have (for the message naming an unknown one). */
function layerKeys(type: unknown): string[] | undefined {
  for (const option of layerSpecSchema.options) {
    const t = option.shape.type;
    const values: readonly unknown[] = t instanceof z.ZodLiteral ? [...t.values] : t instanceof z.ZodEnum ? t.options : [];
    if (values.includes(type)) return Object.keys(option.shape);
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line for a zod issue: the path, and for unknown keys and layer types what is allowed. */
function describeIssue(issue: z.core.$ZodIssue, json: unknown): string {
  const path = issue.path.join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `'${k}'`).join(', ');
    const unknown = `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
    if (issue.path.length === 0) return `${path}: ${unknown}; allowed keys: ${Object.keys(modelSpecSchema.shape).join(', ')}`;
    if (issue.path.length === 1 && issue.path[0] === 'defaults') return `${path}: ${unknown}; allowed keys: ${Object.keys(defaultsSchema.shape).join(', ')}`;
    if (issue.path.length === 2 && issue.path[0] === 'layers' && isRecord(json) && Array.isArray(json.layers)) {
      const layer: unknown = json.layers[issue.path[1] as number];
      const type = isRecord(layer) ? layer.type : undefined;
      const allowed = layerKeys(type);
      if (allowed) return `layer ${String(issue.path[1])} (${String(type)}): ${unknown}; allowed keys: ${allowed.join(', ')}`;
    }
    return `${path}: ${unknown}`;
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator === 'type' && 'options' in issue && Array.isArray(issue.options)) {
    const layers = isRecord(json) && Array.isArray(json.layers) ? json.layers : [];
    const layer: unknown = layers[issue.path[1] as number];
    const type = isRecord(layer) ? layer.type : undefined;
    return `${path}: unknown layer type ${JSON.stringify(type)}; known types: ${issue.options.join(', ')}`;
  }
  return `${path}: ${issue.message}`;
}

/**
 * Validates unknown JSON as a model spec; the error names the offending path (an unknown key,
 * e.g. PyTorch's `out_channels`, with the keys the layer allows).
 */
export function parseModelSpec(json: unknown, source = 'model spec'): ModelSpec {
  if (isRecord(json) && 'module' in json) {
    const parsed = moduleSpecSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') throw new ModelSpecError(`${source}: ${where}: unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed keys: ${Object.keys(moduleSpecSchema.shape).join(', ')}`);
      throw new ModelSpecError(`${source}: ${where}: ${issue.message}`);
    }
    return parsed.data;
  }
  const result = modelSpecSchema.safeParse(json);
  if (!result.success) {
    // An unknown key explains the rest (`out_channels` for `out` also leaves `out` missing): report it first.
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0];
    throw new ModelSpecError(`${source}: ${describeIssue(issue, json)}`);
  }
  checkWidths(result.data, source);
  return result.data;
}

/** Only the last layer may leave out a linear layer's `out` (it gets the number of classes). */
function checkWidths(spec: LayerModelSpec, source = `model '${spec.name}'`): void {
  spec.layers.forEach((layer, i) => {
    if (layer.type === 'linear' && layer.out === undefined && i !== spec.layers.length - 1) {
      throw new ModelSpecError(
        `${source}: layer ${i} (linear) has no 'out': only the last layer may leave it out (to get the dataset's number of classes); give hidden layers their width`,
      );
    }
  });
}

/** What the data tells the builder: sizes a spec may leave out. */
export interface BuildContext {
  /**
   * The dataset's number of classes (vocabulary size for text). When given, the model's output
   * width must equal it: a narrower or wider last layer fails here, naming it, not at the first step.
   */
  readonly numClasses?: number;
}

interface LayerContext extends BuildContext {
  /** Set once an embedding turned token ids into a sequence of vectors. */
  sequence: boolean;
}

/** A layer whose shapes are checked: its output shape, and how to build it (drawing from `rng`). */
interface PlannedLayer {
  readonly output: number[];
  readonly make: (rng: Rng) => Module;
}

/** Checks `spec` against the per-sample input shape; returns its output shape and its builder. */
function planLayer(spec: LayerSpec, input: readonly number[], where: string, context: LayerContext): PlannedLayer {
  switch (spec.type) {
    case 'linear': {
      // On a flat input, or on each position of a sequence [T, features].
      if (input.length !== 1 && !(input.length === 2 && context.sequence)) {
        throw new ModelSpecError(`${where} (linear) needs a flat input, got ${formatShape(input)}; add a flatten layer before it`);
      }
      const out = spec.out ?? context.numClasses;
      if (out === undefined) throw new ModelSpecError(`${where} (linear) has no 'out' and the dataset gives no number of classes`);
      return { make: (rng) => new Linear(input[input.length - 1], out, rng, { bias: spec.bias, init: spec.init }), output: [...input.slice(0, -1), out] };
    }
    case 'embedding': {
      if (input.length !== 1) throw new ModelSpecError(`${where} (embedding) needs token ids [time], got ${formatShape(input)}`);
      const num = spec.num ?? context.numClasses;
      if (num === undefined) throw new ModelSpecError(`${where} (embedding) has no 'num' and the dataset gives no vocabulary size`);
      context.sequence = true;
      return { make: (rng) => new Embedding(num, spec.dim, rng, { std: spec.std }), output: [input[0], spec.dim] };
    }
    case 'rnn':
    case 'lstm':
    case 'gru': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (${spec.type}) needs a sequence [time, features], got ${formatShape(input)}`);
      const Cell = spec.type === 'lstm' ? LSTM : spec.type === 'gru' ? GRU : RNN;
      return { make: (rng) => new Cell(input[1], spec.hidden, rng, { numLayers: spec.layers ?? 1 }), output: [input[0], spec.hidden] };
    }
    case 'positional': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (positional) needs a sequence [time, features], got ${formatShape(input)}`);
      const make = (rng: Rng): Module => (spec.kind === 'learned' ? new PositionalEmbedding(input[0], input[1], rng, { std: spec.std }) : new SinusoidalPositions(input[0], input[1]));
      return { make, output: [...input] };
    }
    case 'layernorm':
      return { make: () => new LayerNorm(input[input.length - 1], { eps: spec.eps }), output: [...input] };
    case 'transformer': {
      if (input.length !== 2) throw new ModelSpecError(`${where} (transformer) needs a sequence [time, features], got ${formatShape(input)}`);
      if (input[1] % spec.heads !== 0) throw new ModelSpecError(`${where} (transformer): ${input[1]} features do not split into ${spec.heads} heads`);
      return { make: (rng) => new TransformerBlock(input[1], spec.heads, rng, { mlpRatio: spec.mlpRatio, dropout: spec.dropout, causal: spec.causal ?? true }), output: [...input] };
    }
    case 'flatten':
      return { make: () => new Flatten(1), output: [shapeSize(input)] };
    case 'batchnorm1d':
      if (input.length !== 1 && input.length !== 2) throw new ModelSpecError(`${where} (batchnorm1d) needs a [features] or [channels, length] input, got ${formatShape(input)}`);
      return { make: () => new BatchNorm1d(input[0], { eps: spec.eps, momentum: spec.momentum }), output: [...input] };
    case 'batchnorm2d':
      if (input.length !== 3) throw new ModelSpecError(`${where} (batchnorm2d) needs a [channels, height, width] input, got ${formatShape(input)}`);
      return { make: () => new BatchNorm2d(input[0], { eps: spec.eps, momentum: spec.momentum }), output: [...input] };
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
      if (spec.type === 'maxpool2d') return { make: () => new MaxPool2d(spec.kernel, { stride: spec.stride, padding: spec.padding }), output: [c, geometry.oh, geometry.ow] };
      if (spec.type === 'avgpool2d') return { make: () => new AvgPool2d(spec.kernel, { stride: spec.stride, padding: spec.padding }), output: [c, geometry.oh, geometry.ow] };
      const make = (rng: Rng): Module => new Conv2d(c, spec.out, spec.kernel, rng, { stride: spec.stride, padding: spec.padding, dilation: spec.dilation, bias: spec.bias });
      return { make, output: [spec.out, geometry.oh, geometry.ow] };
    }
    case 'relu':
      return { make: () => new ReLU(), output: [...input] };
    case 'leaky_relu':
      return { make: () => new LeakyReLU(spec.negativeSlope), output: [...input] };
    case 'gelu':
      return { make: () => new GELU(spec.approximate), output: [...input] };
    case 'sigmoid':
      return { make: () => new Sigmoid(), output: [...input] };
    case 'tanh':
      return { make: () => new Tanh(), output: [...input] };
    case 'dropout':
      return { make: (rng) => new Dropout(spec.p, rng.fork()), output: [...input] };
  }
}

export interface BuiltModel {
  readonly model: Module;
  readonly outputShape: readonly number[];
}

/** Whether the model reads token ids (a first embedding layer, or a module spec's `tokens`). */
export function readsTokens(spec: ModelSpec): boolean {
  return isModuleSpec(spec) ? spec.tokens === true : spec.layers[0]?.type === 'embedding';
}

/** Tokens per sample a model reads, for sequence models (input [T]); undefined for others. */
export function contextLength(spec: ModelSpec): number | undefined {
  return spec.input.length === 1 && readsTokens(spec) ? spec.input[0] : undefined;
}

/**
 * The side an `images:` dataset's pictures are resized to for this model: S for a square image
 * input [C, S, S], else undefined (the loader's default, 32).
 */
export function imageSize(spec: ModelSpec): number | undefined {
  return spec.input.length === 3 && spec.input[1] === spec.input[2] ? spec.input[1] : undefined;
}

/** The field of a layer that sets its output width, for messages. */
const WIDTH_FIELD: Partial<Record<LayerSpec['type'], string>> = { linear: 'out', conv2d: 'out', embedding: 'dim', rnn: 'hidden', lstm: 'hidden', gru: 'hidden' };

/** The last layer that sets a width, and its field ("layer 5 (linear) 'out'"), for messages; null if none does. */
export function outputWidthLayer(spec: ModelSpec): string | null {
  if (isModuleSpec(spec)) return null;
  for (let i = spec.layers.length - 1; i >= 0; i--) {
    const field = WIDTH_FIELD[spec.layers[i].type];
    if (field) return `layer ${i} (${spec.layers[i].type}) '${field}'`;
  }
  return null;
}

/** `classesUnknown`: sizes that come from the classes are 0 (not known before the data is loaded). */
function planModel(spec: LayerModelSpec, buildContext: BuildContext, classesUnknown = false): { layers: PlannedLayer[]; outputShape: number[] } {
  let shape: number[] = [...spec.input];
  const layers: PlannedLayer[] = [];
  const context: LayerContext = { ...(classesUnknown ? { numClasses: 0 } : buildContext), sequence: false };
  spec.layers.forEach((layer, i) => {
    const planned = planLayer(layer, shape, `layer ${i}`, context);
    layers.push(planned);
    shape = planned.output;
  });
  const classes = classesUnknown ? undefined : buildContext.numClasses;
  if (classes !== undefined && shape[shape.length - 1] !== classes) {
    const width = shape[shape.length - 1];
    const culprit = `${outputWidthLayer(spec) ?? 'its output width'} is ${width}`;
    throw new ModelSpecError(
      `model '${spec.name}': ${culprit} but the dataset has ${classes} classes: the output ${formatShape(shape)} must end in ${classes} (a last linear layer without 'out' gets it)`,
    );
  }
  return { layers, outputShape: shape };
}

/**
 * The per-sample output shape of `spec`, with every layer's shapes checked — the checks
 * `buildModel` makes, without allocating a parameter. Given `numClasses`, the output width must
 * equal it; without, sizes a spec takes from the classes (a last linear layer's `out`) are 0.
 */
export function modelOutputShape(spec: LayerModelSpec, numClasses?: number): readonly number[] {
  checkWidths(spec);
  return planModel(spec, { numClasses }, numClasses === undefined).outputShape;
}

/**
 * Builds `spec`'s model, drawing its initial values from `rng`. A module spec is built by the
 * module file this process loaded (user-model.ts), and its output is checked by one forward pass.
 */
export function buildModel(spec: ModelSpec, rng: Rng, buildContext: BuildContext = {}): BuiltModel {
  if (isModuleSpec(spec)) return buildUserModel(spec, rng, buildContext);
  // Presets are not parsed, so their widths are checked here as well.
  checkWidths(spec);
  const { layers, outputShape } = planModel(spec, buildContext);
  // Built in layer order, so each draws from `rng` exactly as before.
  return { model: new Sequential(...layers.map((l) => l.make(rng))), outputShape };
}

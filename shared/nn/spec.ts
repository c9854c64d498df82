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
import type { Module } from './module.js';

const positiveInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const pairOf = (t: z.ZodNumber) => z.union([t, z.tuple([t, t])]);

export const layerSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('linear'), out: positiveInt, bias: z.boolean().optional(), init: z.enum(['default', 'kaiming', 'xavier']).optional() }).strict(),
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
function buildLayer(spec: LayerSpec, input: readonly number[], rng: Rng, where: string): { module: Module; output: number[] } {
  switch (spec.type) {
    case 'linear': {
      if (input.length !== 1) throw new ModelSpecError(`${where} (linear) needs a flat input, got ${formatShape(input)}; add a flatten layer before it`);
      return { module: new Linear(input[0], spec.out, rng, { bias: spec.bias, init: spec.init }), output: [spec.out] };
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

export function buildModel(spec: ModelSpec, rng: Rng): BuiltModel {
  let shape: number[] = [...spec.input];
  const modules: Module[] = [];
  spec.layers.forEach((layer, i) => {
    const built = buildLayer(layer, shape, rng, `layer ${i}`);
    modules.push(built.module);
    shape = built.output;
  });
  return { model: new Sequential(...modules), outputShape: shape };
}

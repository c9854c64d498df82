/**
 * Declarative model specs: a model is a JSON object (an input shape and a list of layers) that the
 * CLI reads by preset name or file, and that the coordinator sends to its workers, so every
 * process builds the same model. `buildModel` infers each layer's input size from the shapes
 * before it and fails before training, naming the layer and the shapes, when they do not fit.
 */

import { z } from 'zod';
import { formatShape, shapeSize } from '../tensor/shape.js';
import type { Rng } from '../util/random.js';
import { Dropout, Flatten, GELU, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh } from './layers.js';
import type { Module } from './module.js';

const positiveInt = z.number().int().positive();

export const layerSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('linear'), out: positiveInt, bias: z.boolean().optional(), init: z.enum(['default', 'kaiming', 'xavier']).optional() }).strict(),
  z.object({ type: z.literal('flatten') }).strict(),
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

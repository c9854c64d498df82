/**
 * Builds a module spec's model from the definition this process registered (user-model.ts), and
 * checks what it built before any training: that `create` returned a Module with parameters, and,
 * by one forward pass over a single zero sample (in eval mode, without gradients), that the
 * output gives one score per class: [1, numClasses], or [1, time, numClasses] for token models.
 */

import { noGrad } from '../autograd/grad-mode.js';
import { defaultBackend } from '../backend/default.js';
import { tensor } from '../ops/create.js';
import { formatShape, shapeSize } from '../tensor/shape.js';
import type { Rng } from '../util/random.js';
import { ModelSpecError } from './model-error.js';
import { Module } from './module.js';
import type { BuildContext, BuiltModel, ModuleModelSpec } from './spec.js';
import { registeredModel, registeredModelNames } from './user-model.js';

/** The output shape one sample must give: one score per class (at each position, for tokens). */
function expectedOutput(spec: ModuleModelSpec, numClasses: number): number[] {
  return spec.tokens ? [1, spec.input[0], numClasses] : [1, numClasses];
}

export function buildUserModel(spec: ModuleModelSpec, rng: Rng, context: BuildContext): BuiltModel {
  const where = `model '${spec.name}' (${spec.module})`;
  const definition = registeredModel(spec.name);
  if (!definition) {
    const loaded = registeredModelNames();
    throw new ModelSpecError(
      `${where} is a module file's model, and this process ${loaded.length ? `loaded only ${loaded.map((n) => `'${n}'`).join(', ')}` : 'was given none'}: start it with --module FILE, the file that defines '${spec.name}'`,
    );
  }
  const numClasses = context.numClasses;
  if (numClasses === undefined) throw new ModelSpecError(`${where}: building it needs the dataset's number of classes`);
  let model: unknown;
  try {
    model = definition.create({ numClasses, input: [...spec.input], rng });
  } catch (err) {
    throw new ModelSpecError(`${where}: create() failed: ${(err as Error).message ?? String(err)}`);
  }
  if (!(model instanceof Module)) {
    throw new ModelSpecError(`${where}: create() must return a Module (a subclass of meshgrad's Module), got ${model === null ? 'null' : typeof model === 'object' ? (model.constructor?.name ?? 'an object') : typeof model}`);
  }
  if (model.parameters().length === 0) throw new ModelSpecError(`${where}: create() returned a Module without parameters: register them with registerParameter / registerModule`);
  const outputShape = probeOutput(model, spec, where);
  const expected = expectedOutput(spec, numClasses);
  if (outputShape.length !== expected.length || outputShape.some((d, i) => d !== expected[i])) {
    throw new ModelSpecError(`${where}: one sample ${formatShape([1, ...spec.input])} gives ${formatShape(outputShape)}, but the dataset needs ${formatShape(expected)}: one score per class${spec.tokens ? ' at each position' : ''}`);
  }
  return { model, outputShape: outputShape.slice(1) };
}

/** The model's output shape for one zero sample (eval mode: BatchNorm's statistics and dropout are left alone). */
function probeOutput(model: Module, spec: ModuleModelSpec, where: string): readonly number[] {
  const first = model.parameters()[0];
  const backend = first?.backend ?? defaultBackend();
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const x = tensor(new Float32Array(shapeSize(spec.input)), [1, ...spec.input], { backend, retainHost: true, dtype: first?.dtype });
      return model.forward(x).shape;
    });
  } catch (err) {
    throw new ModelSpecError(`${where}: forward failed on one sample ${formatShape([1, ...spec.input])}: ${(err as Error).message ?? String(err)}`);
  } finally {
    model.train(wasTraining);
  }
}

/**
 * Checks made before a run starts, so that a model that cannot read a dataset, or a batch larger
 * than the training split, fails in one line naming the flags rather than at the first step (or
 * not at all). The CLI runs them before loading any data (with what the dataset declares), and
 * the trainers again once the data is loaded (then a text's vocabulary size is known too).
 */

import type { DatasetDescription } from '../data/registry.js';
import { isModuleSpec, modelOutputShape, ModelSpecError, outputWidthLayer, readsTokens as specReadsTokens, type ModelSpec } from '../nn/spec.js';
import { formatShape } from '../tensor/shape.js';

export class RunConfigError extends Error {}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Refuses a model that cannot train on the dataset: token ids for a model without an embedding
 * (or images for one with), an input shape other than the samples', an output that does not give
 * one score per class for each label, or an output width other than the number of classes.
 * `model` and `dataset` are how the user named them (--model / --dataset).
 */
export function checkModelFitsDataset(spec: ModelSpec, model: string, dataset: string, data: DatasetDescription): void {
  const head = `${isModuleSpec(spec) ? '--module' : '--model'} ${model} does not fit --dataset ${dataset}`;
  const readsTokens = specReadsTokens(spec);
  if (readsTokens && data.input !== 'tokens') {
    throw new RunConfigError(`${head}: the model reads token ids ${formatShape(spec.input)} (${isModuleSpec(spec) ? 'its definition says tokens: true' : 'its first layer is an embedding'}) but the dataset gives ${data.samples} ${formatShape(data.sampleShape)}`);
  }
  if (!readsTokens && data.input === 'tokens') {
    throw new RunConfigError(
      `${head}: the model reads float inputs ${formatShape(spec.input)} but the dataset gives ${data.samples} ${formatShape(data.sampleShape)} (a model for it starts with an embedding layer, e.g. --model char-gru)`,
    );
  }
  if (!sameShape(spec.input, data.sampleShape)) {
    throw new RunConfigError(`${head}: the model's input is ${formatShape(spec.input)} but the dataset's samples are ${data.samples} ${formatShape(data.sampleShape)}`);
  }
  // A module's output is checked when it is built (one forward pass: user-model-build.ts).
  if (isModuleSpec(spec)) return;
  let output: readonly number[];
  try {
    // Sizes taken from the classes are 0 here when only the loaded data tells them.
    output = modelOutputShape(spec);
  } catch (err) {
    if (err instanceof ModelSpecError) throw new ModelSpecError(`--model ${model}: ${err.message}`);
    throw err;
  }
  const perSample = data.labelsPerSample === 1 ? 1 : 2;
  const expected = data.labelsPerSample === 1 ? '[classes]: one score per class' : `[${data.labelsPerSample}, classes]: one score per class at each of its ${data.labelsPerSample} positions`;
  if (output.length !== perSample || (perSample === 2 && output[0] !== data.labelsPerSample)) {
    throw new RunConfigError(`${head}: the model outputs [${output.map((d) => (d === 0 ? 'classes' : d)).join(', ')}] per sample but the dataset needs ${expected}`);
  }
  const width = output[output.length - 1];
  // 0: the last layer leaves out its width and gets the number of classes.
  if (data.numClasses !== undefined && width !== 0 && width !== data.numClasses) {
    throw new RunConfigError(
      `${head}: ${outputWidthLayer(spec) ?? 'the output width'} is ${width} but the dataset has ${data.numClasses} ${data.classes}: the model's output width must equal it (a last linear layer without 'out' gets it)`,
    );
  }
}

/** The samples left for training from a pool once --val-fraction holds its share out (as trainValSplit does). */
export function trainSplitSize(pool: number, valFraction = 0): number {
  return pool - Math.round(pool * valFraction);
}

export interface BatchSizeSettings {
  readonly batchSize: number;
  readonly trainSamples?: number;
  readonly valFraction?: number;
}

/**
 * Refuses a global batch larger than the training split. `trainSize`: the split's size once the
 * data is loaded; without it, the bound --train-samples gives (nothing to check without that flag).
 */
export function checkBatchSize(settings: BatchSizeSettings, trainSize?: number): void {
  const valFraction = settings.valFraction ?? 0;
  const size = trainSize ?? (settings.trainSamples !== undefined ? trainSplitSize(settings.trainSamples, valFraction) : undefined);
  if (size === undefined || settings.batchSize <= size) return;
  const from: string[] = [];
  if (settings.trainSamples !== undefined) from.push(`--train-samples ${settings.trainSamples}`);
  if (valFraction > 0) from.push(`--val-fraction ${valFraction}`);
  throw new RunConfigError(
    `--batch-size ${settings.batchSize} is larger than the training split of ${size} samples${from.length > 0 ? ` (after ${from.join(', ')})` : ''}: lower --batch-size or train on more samples`,
  );
}

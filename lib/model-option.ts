/**
 * What the library's `model` option accepts, in one place for `train` and `startCoordinator`: a
 * preset name or spec file path, a parsed spec, or a model written in code (`defineModel(...)`,
 * registered here so this process can build it; workers load the same definition with `module`).
 */

import { resolveModelSpec } from '../shared/nn/resolve.js';
import type { ModelSpec } from '../shared/nn/spec.js';
import { registerModel, type ModelDefinition } from '../shared/nn/user-model.js';

export type ModelOption = string | ModelSpec | ModelDefinition;

function isDefinition(model: ModelOption): model is ModelDefinition {
  return typeof model === 'object' && typeof (model as { create?: unknown }).create === 'function';
}

/** The spec `model` stands for, and how the run record names it. */
export function resolveModelOption(model: ModelOption): { readonly spec: ModelSpec; readonly source: string } {
  if (typeof model === 'string') return { spec: resolveModelSpec(model), source: model };
  if (isDefinition(model)) return { spec: registerModel(model), source: model.name };
  return { spec: model, source: model.name };
}

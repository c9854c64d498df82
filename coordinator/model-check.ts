/** The coordinator's check that a joining worker can build the run's model (a model written in code needs its module file). */

import { isModuleSpec, type ModelSpec } from '../shared/nn/spec.js';

/**
 * Why a joining worker cannot build the run's model, or null: a module spec's run takes only
 * workers whose --module file defines that model; a layer spec's run, only workers without one.
 */
export function moduleJoinProblem(model: ModelSpec, workerModule: string | undefined): string | null {
  if (isModuleSpec(model)) {
    if (workerModule === undefined) return `this run trains '${model.name}', a model defined in code (${model.module}): start the worker with --module FILE, the same file the coordinator was given`;
    if (workerModule !== model.name) return `this run trains '${model.name}' (${model.module}) but the worker's --module file defines '${workerModule}'`;
    return null;
  }
  return workerModule === undefined ? null : `this run trains --model ${model.name}, not a module file's model; start the worker without --module (its file defines '${workerModule}')`;
}

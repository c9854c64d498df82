/**
 * `meshgrad/engine`: the autograd engine as a library. Tensor and the op functions (also as the
 * `ops` namespace), the nn modules (subclass `Module`: registerParameter, registerModule,
 * registerBuffer are protected members for subclasses), optimizers and schedules (optimizerFor
 * binds one to a model for hand-written loops), backends, the seeded generator, and checkpoints
 * (saveModel / loadModel for a model's state, saveCheckpoint / loadCheckpoint for the file itself).
 */

export { Tensor } from '../shared/tensor/tensor.js';
export type { Shape } from '../shared/tensor/shape.js';
export type { DType, FloatArray } from '../shared/tensor/dtype.js';
export * from '../shared/ops/index.js';
export * as ops from '../shared/ops/index.js';
export * as nn from '../shared/nn/index.js';
export { Module, type BufferOptions, type StateEntry } from '../shared/nn/module.js';
export { defineModel, loadModelFile, registerModel, type ModelContext, type ModelDefinition } from '../shared/nn/user-model.js';
export * as optim from '../shared/optim/index.js';
export { Rng } from '../shared/util/random.js';
export type { Backend } from '../shared/backend/backend.js';
export { defaultBackend, setDefaultBackend } from '../shared/backend/default.js';
export { saveModel, loadModel } from '../shared/train/model-file.js';
export { ModelOptimizer, optimizerFor } from '../shared/train/model-optimizer.js';
export { loadCheckpoint, saveCheckpoint, CheckpointFormatError, type CheckpointContents, type CheckpointParam, type LoadedCheckpoint } from '../shared/checkpoint/index.js';

/**
 * `meshgrad`: what a program commonly needs, in one import. The engine (Tensor, the ops, `nn`,
 * `optim`, Module, checkpoints), the data API (Dataset, InMemoryDataset, BatchSampler, the bundled
 * loaders; also as the `data` namespace), training (`train(model, { train: dataset, ... })`,
 * evaluate) and distributed training (startCoordinator, runWorker, trainLocal; also as the
 * `distributed` namespace). The subpaths meshgrad/engine, meshgrad/data, meshgrad/train and
 * meshgrad/distributed hold the full sets; the op functions are here as `ops.*`.
 */

export { defineModel } from './engine.js';
export type { ModelContext, ModelDefinition } from './engine.js';
export { Tensor, Module, nn, optim, ops, Rng, defaultBackend, setDefaultBackend, saveModel, loadModel, ModelOptimizer, optimizerFor, saveCheckpoint, loadCheckpoint, CheckpointFormatError, noGrad, enableGrad, isGradEnabled, tensor } from './engine.js';
export type { Shape, DType, FloatArray, Backend, BufferOptions, StateEntry, CheckpointContents, CheckpointParam, LoadedCheckpoint } from './engine.js';
export * as data from './data.js';
export { InMemoryDataset, datasetFromArrays, BatchSampler, SubsetDataset, trainValSplit, firstSamples, openDataset, knownDatasets } from './data.js';
export type { Batch, BatchBuffers, Dataset, InMemoryDatasetInit, BatchSamplerOptions } from './data.js';
export { train, fit, evaluate, evaluateAsync, computeGradients, trainSingleProcess } from './train.js';
export type { FitOptions, FitResult, EpochEvent, StepEvent, TrainConfig, TrainReporter, TrainSummary, EvalResult, StepResult, TrainRunOptions, TrainRunResult } from './train.js';
export * as distributed from './distributed.js';
export { startCoordinator, runWorker, createWorker, trainLocal } from './distributed.js';
export type { StartCoordinatorOptions, RunWorkerOptions } from './distributed.js';

/**
 * One training step's math, shared by the single-process trainer and the distributed worker:
 * forward a batch, the loss (cross-entropy over class labels, or mean squared error / Huber over
 * regression targets: shared/train/objective.ts), backward, and evaluation over a dataset.
 */

import type { BackwardOptions } from '../autograd/backward.js';
import type { Batch, Dataset } from '../data/dataset.js';
import { BatchSampler } from '../data/sampler.js';
import type { Module } from '../nn/module.js';
import { concat, crossEntropy, eq, ge, huberLoss, max, mseLoss, mul, noGrad, reshape, sub, sum, tensor } from '../ops/index.js';
import { asObjective, type Objective } from './objective.js';
import { formatShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { FloatArray } from '../tensor/dtype.js';
import type { Backend } from '../backend/backend.js';
import { defaultBackend } from '../backend/default.js';

export interface StepResult {
  /** Mean loss over the batch (per label; per target value for regression). */
  readonly loss: number;
  /** Correctly classified samples in the batch (0 for regression). */
  readonly correct: number;
  readonly size: number;
  /** Labels in the batch (size for classifiers, size·T for sequence models). */
  readonly labels: number;
}

/** The backend a model's parameters live on (where its steps run). */
export function backendOf(model: Module): Backend {
  const first = model.parameters()[0];
  return first ? first.backend : defaultBackend();
}

export function batchInput(batch: Batch, backend: Backend = defaultBackend()): Tensor {
  return tensor(batch.x, [batch.size, ...batch.sampleShape], { backend, retainHost: true });
}

/**
 * A model's output as rows of class scores: [batch, classes] as is, and a sequence model's
 * [batch, time, classes] flattened to [batch·time, classes] (one label per position).
 */
function scoreRows(output: Tensor, labels: Int32Array): Tensor {
  if (output.rank === 2) return output;
  if (output.rank === 3) return reshape(output, [output.shape[0] * output.shape[1], output.shape[2]]);
  throw new RangeError(`a classification model must output [batch, classes] or [batch, time, classes], got ${formatShape(output.shape)} for ${labels.length} labels`);
}

function countCorrect(logits: Tensor, labels: Int32Array): number {
  const [n, c] = logits.shape;
  const data = logits.dataSync();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (data[i * c + j] > data[i * c + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct;
}

/**
 * The correct count as a one-element tensor on the logits' backend, for device backends (no
 * read-back): a row is correct when its FIRST maximum is at the label, as in `countCorrect`.
 * first = max_j [x_j ≥ max x]·(c − j) is c minus the first maximum's index. A row holding NaN has
 * no j with x_j ≥ NaN and counts as wrong (the host loop would pick index 0).
 */
function correctTensor(logits: Tensor, labels: Int32Array): Tensor {
  const [n, c] = logits.shape;
  const backend = logits.backend;
  const rank = new Float32Array(c);
  for (let j = 0; j < c; j++) rank[j] = c - j;
  const target = new Float32Array(n);
  for (let i = 0; i < n; i++) target[i] = c - labels[i];
  const first = max(mul(ge(logits, max(logits, 1, { keepDims: true })), tensor(rank, [c], { backend })), 1);
  return sum(eq(first, tensor(target, [n], { backend })));
}

/** Whether a tensor's values are on the host (CPU, wasm) or must be read back from a device. */
export function onHost(t: Tensor): boolean {
  return t.backend.readSync(t.buffer) !== null;
}

/**
 * A step's figures, ready (host backends) or being read back from the device: the read is issued
 * at once (so it sees this step's kernels) and resolves after the step's work is done.
 */
export type StepFigures = { readonly ready: StepResult } | { readonly pending: Promise<StepResult> };

/** The figures of a finished step, awaiting the device when they are pending. */
export async function settle(figures: StepFigures): Promise<StepResult> {
  return 'ready' in figures ? figures.ready : figures.pending;
}

/** A regression batch's targets as a [batch, targets] tensor beside the prediction; one line when they do not fit. */
function targetTensor(prediction: Tensor, batch: Batch): Tensor {
  if (batch.targets === undefined) throw new Error('a regression loss (mse, huber) needs a dataset with targets (task: regression); this batch holds class labels');
  const width = batch.targets.length / batch.size;
  if (prediction.rank !== 2 || prediction.shape[0] !== batch.size || prediction.shape[1] !== width) {
    throw new RangeError(`a regression model must output [batch, ${width}] (one value per target), got ${formatShape(prediction.shape)} for a batch of ${batch.size}`);
  }
  return tensor(batch.targets, [batch.size, width], { backend: prediction.backend, dtype: prediction.dtype });
}

/** The objective's loss of a regression prediction, its sum divided by `normalizer` target values. */
function regressionLoss(objective: Objective, prediction: Tensor, target: Tensor, normalizer: number): Tensor {
  return objective.loss === 'huber' ? huberLoss(prediction, target, { delta: objective.huberDelta, normalizer }) : mseLoss(prediction, target, { normalizer });
}

function regressionFigures(loss: Tensor, normalizer: number, size: number, labels: number): StepFigures {
  if (onHost(loss)) return { ready: { loss: (loss.item() * normalizer) / size, correct: 0, size, labels } };
  return { pending: loss.data().then((v) => ({ loss: (v[0] * normalizer) / size, correct: 0, size, labels })) };
}

function figuresOf(loss: Tensor, logits: Tensor, labels: Int32Array, normalizer: number, size: number): StepFigures {
  if (onHost(loss)) return { ready: { loss: (loss.item() * normalizer) / size, correct: countCorrect(logits, labels), size, labels: labels.length } };
  const both = concat([reshape(loss, [1]), reshape(correctTensor(logits, labels), [1])], 0);
  const read = both.data();
  return { pending: read.then((v) => ({ loss: (v[0] * normalizer) / size, correct: Math.round(v[1]), size, labels: labels.length })) };
}

/**
 * Forward and backward on `batch`: leaves dL/dθ in each parameter's `.grad`, where L is the summed
 * loss divided by `normalizer` samples' worth of labels (default: this batch, i.e. the mean loss
 * per label). `objective` is the loss (a number: cross-entropy with that label smoothing). Sequence models have several labels per sample (`batch.y.length / batch.size`).
 * The reported `loss` is always the mean per label of this batch. With `timing`, the forward and
 * backward times are written into it (the results are the same either way).
 */
export function computeGradients(model: Module, batch: Batch, objective: number | Objective = 0, normalizer = batch.size, timing?: GradientTiming, backward?: BackwardOptions): StepResult {
  const figures = recordGradients(model, batch, objective, normalizer, timing, backward);
  if (!('ready' in figures)) throw new Error(`computeGradients: the model lives on the '${backendOf(model).name}' backend, whose figures must be awaited (use recordGradients and settle)`);
  return figures.ready;
}

/**
 * `computeGradients` for any backend: records forward and backward, leaving the gradients in each
 * parameter's `.grad`, and returns the step's figures, pending on a device backend (read back
 * once, after backward was recorded).
 */
export function recordGradients(model: Module, batch: Batch, objective: number | Objective = 0, normalizer = batch.size, timing?: GradientTiming, backward?: BackwardOptions): StepFigures {
  const goal = asObjective(objective);
  if (goal.loss !== 'cross-entropy') return recordRegression(model, batch, goal, normalizer, timing, backward);
  const labelSmoothing = goal.labelSmoothing ?? 0;
  const started = timing ? performance.now() : 0;
  model.zeroGrad();
  const perSample = batch.y.length / batch.size;
  const logits = scoreRows(model.forward(batchInput(batch, backendOf(model))), batch.y);
  const loss = crossEntropy(logits, batch.y, { labelSmoothing, normalizer: normalizer * perSample });
  const host = onHost(loss);
  const ready = host ? figuresOf(loss, logits, batch.y, normalizer, batch.size) : null;
  const forwardDone = timing ? performance.now() : 0;
  loss.backward(undefined, backward);
  if (timing) {
    timing.forwardSeconds = (forwardDone - started) / 1000;
    timing.backwardSeconds = (performance.now() - forwardDone) / 1000;
  }
  // On a device the figures are read after backward is recorded, so that read is the step's only one.
  return ready ?? noGrad(() => figuresOf(loss, logits, batch.y, normalizer, batch.size));
}

/** recordGradients for a regression objective: the loss per target value, no accuracy. */
function recordRegression(model: Module, batch: Batch, objective: Objective, normalizer: number, timing?: GradientTiming, backward?: BackwardOptions): StepFigures {
  const started = timing ? performance.now() : 0;
  model.zeroGrad();
  const prediction = model.forward(batchInput(batch, backendOf(model)));
  const target = targetTensor(prediction, batch);
  const width = prediction.shape[1];
  const loss = regressionLoss(objective, prediction, target, normalizer * width);
  const host = onHost(loss);
  const ready = host ? regressionFigures(loss, normalizer, batch.size, batch.size) : null;
  const forwardDone = timing ? performance.now() : 0;
  loss.backward(undefined, backward);
  if (timing) {
    timing.forwardSeconds = (forwardDone - started) / 1000;
    timing.backwardSeconds = (performance.now() - forwardDone) / 1000;
  }
  return ready ?? noGrad(() => regressionFigures(loss, normalizer, batch.size, batch.size));
}

/** Where a `computeGradients` call spent its time, filled in when the caller passes one. */
export interface GradientTiming {
  /** Forward pass, loss and the accuracy count (which reads the logits back). */
  forwardSeconds: number;
  backwardSeconds: number;
}

export interface EvalResult {
  /** The objective's mean loss (per label; per target value for regression). */
  readonly loss: number;
  /** The fraction of labels predicted right (NaN for regression). */
  readonly accuracy: number;
  readonly samples: number;
  /** Regression: the root of the mean squared error, in the targets' units. */
  readonly rmse?: number;
}

/** The objective a dataset is evaluated with when the caller names none: its task's default loss. */
function evalObjective(dataset: Dataset, objective?: Objective): Objective {
  return objective ?? (dataset.task === 'regression' ? { loss: 'mse' } : { loss: 'cross-entropy' });
}

/** One regression batch's summed loss and summed squared error, as a [2] tensor (no graph). */
function regressionSums(model: Module, batch: Batch, objective: Objective, backend: Backend): Tensor {
  const prediction = model.forward(batchInput(batch, backend));
  const target = targetTensor(prediction, batch);
  const d = sub(prediction, target);
  return concat([reshape(regressionLoss(objective, prediction, target, 1), [1]), reshape(sum(mul(d, d)), [1])], 0);
}

function regressionResult(lossSum: number, sse: number, values: number, samples: number): EvalResult {
  return { loss: values > 0 ? lossSum / values : NaN, accuracy: NaN, rmse: values > 0 ? Math.sqrt(sse / values) : NaN, samples };
}

function defaultEvalBatch(dataset: Dataset): number {
  return (dataset.labelsPerSample ?? 1) > 1 ? 32 : 250;
}

/**
 * Evaluation one batch at a time: each `next()` scores one batch with `score` (in evaluation mode,
 * without a graph, inside one backend scope). The model's training flag is restored when the
 * generator finishes or is abandoned (`return()` runs the `finally`).
 */
function* scoreBatches(model: Module, dataset: Dataset, batchSize: number, score: (batch: Batch, backend: Backend) => void): Generator<void, void, void> {
  const wasTraining = model.training;
  model.eval();
  try {
    const sampler = new BatchSampler({ size: dataset.size, batchSize, shuffle: false, seed: 0 });
    const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
    const backend = backendOf(model);
    for (const indices of sampler.epoch(0)) {
      const batch = dataset.batch(indices, buffers);
      noGrad(() => backend.scope(() => score(batch, backend)));
      yield;
    }
  } finally {
    model.train(wasTraining);
  }
}

/** scoreBatches summed into the objective's figures: loss and accuracy, or for regression loss and RMSE. */
function* evaluationBatches(model: Module, dataset: Dataset, batchSize: number, objective?: Objective): Generator<void, EvalResult, void> {
  const goal = evalObjective(dataset, objective);
  let lossSum = 0;
  if (goal.loss !== 'cross-entropy') {
    let sse = 0;
    let values = 0;
    yield* scoreBatches(model, dataset, batchSize, (batch, backend) => {
      const sums = regressionSums(model, batch, goal, backend).dataSync();
      lossSum += sums[0];
      sse += sums[1];
      values += batch.targets?.length ?? 0;
    });
    return regressionResult(lossSum, sse, values, dataset.size);
  }
  let correct = 0;
  let labels = 0;
  yield* scoreBatches(model, dataset, batchSize, (batch, backend) => {
    const logits = scoreRows(model.forward(batchInput(batch, backend)), batch.y);
    lossSum += crossEntropy(logits, batch.y).item() * batch.y.length;
    correct += countCorrect(logits, batch.y);
    labels += batch.y.length;
  });
  // Per label: per image for classifiers, per token (nats/token) for language models.
  return { loss: labels > 0 ? lossSum / labels : NaN, accuracy: labels > 0 ? correct / labels : NaN, samples: dataset.size };
}

/**
 * `evaluate` for any backend: on a device, each batch's loss sum and correct count are read back
 * (the reads of all batches are awaited together, so the device never waits on the host).
 */
export async function evaluateAsync(model: Module, dataset: Dataset, batchSize = defaultEvalBatch(dataset), objective?: Objective): Promise<EvalResult> {
  const backend = backendOf(model);
  const first = model.parameters()[0];
  if (first === undefined || onHost(first)) return evaluate(model, dataset, batchSize, objective);
  const goal = evalObjective(dataset, objective);
  const regression = goal.loss !== 'cross-entropy';
  const wasTraining = model.training;
  model.eval();
  const reads: Promise<FloatArray>[] = [];
  let labels = 0;
  try {
    const sampler = new BatchSampler({ size: dataset.size, batchSize, shuffle: false, seed: 0 });
    const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
    for (const indices of sampler.epoch(0)) {
      const batch = dataset.batch(indices, buffers);
      noGrad(() =>
        backend.scope(() => {
          if (regression) {
            reads.push(regressionSums(model, batch, goal, backend).data());
            labels += batch.targets?.length ?? 0;
            return;
          }
          const logits = scoreRows(model.forward(batchInput(batch, backend)), batch.y);
          const lossSum = mul(crossEntropy(logits, batch.y), batch.y.length);
          reads.push(concat([reshape(lossSum, [1]), reshape(correctTensor(logits, batch.y), [1])], 0).data());
          labels += batch.y.length;
        }),
      );
    }
  } finally {
    model.train(wasTraining);
  }
  let lossSum = 0;
  let correct = 0;
  for (const v of await Promise.all(reads)) {
    lossSum += v[0];
    correct += regression ? v[1] : Math.round(v[1]);
  }
  if (regression) return regressionResult(lossSum, correct, labels, dataset.size);
  return { loss: labels > 0 ? lossSum / labels : NaN, accuracy: labels > 0 ? correct / labels : NaN, samples: dataset.size };
}

/** Mean loss and accuracy (regression: loss and RMSE) over a whole dataset, in evaluation mode and without a graph. */
export function evaluate(model: Module, dataset: Dataset, batchSize = defaultEvalBatch(dataset), objective?: Objective): EvalResult {
  const steps = evaluationBatches(model, dataset, batchSize, objective);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * `evaluate` for a process that also serves a network: it gives the event loop a turn (one
 * `setImmediate`) whenever it has computed for `sliceMs`, so heartbeats, pings and /metrics
 * scrapes are answered during a long evaluation. Its batches are smaller (64) so that no single
 * one holds the loop for long (a 250-image cnn batch takes ~400 ms on one thread); the result
 * equals `evaluate`'s up to float32 rounding of the per-batch means (~1e-7 relative).
 */
export async function evaluateYielding(model: Module, dataset: Dataset, sliceMs = 50, batchSize = Math.min(64, defaultEvalBatch(dataset)), objective?: Objective): Promise<EvalResult> {
  return (await evaluateUnlessAbandoned(model, dataset, () => false, sliceMs, batchSize, objective))!;
}

/**
 * `evaluateYielding` that gives up, returning null, at the first turn of the event loop after
 * `abandon()` turns true (a coordinator told to stop within a bound); the model is left in the
 * mode it was in.
 */
export async function evaluateUnlessAbandoned(model: Module, dataset: Dataset, abandon: () => boolean, sliceMs = 50, batchSize = Math.min(64, defaultEvalBatch(dataset)), objective?: Objective): Promise<EvalResult | null> {
  const steps = evaluationBatches(model, dataset, batchSize, objective);
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
      if (abandon()) {
        steps.return(undefined as never); // runs the generator's finally: the model's mode is restored
        return null;
      }
    }
  }
}

/**
 * One classification step's math, shared by the single-process trainer and the distributed
 * worker: forward a batch, the cross-entropy loss, backward, and evaluation over a dataset.
 */

import type { Batch, Dataset } from '../data/dataset.js';
import { BatchSampler } from '../data/sampler.js';
import type { Module } from '../nn/module.js';
import { crossEntropy, noGrad, tensor } from '../ops/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Backend } from '../backend/backend.js';
import { defaultBackend } from '../backend/default.js';

export interface StepResult {
  /** Mean loss over the batch. */
  readonly loss: number;
  /** Correctly classified samples in the batch. */
  readonly correct: number;
  readonly size: number;
}

/** The backend a model's parameters live on (where its steps run). */
export function backendOf(model: Module): Backend {
  const first = model.parameters()[0];
  return first ? first.backend : defaultBackend();
}

export function batchInput(batch: Batch, backend: Backend = defaultBackend()): Tensor {
  return tensor(batch.x, [batch.size, ...batch.sampleShape], { backend });
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
 * Forward and backward on `batch`: leaves dL/dθ in each parameter's `.grad`, where L is the summed
 * loss divided by `normalizer` (default: the batch size, i.e. the mean loss). The reported `loss`
 * is always the batch mean.
 */
export function computeGradients(model: Module, batch: Batch, labelSmoothing = 0, normalizer = batch.size): StepResult {
  model.zeroGrad();
  const logits = model.forward(batchInput(batch, backendOf(model)));
  const loss = crossEntropy(logits, batch.y, { labelSmoothing, normalizer });
  const result = { loss: (loss.item() * normalizer) / batch.size, correct: countCorrect(logits, batch.y), size: batch.size };
  loss.backward();
  return result;
}

export interface EvalResult {
  readonly loss: number;
  readonly accuracy: number;
  readonly samples: number;
}

/** Mean loss and accuracy over a whole dataset, in evaluation mode and without a graph. */
export function evaluate(model: Module, dataset: Dataset, batchSize = 250): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0;
  let correct = 0;
  try {
    noGrad(() => {
      const sampler = new BatchSampler({ size: dataset.size, batchSize, shuffle: false, seed: 0 });
      const buffers = { x: new Float32Array(0), y: new Int32Array(0) };
      const backend = backendOf(model);
      for (const indices of sampler.epoch(0)) {
        const batch = dataset.batch(indices, buffers);
        backend.scope(() => {
          const logits = model.forward(batchInput(batch, backend));
          lossSum += crossEntropy(logits, batch.y).item() * batch.size;
          correct += countCorrect(logits, batch.y);
        });
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const n = dataset.size;
  return { loss: n > 0 ? lossSum / n : NaN, accuracy: n > 0 ? correct / n : NaN, samples: n };
}

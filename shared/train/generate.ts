/**
 * Sampling text from a character-level language model: the model reads the last `contextLength`
 * tokens (a fresh state each time, as it was trained and scored), and the next token is drawn from
 * softmax(logits / temperature) of the last position with a seeded RNG (temperature 0: argmax).
 */

import type { CharVocabulary } from '../data/text.js';
import type { Module } from '../nn/module.js';
import { narrow, noGrad, tensor } from '../ops/index.js';
import type { Rng } from '../util/random.js';
import { backendOf } from './classify.js';

export interface GenerateOptions {
  readonly length: number;
  readonly temperature: number;
  readonly contextLength: number;
  readonly rng: Rng;
}

/** Draws an index from the distribution softmax(logits / temperature). */
export function sampleIndex(logits: ArrayLike<number>, temperature: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  // Subtract the maximum before exponentiating: the largest weight is exactly 1, none overflow.
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += weights[i] = Math.exp((logits[i] - logits[best]) / temperature);
  let u = rng.uniform() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return best;
}

export function generateText(model: Module, vocabulary: CharVocabulary, prompt: string, options: GenerateOptions): string {
  if (!(options.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${options.temperature}`);
  if (prompt.length === 0) throw new RangeError('the prompt must not be empty');
  const ids = Array.from(vocabulary.encode(prompt));
  const backend = backendOf(model);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let n = 0; n < options.length; n++) {
      const context = ids.slice(-options.contextLength);
      const next = backend.scope(() =>
        noGrad(() => {
          const logits = model.forward(tensor(Float32Array.from(context), [1, context.length], { backend, retainHost: true }));
          if (logits.rank !== 3) throw new RangeError(`a language model must output [batch, time, vocabulary], got [${logits.shape.join(', ')}]`);
          const v = logits.shape[2];
          const all = logits.dataSync();
          return sampleIndex(all.subarray((context.length - 1) * v, context.length * v), options.temperature, options.rng);
        }),
      );
      ids.push(next);
    }
  } finally {
    model.train(wasTraining);
  }
  return vocabulary.decode(ids);
}

/**
 * `generateText` for any backend: on a device (WebGPU) each step reads back only the last
 * position's logits (one row of the vocabulary), after the forward pass is recorded.
 */
export async function generateTextAsync(model: Module, vocabulary: CharVocabulary, prompt: string, options: GenerateOptions): Promise<string> {
  const backend = backendOf(model);
  const first = model.parameters()[0];
  if (first === undefined || backend.readSync(first.buffer) !== null) return generateText(model, vocabulary, prompt, options);
  if (!(options.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${options.temperature}`);
  if (prompt.length === 0) throw new RangeError('the prompt must not be empty');
  const ids = Array.from(vocabulary.encode(prompt));
  const wasTraining = model.training;
  model.eval();
  try {
    for (let n = 0; n < options.length; n++) {
      const context = ids.slice(-options.contextLength);
      const row = backend.scope(() =>
        noGrad(() => {
          const logits = model.forward(tensor(Float32Array.from(context), [1, context.length], { backend, retainHost: true }));
          if (logits.rank !== 3) throw new RangeError(`a language model must output [batch, time, vocabulary], got [${logits.shape.join(', ')}]`);
          return narrow(logits, 1, context.length - 1, 1).data();
        }),
      );
      ids.push(sampleIndex(await row, options.temperature, options.rng));
    }
  } finally {
    model.train(wasTraining);
  }
  return vocabulary.decode(ids);
}

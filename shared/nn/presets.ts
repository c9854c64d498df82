/** Named model specs the CLI knows (`--model mlp`), with the hyper-parameters they are meant for. */

import type { ModelSpec } from './spec.js';

export const PRESETS: Readonly<Record<string, ModelSpec>> = {
  /** 784-256-128-10 with ReLU, the Fashion-MNIST baseline (Adam, lr 1e-3, batch 128). */
  mlp: {
    name: 'mlp',
    input: [1, 28, 28],
    layers: [
      { type: 'flatten' },
      { type: 'linear', out: 256 },
      { type: 'relu' },
      { type: 'linear', out: 128 },
      { type: 'relu' },
      { type: 'linear', out: 10 },
    ],
    defaults: { optimizer: 'adam', lr: 1e-3, batchSize: 128 },
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

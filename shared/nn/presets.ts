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
  /** conv 32@3x3 pad 1 - ReLU - maxpool 2 - conv 64@3x3 pad 1 - ReLU - maxpool 2 - fc 128 - ReLU - fc 10. */
  cnn: {
    name: 'cnn',
    input: [1, 28, 28],
    layers: [
      { type: 'conv2d', out: 32, kernel: 3, padding: 1 },
      { type: 'relu' },
      { type: 'maxpool2d', kernel: 2 },
      { type: 'conv2d', out: 64, kernel: 3, padding: 1 },
      { type: 'relu' },
      { type: 'maxpool2d', kernel: 2 },
      { type: 'flatten' },
      { type: 'linear', out: 128 },
      { type: 'relu' },
      { type: 'linear', out: 10 },
    ],
    defaults: { optimizer: 'adam', lr: 1e-3, batchSize: 128 },
  },
  /** LeNet-5 for 28x28 inputs (first conv padded by 2, as the original's 32x32), ReLU, max pooling. */
  lenet5: {
    name: 'lenet5',
    input: [1, 28, 28],
    layers: [
      { type: 'conv2d', out: 6, kernel: 5, padding: 2 },
      { type: 'relu' },
      { type: 'maxpool2d', kernel: 2 },
      { type: 'conv2d', out: 16, kernel: 5 },
      { type: 'relu' },
      { type: 'maxpool2d', kernel: 2 },
      { type: 'flatten' },
      { type: 'linear', out: 120 },
      { type: 'relu' },
      { type: 'linear', out: 84 },
      { type: 'relu' },
      { type: 'linear', out: 10 },
    ],
    defaults: { optimizer: 'adam', lr: 1e-3, batchSize: 128 },
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

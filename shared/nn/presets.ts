/** Named model specs the CLI knows (`--model mlp`), with the hyper-parameters they are meant for. */

import type { LayerModelSpec } from './spec.js';

export const PRESETS: Readonly<Record<string, LayerModelSpec>> = {
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
  /** Character-level LSTM: embedding 64, one LSTM layer of 256, context 64 (Adam 2e-3, batch 32, clip 1). */
  'char-lstm': {
    name: 'char-lstm',
    input: [64],
    layers: [{ type: 'embedding', dim: 64 }, { type: 'lstm', hidden: 256 }, { type: 'linear' }],
    defaults: { optimizer: 'adam', lr: 2e-3, batchSize: 32, clipNorm: 1 },
  },
  /** The same with a GRU. */
  'char-gru': {
    name: 'char-gru',
    input: [64],
    layers: [{ type: 'embedding', dim: 64 }, { type: 'gru', hidden: 256 }, { type: 'linear' }],
    defaults: { optimizer: 'adam', lr: 2e-3, batchSize: 32, clipNorm: 1 },
  },
  /**
   * A tiny GPT: context 64, d_model 128, 4 heads, 2 pre-LayerNorm blocks with a 4x GELU MLP, learned
   * positions, a final LayerNorm, no dropout (AdamW lr 1e-3, weight decay 0.01, batch 32).
   * Token embeddings start at N(0, 0.02²) as in GPT-2, not torch.nn.Embedding's N(0, 1): with
   * unit-variance tokens the residual stream's norm (~11) drowns the 0.02-scale positions, and the
   * model needs ~1,000 steps to learn where it is (held-out 2.33 vs 1.95 nats/char at step 500).
   */
  'gpt-tiny': {
    name: 'gpt-tiny',
    input: [64],
    layers: [
      { type: 'embedding', dim: 128, std: 0.02 },
      { type: 'positional', kind: 'learned' },
      { type: 'transformer', heads: 4, mlpRatio: 4 },
      { type: 'transformer', heads: 4, mlpRatio: 4 },
      { type: 'layernorm' },
      { type: 'linear' },
    ],
    defaults: { optimizer: 'adamw', lr: 1e-3, batchSize: 32, weightDecay: 0.01 },
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

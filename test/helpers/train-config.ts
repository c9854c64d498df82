/** The MLP-on-Fashion-MNIST training settings most tests start from (Adam 1e-3, batch 128, seed 1). */

import { PRESETS } from '../../shared/nn/presets.js';
import type { TrainConfig } from '../../shared/train/single-process.js';

export function mlpTrainConfig(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    model: PRESETS.mlp,
    dataset: 'fashion-mnist',
    epochs: 1,
    batchSize: 128,
    optimizer: 'adam',
    lr: 1e-3,
    schedule: 'constant',
    warmupSteps: 0,
    labelSmoothing: 0,
    seed: 1,
    ...overrides,
  };
}

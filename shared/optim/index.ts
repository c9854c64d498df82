/** Optimizers, gradient clipping and learning-rate schedules over flat Float32Array parameters. */

export type { Optimizer, OptimizerKind, OptimizerStateDict, ParamSlot } from './types.js';
export { SGD, type SgdOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { clipGradNorm, type HasGrad } from './clip.js';
export { constantLr, cosineLr, linearWarmup, stepLr, type LrSchedule } from './schedule.js';
export {
  createOptimizer,
  createSchedule,
  OPTIMIZER_NAMES,
  parseOptimizerName,
  parseScheduleName,
  SCHEDULE_NAMES,
  type OptimizerName,
  type OptimizerOptions,
  type ScheduleName,
  type ScheduleOptions,
} from './factory.js';

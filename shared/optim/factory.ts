/**
 * Builds optimizers and learning-rate schedules from names and plain options, as a CLI or a run
 * config gives them. Unknown names, and options that do not apply to the chosen optimizer, are
 * errors rather than silently ignored.
 */

import { Adam, AdamW } from './adam.js';
import { constantLr, cosineLr, linearWarmup, stepLr, type LrSchedule } from './schedule.js';
import { SGD } from './sgd.js';
import type { Optimizer, ParamSlot } from './types.js';
import type { VectorOps } from './vector-ops.js';

export const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

export const SCHEDULE_NAMES = ['constant', 'step', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface OptimizerOptions {
  readonly lr: number;
  /** SGD only. */
  readonly momentum?: number;
  /** SGD only. */
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
  /** Adam and AdamW only. */
  readonly betas?: readonly [number, number];
  /** Adam and AdamW only. */
  readonly eps?: number;
  /** Fast kernels and allocator of the backend the parameters live on (Adam and AdamW use them). */
  readonly vectorOps?: VectorOps;
}

export interface ScheduleOptions {
  readonly base: number;
  /** Total optimizer steps of the run (the cosine's length). */
  readonly totalSteps: number;
  /** 'step' only: steps between decays. */
  readonly stepSize?: number;
  /** 'step' only: decay factor, default 0.1 (as PyTorch StepLR). */
  readonly gamma?: number;
  /** 'cosine' only: the final rate, default 0. */
  readonly minLr?: number;
  /** When > 0, a linear warmup (see linearWarmup) over this many steps wraps the schedule. */
  readonly warmupSteps?: number;
}

export function parseOptimizerName(name: string): OptimizerName {
  const known: readonly string[] = OPTIMIZER_NAMES;
  if (!known.includes(name)) throw new Error(`unknown optimizer '${name}' (known: ${OPTIMIZER_NAMES.join(', ')})`);
  return name as OptimizerName;
}

export function parseScheduleName(name: string): ScheduleName {
  const known: readonly string[] = SCHEDULE_NAMES;
  if (!known.includes(name)) throw new Error(`unknown learning-rate schedule '${name}' (known: ${SCHEDULE_NAMES.join(', ')})`);
  return name as ScheduleName;
}

function rejectOptions(what: string, options: object, names: readonly string[]): void {
  const given = names.filter((n) => (options as Record<string, unknown>)[n] !== undefined);
  if (given.length > 0) throw new Error(`option${given.length > 1 ? 's' : ''} ${given.join(', ')} do${given.length > 1 ? '' : 'es'} not apply to ${what}`);
}

export function createOptimizer(name: OptimizerName, params: readonly ParamSlot[], options: OptimizerOptions): Optimizer {
  switch (parseOptimizerName(name)) {
    case 'sgd':
      rejectOptions("optimizer 'sgd'", options, ['betas', 'eps']);
      return new SGD(params, { lr: options.lr, momentum: options.momentum, nesterov: options.nesterov, weightDecay: options.weightDecay });
    case 'adam':
      rejectOptions("optimizer 'adam'", options, ['momentum', 'nesterov']);
      return new Adam(params, { lr: options.lr, betas: options.betas, eps: options.eps, weightDecay: options.weightDecay, vectorOps: options.vectorOps });
    case 'adamw':
      rejectOptions("optimizer 'adamw'", options, ['momentum', 'nesterov']);
      return new AdamW(params, { lr: options.lr, betas: options.betas, eps: options.eps, weightDecay: options.weightDecay, vectorOps: options.vectorOps });
  }
}

export function createSchedule(name: ScheduleName, options: ScheduleOptions): LrSchedule {
  let schedule: LrSchedule;
  switch (parseScheduleName(name)) {
    case 'constant':
      rejectOptions("schedule 'constant'", options, ['stepSize', 'gamma', 'minLr']);
      schedule = constantLr(options.base);
      break;
    case 'step':
      rejectOptions("schedule 'step'", options, ['minLr']);
      if (options.stepSize === undefined) throw new Error("schedule 'step' needs stepSize");
      schedule = stepLr(options.base, options.stepSize, options.gamma ?? 0.1);
      break;
    case 'cosine':
      rejectOptions("schedule 'cosine'", options, ['stepSize', 'gamma']);
      schedule = cosineLr(options.base, options.totalSteps, options.minLr ?? 0);
      break;
  }
  const warmup = options.warmupSteps ?? 0;
  if (!Number.isSafeInteger(warmup) || warmup < 0) throw new RangeError(`createSchedule: warmupSteps must be an integer >= 0, got ${warmup}`);
  return warmup > 0 ? linearWarmup(warmup, schedule) : schedule;
}

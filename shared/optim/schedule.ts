/**
 * Learning-rate schedules as pure functions of the optimizer step (counted from 0: lrAt(0) is the
 * rate for the first step). Closed forms of PyTorch's StepLR, CosineAnnealingLR and LinearLR, so a
 * resumed run only needs the step count, not scheduler state.
 */

export interface LrSchedule {
  lrAt(step: number): number;
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`LrSchedule: step must be a non-negative integer, got ${step}`);
}

function checkRate(who: string, name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${who}: ${name} must be a finite number >= 0, got ${value}`);
}

function checkCount(who: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${who}: ${name} must be an integer >= 1, got ${value}`);
}

/** The same rate at every step. */
export function constantLr(lr: number): LrSchedule {
  checkRate('constantLr', 'lr', lr);
  return {
    lrAt(step) {
      checkStep(step);
      return lr;
    },
  };
}

/** base·gamma^⌊step/stepSize⌋ (PyTorch StepLR). */
export function stepLr(base: number, stepSize: number, gamma: number): LrSchedule {
  checkRate('stepLr', 'base', base);
  checkCount('stepLr', 'stepSize', stepSize);
  checkRate('stepLr', 'gamma', gamma);
  return {
    lrAt(step) {
      checkStep(step);
      return base * Math.pow(gamma, Math.floor(step / stepSize));
    },
  };
}

/**
 * Half a cosine from base down to minLr over totalSteps (PyTorch CosineAnnealingLR with
 * T_max = totalSteps): minLr + (base − minLr)·(1 + cos(π·step/totalSteps))/2. Past totalSteps it
 * stays at minLr (PyTorch would climb back up along the cosine).
 */
export function cosineLr(base: number, totalSteps: number, minLr = 0): LrSchedule {
  checkRate('cosineLr', 'base', base);
  checkCount('cosineLr', 'totalSteps', totalSteps);
  checkRate('cosineLr', 'minLr', minLr);
  if (minLr > base) throw new RangeError(`cosineLr: minLr ${minLr} is above base ${base}`);
  return {
    lrAt(step) {
      checkStep(step);
      const t = Math.min(step, totalSteps);
      return minLr + ((base - minLr) * (1 + Math.cos((Math.PI * t) / totalSteps))) / 2;
    },
  };
}

/**
 * Linear warmup in the style of PyTorch's LinearLR, multiplied onto an inner schedule (like
 * ChainedScheduler([LinearLR(start_factor, end_factor=1, total_iters=warmupSteps), inner])):
 *
 *   lrAt(t) = inner.lrAt(t) · (s + (1 − s)·min(t, warmupSteps)/warmupSteps)
 *
 * so step 0 runs at s·inner, the factor grows by (1 − s)/warmupSteps per step and reaches 1 at step
 * warmupSteps. The inner schedule sees the same step (it is not delayed by the warmup). The start
 * factor s defaults to 1/warmupSteps, i.e. the ramp starts at base/warmupSteps.
 */
export function linearWarmup(warmupSteps: number, inner: LrSchedule, startFactor = 1 / warmupSteps): LrSchedule {
  checkCount('linearWarmup', 'warmupSteps', warmupSteps);
  if (!Number.isFinite(startFactor) || startFactor <= 0 || startFactor > 1) {
    throw new RangeError(`linearWarmup: startFactor must be in (0, 1], got ${startFactor}`);
  }
  return {
    lrAt(step) {
      checkStep(step);
      const factor = startFactor + ((1 - startFactor) * Math.min(step, warmupSteps)) / warmupSteps;
      return inner.lrAt(step) * factor;
    },
  };
}

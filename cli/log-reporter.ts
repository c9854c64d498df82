/**
 * Training progress as structured log events, for services whose output goes to a log collector
 * (the `coordinator` command off a terminal): `progress` at most every `everyMs` (and at the last
 * step), `epoch` after each evaluation, each a JSON line with named fields rather than prose.
 */

import type { Logger } from '../shared/util/log.js';
import type { EpochEvent, StepEvent, TrainReporter } from '../shared/train/single-process.js';

export function createLogReporter(log: Logger, everyMs = 5000): TrainReporter {
  let lastLog = 0;
  return {
    step(e: StepEvent): void {
      const now = Date.now();
      if (now - lastLog < everyMs && e.step !== e.totalSteps) return;
      lastLog = now;
      log.info('progress', { step: e.step, totalSteps: e.totalSteps, epoch: e.epoch + 1, loss: e.loss, lr: e.lr, samplesPerSecond: Math.round(e.samplesPerSecond) });
    },
    epoch(e: EpochEvent): void {
      log.info('epoch', {
        epoch: e.epoch + 1,
        trainLoss: e.trainLoss,
        trainAccuracy: e.trainAccuracy,
        ...(e.val ? { valLoss: e.val.loss, valAccuracy: e.val.accuracy } : {}),
        testLoss: e.test.loss,
        testAccuracy: e.test.accuracy,
        seconds: e.seconds,
        rssBytes: e.rssBytes,
      });
    },
  };
}

/**
 * What a run minimises: cross-entropy over class labels (classification), or mean squared error
 * or Huber loss over float targets (regression). The loss decides the task: a regression loss
 * opens a CSV's label column as numeric targets, and its figures are the loss and the RMSE
 * instead of the loss and the accuracy.
 */

import type { Dataset, DatasetTask } from '../data/dataset.js';

export const LOSS_NAMES = ['cross-entropy', 'mse', 'huber'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export interface Objective {
  readonly loss: LossName;
  /** cross-entropy: ε of the smoothed target (default 0). */
  readonly labelSmoothing?: number;
  /** huber: where the squared error turns linear (default 1, as torch.nn.HuberLoss). */
  readonly huberDelta?: number;
}

/** The settings a run names its objective by (TrainConfig has them). */
export interface ObjectiveSettings {
  readonly loss?: LossName;
  readonly labelSmoothing?: number;
  readonly huberDelta?: number;
}

export function isRegressionLoss(loss: LossName | undefined): boolean {
  return loss === 'mse' || loss === 'huber';
}

/** The task a loss trains for: what a dataset is opened as. */
export function taskOfLoss(loss: LossName | undefined): DatasetTask {
  return isRegressionLoss(loss) ? 'regression' : 'classification';
}

/** A label-smoothing number (the historical argument) or an objective, as an objective. */
export function asObjective(objective: number | Objective): Objective {
  return typeof objective === 'number' ? { loss: 'cross-entropy', labelSmoothing: objective } : objective;
}

/**
 * The objective for training on `dataset`: the named loss, else the dataset's own (mse for a
 * regression dataset, cross-entropy otherwise); a loss of the other task is refused in one line.
 */
export function objectiveFor(dataset: Pick<Dataset, 'name' | 'task'>, settings: ObjectiveSettings): Objective {
  const task = dataset.task ?? 'classification';
  const loss = settings.loss ?? (task === 'regression' ? 'mse' : 'cross-entropy');
  if (taskOfLoss(loss) !== task) {
    throw new Error(task === 'regression' ? `--loss ${loss}: ${dataset.name} holds regression targets; use --loss mse or huber` : `--loss ${loss} is a regression loss, but ${dataset.name} holds class labels (a csv: dataset's --label column is read as numeric targets when the loss is mse or huber)`);
  }
  if (loss === 'cross-entropy') return { loss, labelSmoothing: settings.labelSmoothing ?? 0 };
  if ((settings.labelSmoothing ?? 0) > 0) throw new Error(`--label-smoothing ${settings.labelSmoothing} applies to cross-entropy only, not --loss ${loss}`);
  if (loss === 'huber') {
    const delta = settings.huberDelta ?? 1;
    if (!(delta > 0) || !Number.isFinite(delta)) throw new Error(`--huber-delta ${delta}: must be a positive number`);
    return { loss, huberDelta: delta };
  }
  return { loss };
}

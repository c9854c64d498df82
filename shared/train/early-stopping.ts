/**
 * Early stopping on the validation loss: remembers the parameters of the best epoch (a copy of
 * every slot's values) and says stop once `patience` epochs in a row have not improved on it.
 */

import type { ParamSlot } from '../optim/types.js';

export class EarlyStopping {
  private best = Infinity;
  private bestEpoch = -1;
  private bestValues: Float32Array[] | null = null;
  private sinceBest = 0;

  constructor(readonly patience: number) {
    if (!Number.isInteger(patience) || patience < 1) throw new RangeError(`early-stopping patience must be a positive integer, got ${patience}`);
  }

  get bestLoss(): number {
    return this.best;
  }

  get bestEpochIndex(): number {
    return this.bestEpoch;
  }

  /** Records an epoch's validation loss; true when training should stop. */
  observe(loss: number, slots: readonly ParamSlot[], epoch: number): boolean {
    if (loss < this.best) {
      this.best = loss;
      this.bestEpoch = epoch;
      this.sinceBest = 0;
      this.bestValues = slots.map((s, i) => {
        const keep = this.bestValues?.[i] ?? new Float32Array(s.value.length);
        keep.set(s.value);
        return keep;
      });
      return false;
    }
    this.sinceBest++;
    return this.sinceBest >= this.patience;
  }

  /** Puts the best epoch's parameters back; false if the last epoch was already the best. */
  restoreBest(slots: readonly ParamSlot[]): boolean {
    if (!this.bestValues || this.sinceBest === 0) return false;
    slots.forEach((s, i) => s.value.set(this.bestValues![i]));
    return true;
  }
}

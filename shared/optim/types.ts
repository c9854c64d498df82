/**
 * The contract shared by every optimizer. Optimizers work on flat host Float32Arrays rather than
 * autograd tensors: a distributed coordinator holds parameters as plain arrays and averages the
 * workers' gradients into them, and the single-process trainer hands over the tensors' storage.
 */

/** One parameter: its values (updated in place) and its gradient (null: skipped by step()). */
export interface ParamSlot {
  readonly name: string;
  readonly value: Float32Array;
  grad: Float32Array | null;
}

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

/** A copy of an optimizer's state; JSON-able except the Float32Arrays in `buffers`. */
export interface OptimizerStateDict {
  readonly kind: OptimizerKind;
  /** Optimizer steps taken (calls to step()). */
  readonly step: number;
  /** Hyperparameters: lr, momentum, betas, eps, weightDecay, ... */
  readonly hyper: Record<string, number | boolean>;
  /** Per-parameter state keyed `${paramIndex}.${bufferName}`, e.g. "3.exp_avg". */
  readonly buffers: Record<string, Float32Array>;
}

export interface Optimizer {
  readonly params: readonly ParamSlot[];
  /** Learning rate; settable (schedules set it before each step). */
  lr: number;
  /** Updates the parameters in place; a slot whose grad is null is skipped, as in PyTorch. */
  step(): void;
  /**
   * The update of the slots in [start, end) alone, as step() would do it (a coordinator steps
   * each bucket of parameters as its gradients complete); countStep() then counts the step once.
   * step() is stepRange over every slot, then countStep().
   */
  stepRange(start: number, end: number): void;
  countStep(): void;
  /** Fills every non-null grad with 0 (no allocation, buffers kept). */
  zeroGrad(): void;
  /** A deep copy of the state. */
  stateDict(): OptimizerStateDict;
  /** Replaces the state (copying it) after validating kind, hyperparameters, buffer names and lengths. */
  loadStateDict(state: OptimizerStateDict): void;
}

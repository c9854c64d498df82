/**
 * Stochastic gradient descent with PyTorch's torch.optim.SGD semantics (momentum, dampening,
 * Nesterov, coupled weight decay). For each parameter p with gradient g:
 *
 *   g ← g + wd·p                                  (coupled L2 weight decay, when wd ≠ 0)
 *   b ← g on the parameter's first step,          (momentum buffer, when μ ≠ 0; note: no
 *       else b ← μ·b + (1 − dampening)·g           dampening on the first step, as in PyTorch)
 *   d ← g + μ·b if nesterov, else b               (d = g when μ = 0)
 *   p ← p − lr·d
 *
 * Intermediates are float64 locals; only the buffer and the parameter are rounded to float32 when
 * stored, so results can differ from PyTorch's all-float32 arithmetic in the last bits.
 */

import type { Optimizer, OptimizerStateDict, ParamSlot } from './types.js';
import { sgdUpdateReference } from './update-kernels.js';
import { checkBoolean, checkBuffers, checkGrad, checkNumber, checkParams, checkStateHeader, zeroGrads } from './validate.js';

export interface SgdOptions {
  readonly lr: number;
  readonly momentum?: number;
  readonly dampening?: number;
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
}

const WHO = 'SGD';
const HYPER_TYPES = { lr: 'number', momentum: 'number', dampening: 'number', nesterov: 'boolean', weightDecay: 'number' } as const;

interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

function checkHyper(h: SgdHyper): SgdHyper {
  checkNumber(WHO, 'lr', h.lr, { min: 0 });
  checkNumber(WHO, 'momentum', h.momentum, { min: 0 });
  checkNumber(WHO, 'dampening', h.dampening);
  checkBoolean(WHO, 'nesterov', h.nesterov);
  checkNumber(WHO, 'weightDecay', h.weightDecay, { min: 0 });
  if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
    throw new RangeError(`${WHO}: nesterov requires momentum > 0 and dampening 0, got momentum ${h.momentum} and dampening ${h.dampening}`);
  }
  return h;
}

export class SGD implements Optimizer {
  readonly params: readonly ParamSlot[];
  private hyper: SgdHyper;
  private steps = 0;
  /** Momentum buffer per parameter; null until the parameter's first step with momentum. */
  private readonly momentumBuffers: (Float32Array | null)[];

  constructor(params: readonly ParamSlot[], options: SgdOptions) {
    this.params = checkParams(WHO, params);
    this.hyper = checkHyper({
      lr: options.lr,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
      weightDecay: options.weightDecay ?? 0,
    });
    this.momentumBuffers = this.params.map(() => null);
  }

  get lr(): number {
    return this.hyper.lr;
  }

  set lr(value: number) {
    this.hyper.lr = checkNumber(WHO, 'lr', value, { min: 0 });
  }

  step(): void {
    this.stepRange(0, this.params.length);
    this.countStep();
  }

  /** One step's update of the slots in [start, end) only (a bucket); countStep() ends the step. */
  stepRange(start: number, end: number): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this.hyper;
    const keep = 1 - dampening;
    // Check every grad before touching any parameter, so a bad one leaves the step undone.
    this.params.forEach((slot, index) => index >= start && index < end && checkGrad(WHO, slot, index));
    this.params.forEach((slot, index) => {
      if (index < start || index >= end) return;
      const g = slot.grad;
      if (g === null) return;
      const p = slot.value;
      const n = p.length;
      if (momentum === 0) return sgdUpdateReference(p, g, null, { lr, momentum, keep, nesterov, weightDecay, first: false });
      let buf = this.momentumBuffers[index];
      const first = buf === null;
      if (buf === null) this.momentumBuffers[index] = buf = new Float32Array(n);
      sgdUpdateReference(p, g, buf, { lr, momentum, keep, nesterov, weightDecay, first });
    });
  }

  countStep(): void {
    this.steps++;
  }

  zeroGrad(): void {
    zeroGrads(this.params);
  }

  stateDict(): OptimizerStateDict {
    const buffers: Record<string, Float32Array> = {};
    this.momentumBuffers.forEach((buf, i) => {
      if (buf !== null) buffers[`${i}.momentum_buffer`] = buf.slice();
    });
    return { kind: 'sgd', step: this.steps, hyper: { ...this.hyper }, buffers };
  }

  loadStateDict(state: OptimizerStateDict): void {
    checkStateHeader(WHO, 'sgd', state, HYPER_TYPES);
    const h = state.hyper;
    const hyper = checkHyper({
      lr: h.lr as number,
      momentum: h.momentum as number,
      dampening: h.dampening as number,
      nesterov: h.nesterov as boolean,
      weightDecay: h.weightDecay as number,
    });
    const byParam = checkBuffers(WHO, state.buffers, this.params, { momentum_buffer: (i) => this.params[i].value.length });
    // Everything is validated; only now replace the state, so a rejected dict changes nothing.
    this.hyper = hyper;
    this.steps = state.step;
    this.momentumBuffers.fill(null);
    for (const [i, group] of byParam) this.momentumBuffers[i] = group.get('momentum_buffer')?.slice() ?? null;
  }
}

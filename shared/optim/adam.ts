/**
 * Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter) with PyTorch's torch.optim semantics. For each
 * parameter p with gradient g, at the parameter's own step count t (1 on its first update):
 *
 *   Adam:  g ← g + wd·p                (coupled L2 weight decay, folded into the gradient)
 *   AdamW: p ← p·(1 − lr·wd)           (decoupled weight decay, applied before the Adam update)
 *   m ← β1·m + (1 − β1)·g              v ← β2·v + (1 − β2)·g²
 *   m̂ = m / (1 − β1^t)                 v̂ = v / (1 − β2^t)
 *   p ← p − lr·m̂ / (√v̂ + eps)
 *
 * computed as PyTorch does: step size lr/(1 − β1^t) and denominator √v/√(1 − β2^t) + eps, so eps is
 * added to the bias-corrected root (not to √v). The bias corrections are float64 (Math.pow of the
 * integer step, so a restored optimizer reproduces them exactly); float32 would lose them for β2
 * close to 1. A parameter whose grad is null is skipped and its t does not advance, as in PyTorch;
 * t is saved per parameter as the buffer `<i>.step` (a 1-element Float32Array, like PyTorch's
 * float32 step tensor, exact up to 2^24 steps).
 */

import type { Optimizer, OptimizerKind, OptimizerStateDict, ParamSlot } from './types.js';
import type { VectorOps } from './vector-ops.js';
import { adamArgs, adamUpdateReference } from './update-kernels.js';
import { checkBuffers, checkGrad, checkNumber, checkParams, checkStateHeader, checkStepCount, zeroGrads } from './validate.js';

export interface AdamOptions {
  readonly lr: number;
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  /** Adam: coupled L2 (default 0). AdamW: decoupled (default 0.01). */
  readonly weightDecay?: number;
  /** SIMD kernels and their allocator (the wasm backend's); default: the TypeScript loops. */
  readonly vectorOps?: VectorOps;
}

const HYPER_TYPES = { lr: 'number', beta1: 'number', beta2: 'number', eps: 'number', weightDecay: 'number' } as const;

/** Largest per-parameter step a Float32Array holds exactly. */
const MAX_STEP = 2 ** 24;

interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Per-parameter state, created on the parameter's first update. */
interface Moments {
  readonly expAvg: Float32Array;
  readonly expAvgSq: Float32Array;
  step: number;
}

abstract class AdamBase implements Optimizer {
  readonly params: readonly ParamSlot[];
  private hyper: AdamHyper;
  private steps = 0;
  private readonly moments: (Moments | null)[];

  protected constructor(
    private readonly kind: OptimizerKind,
    private readonly who: string,
    private readonly decoupled: boolean,
    params: readonly ParamSlot[],
    options: AdamOptions,
    defaultWeightDecay: number,
  ) {
    this.params = checkParams(who, params);
    const betas = options.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw new RangeError(`${who}: betas must be a pair [beta1, beta2], got ${String(betas)}`);
    this.hyper = this.checkHyper({
      lr: options.lr,
      beta1: betas[0],
      beta2: betas[1],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? defaultWeightDecay,
    });
    this.moments = this.params.map(() => null);
    this.ops = options.vectorOps ?? null;
  }

  private readonly ops: VectorOps | null;

  private alloc(n: number): Float32Array {
    return this.ops ? this.ops.alloc(n) : new Float32Array(n);
  }

  private copy(a: Float32Array): Float32Array {
    const out = this.alloc(a.length);
    out.set(a);
    return out;
  }

  private checkHyper(h: AdamHyper): AdamHyper {
    checkNumber(this.who, 'lr', h.lr, { min: 0 });
    checkNumber(this.who, 'beta1', h.beta1, { min: 0, maxExclusive: 1 });
    checkNumber(this.who, 'beta2', h.beta2, { min: 0, maxExclusive: 1 });
    checkNumber(this.who, 'eps', h.eps, { min: 0 });
    checkNumber(this.who, 'weightDecay', h.weightDecay, { min: 0 });
    return h;
  }

  get lr(): number {
    return this.hyper.lr;
  }

  set lr(value: number) {
    this.hyper.lr = checkNumber(this.who, 'lr', value, { min: 0 });
  }

  step(): void {
    this.stepRange(0, this.params.length);
    this.countStep();
  }

  /** One step's update of the slots in [start, end) only (a bucket); countStep() ends the step. */
  stepRange(start: number, end: number): void {
    const { lr, beta1, beta2, eps, weightDecay } = this.hyper;
    // Check every grad before touching any parameter, so a bad one leaves the step undone.
    this.params.forEach((slot, index) => {
      if (index < start || index >= end) return;
      checkGrad(this.who, slot, index);
      if (slot.grad !== null && (this.moments[index]?.step ?? 0) >= MAX_STEP) {
        throw new RangeError(`${this.who}: parameter ${index} (${slot.name}) reached the step limit ${MAX_STEP}`);
      }
    });
    this.params.forEach((slot, index) => {
      if (index < start || index >= end) return;
      const g = slot.grad;
      if (g === null) return;
      const p = slot.value;
      const n = p.length;
      let state = this.moments[index];
      if (state === null) {
        state = { expAvg: this.alloc(n), expAvgSq: this.alloc(n), step: 0 };
        this.moments[index] = state;
      }
      const t = ++state.step;
      const args = adamArgs(lr, beta1, beta2, eps, weightDecay, this.decoupled, t);
      if (this.ops?.adam(p, g, state.expAvg, state.expAvgSq, args)) return;
      adamUpdateReference(p, g, state.expAvg, state.expAvgSq, args);
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
    this.moments.forEach((state, i) => {
      if (state === null) return;
      buffers[`${i}.exp_avg`] = state.expAvg.slice();
      buffers[`${i}.exp_avg_sq`] = state.expAvgSq.slice();
      buffers[`${i}.step`] = Float32Array.of(state.step);
    });
    return { kind: this.kind, step: this.steps, hyper: { ...this.hyper }, buffers };
  }

  loadStateDict(state: OptimizerStateDict): void {
    const who = this.who;
    checkStateHeader(who, this.kind, state, HYPER_TYPES);
    const h = state.hyper;
    const hyper = this.checkHyper({
      lr: h.lr as number,
      beta1: h.beta1 as number,
      beta2: h.beta2 as number,
      eps: h.eps as number,
      weightDecay: h.weightDecay as number,
    });
    const length = (i: number): number => this.params[i].value.length;
    const byParam = checkBuffers(who, state.buffers, this.params, { exp_avg: length, exp_avg_sq: length, step: () => 1 });
    const moments: (Moments | null)[] = this.params.map(() => null);
    for (const [i, group] of byParam) {
      const expAvg = group.get('exp_avg');
      const expAvgSq = group.get('exp_avg_sq');
      const stepBuffer = group.get('step');
      if (expAvg === undefined || expAvgSq === undefined || stepBuffer === undefined) {
        const missing = ['exp_avg', 'exp_avg_sq', 'step'].filter((name) => !group.has(name)).map((name) => `${i}.${name}`);
        throw new Error(`${who}: state dict has buffers for parameter ${i} but lacks ${missing.join(', ')}`);
      }
      const step = checkStepCount(who, `state dict buffer '${i}.step'`, stepBuffer[0]);
      if (step < 1) throw new RangeError(`${who}: state dict buffer '${i}.step' must be >= 1 when moments are present, got ${step}`);
      moments[i] = { expAvg: this.copy(expAvg), expAvgSq: this.copy(expAvgSq), step };
    }
    // Everything is validated; only now replace the state, so a rejected dict changes nothing.
    this.hyper = hyper;
    this.steps = state.step;
    moments.forEach((m, i) => (this.moments[i] = m));
  }
}

/** Adam with PyTorch semantics; weightDecay (default 0) is coupled L2 added to the gradient. */
export class Adam extends AdamBase {
  constructor(params: readonly ParamSlot[], options: AdamOptions) {
    super('adam', 'Adam', false, params, options, 0);
  }
}

/** AdamW with PyTorch semantics; weightDecay (default 0.01) shrinks p by (1 − lr·wd) before the update. */
export class AdamW extends AdamBase {
  constructor(params: readonly ParamSlot[], options: AdamOptions) {
    super('adamw', 'AdamW', true, params, options, 0.01);
  }
}

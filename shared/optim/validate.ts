/**
 * Argument and state validation shared by the optimizers: parameter slots, hyperparameter ranges,
 * and the `${paramIndex}.${bufferName}` keys of a state dict. Every error names the bad value.
 */

import type { OptimizerKind, OptimizerStateDict, ParamSlot } from './types.js';

/** Checks the slots (non-empty, Float32Array values, grads of matching length) and returns a frozen copy of the list. */
export function checkParams(who: string, params: readonly ParamSlot[]): readonly ParamSlot[] {
  if (!Array.isArray(params) || params.length === 0) {
    throw new RangeError(`${who}: needs a non-empty list of parameters, got ${Array.isArray(params) ? 'an empty list' : typeof params}`);
  }
  const seen = new Map<string, number>();
  params.forEach((slot, i) => {
    if (!(slot.value instanceof Float32Array)) {
      throw new TypeError(`${who}: parameter ${i} (${String(slot.name)}) value must be a Float32Array`);
    }
    const previous = seen.get(slot.name);
    if (previous !== undefined) throw new RangeError(`${who}: parameter name '${slot.name}' appears twice (indices ${previous} and ${i})`);
    seen.set(slot.name, i);
    checkGrad(who, slot, i);
  });
  return Object.freeze([...params]);
}

/** Checks one slot's grad before it is used: null, or a Float32Array as long as the value. */
export function checkGrad(who: string, slot: ParamSlot, index: number): void {
  const g = slot.grad;
  if (g === null) return;
  if (!(g instanceof Float32Array)) {
    throw new TypeError(`${who}: parameter ${index} (${slot.name}) grad must be a Float32Array or null`);
  }
  if (g.length !== slot.value.length) {
    throw new RangeError(`${who}: parameter ${index} (${slot.name}) grad has ${g.length} elements but the value has ${slot.value.length}`);
  }
}

/** Fills every non-null grad with 0. */
export function zeroGrads(params: readonly ParamSlot[]): void {
  for (const slot of params) slot.grad?.fill(0);
}

/** Inclusive bounds `min` and `max`, and an exclusive upper bound `maxExclusive` (value < maxExclusive). */
export interface Range {
  readonly min?: number;
  readonly max?: number;
  readonly maxExclusive?: number;
}

/** A finite number within the range, else a RangeError naming the hyperparameter and value. */
export function checkNumber(who: string, name: string, value: unknown, range: Range = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${who}: ${name} must be a finite number, got ${String(value)}`);
  }
  if (range.min !== undefined && value < range.min) throw new RangeError(`${who}: ${name} must be >= ${range.min}, got ${value}`);
  if (range.max !== undefined && value > range.max) throw new RangeError(`${who}: ${name} must be <= ${range.max}, got ${value}`);
  if (range.maxExclusive !== undefined && value >= range.maxExclusive) {
    throw new RangeError(`${who}: ${name} must be < ${range.maxExclusive}, got ${value}`);
  }
  return value;
}

export function checkBoolean(who: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${who}: ${name} must be a boolean, got ${String(value)}`);
  return value;
}

/** A step counter: a non-negative safe integer. */
export function checkStepCount(who: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${who}: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Checks the parts of a state dict common to all optimizers: the object shape, the kind, the step
 * count, and that `hyper` has exactly the expected keys with the expected types.
 */
export function checkStateHeader(
  who: string,
  kind: OptimizerKind,
  state: OptimizerStateDict,
  hyperTypes: Readonly<Record<string, 'number' | 'boolean'>>,
): void {
  if (typeof state !== 'object' || state === null) throw new TypeError(`${who}: state dict must be an object, got ${String(state)}`);
  if (state.kind !== kind) throw new Error(`${who}: state dict is for optimizer kind '${String(state.kind)}', expected '${kind}'`);
  checkStepCount(who, 'state dict step', state.step);
  if (typeof state.hyper !== 'object' || state.hyper === null) throw new TypeError(`${who}: state dict hyper must be an object`);
  if (typeof state.buffers !== 'object' || state.buffers === null) throw new TypeError(`${who}: state dict buffers must be an object`);
  for (const [key, type] of Object.entries(hyperTypes)) {
    if (!Object.hasOwn(state.hyper, key)) throw new Error(`${who}: state dict hyper lacks '${key}'`);
    if (typeof state.hyper[key] !== type) {
      throw new TypeError(`${who}: state dict hyper '${key}' must be a ${type}, got ${String(state.hyper[key])}`);
    }
  }
  for (const key of Object.keys(state.hyper)) {
    if (!Object.hasOwn(hyperTypes, key)) {
      throw new Error(`${who}: state dict hyper has unknown key '${key}' (known: ${Object.keys(hyperTypes).join(', ')})`);
    }
  }
}

/**
 * Splits and checks every buffer key of a state dict against the known buffer names and their
 * expected lengths (a function of the parameter index). Returns the buffers grouped by parameter.
 */
export function checkBuffers(
  who: string,
  buffers: Readonly<Record<string, Float32Array>>,
  params: readonly ParamSlot[],
  lengthOf: Readonly<Record<string, (paramIndex: number) => number>>,
): Map<number, Map<string, Float32Array>> {
  const byParam = new Map<number, Map<string, Float32Array>>();
  for (const [key, buffer] of Object.entries(buffers)) {
    const match = /^(0|[1-9][0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(key);
    if (match === null) throw new Error(`${who}: state dict buffer key '${key}' is not of the form '<paramIndex>.<bufferName>'`);
    const index = Number(match[1]);
    const name = match[2];
    if (index >= params.length) {
      throw new RangeError(`${who}: state dict buffer '${key}' refers to parameter ${index}, but the optimizer has ${params.length}`);
    }
    const expectedLength = Object.hasOwn(lengthOf, name) ? lengthOf[name] : undefined;
    if (expectedLength === undefined) {
      throw new Error(`${who}: state dict buffer '${key}' has unknown name '${name}' (known: ${Object.keys(lengthOf).join(', ')})`);
    }
    if (!(buffer instanceof Float32Array)) throw new TypeError(`${who}: state dict buffer '${key}' must be a Float32Array`);
    const want = expectedLength(index);
    if (buffer.length !== want) {
      throw new RangeError(`${who}: state dict buffer '${key}' has ${buffer.length} elements, expected ${want} (parameter ${params[index].name})`);
    }
    let group = byParam.get(index);
    if (group === undefined) byParam.set(index, (group = new Map()));
    group.set(name, buffer);
  }
  return byParam;
}

/**
 * Elementwise primitives with NumPy broadcasting. Each op's backward rule sits right under its
 * forward; `sumTo` folds a gradient back to a broadcast input's shape.
 */

import type { BinaryOp, UnaryOp } from '../backend/backend.js';
import { broadcastShapes } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkCompatible, constant, lift, record, type BackwardRule } from './record.js';
import { sumTo } from './reduce.js';

type Operand = Tensor | number;

function binary(op: BinaryOp, x: Operand, y: Operand, rule: (a: Tensor, b: Tensor, out: Tensor) => BackwardRule): Tensor {
  const like = typeof x === 'number' ? (y as Tensor) : x;
  const a = lift(x, like);
  const b = lift(y, like);
  checkCompatible(op, [a, b]);
  const shape = broadcastShapes(a.shape, b.shape);
  const buffer = a.backend.binary(op, a.buffer, a.shape, b.buffer, b.shape, shape);
  let out: Tensor | null = null;
  out = record(op, [a, b], buffer, shape, (g, needed) => rule(a, b, out as Tensor)(g, needed));
  return out;
}

function unary(op: UnaryOp, x: Tensor, rule: (x: Tensor, out: Tensor) => BackwardRule): Tensor {
  let out: Tensor | null = null;
  out = record(op, [x], x.backend.unary(op, x.buffer), x.shape, (g, needed) => rule(x, out as Tensor)(g, needed));
  return out;
}

/** d(a+b) = da + db. */
export function add(x: Operand, y: Operand): Tensor {
  return binary('add', x, y, (a, b) => (g, n) => [n[0] ? sumTo(g, a.shape) : null, n[1] ? sumTo(g, b.shape) : null]);
}

export function sub(x: Operand, y: Operand): Tensor {
  return binary('sub', x, y, (a, b) => (g, n) => [n[0] ? sumTo(g, a.shape) : null, n[1] ? sumTo(neg(g), b.shape) : null]);
}

/** d(ab) = b da + a db. */
export function mul(x: Operand, y: Operand): Tensor {
  return binary('mul', x, y, (a, b) => (g, n) => [n[0] ? sumTo(mul(g, b.detach()), a.shape) : null, n[1] ? sumTo(mul(g, a.detach()), b.shape) : null]);
}

/** d(a/b) = da / b − (a / b²) db; the second term is written −out·g/b to reuse the quotient. */
export function div(x: Operand, y: Operand): Tensor {
  return binary('div', x, y, (a, b, out) => (g, n) => [
    n[0] ? sumTo(div(g, b.detach()), a.shape) : null,
    n[1] ? sumTo(neg(div(mul(g, out.detach()), b.detach())), b.shape) : null,
  ]);
}

/**
 * d(a^b) = b·a^(b−1) da + a^b·ln(a) db. The exponent's gradient is only defined for a > 0; where
 * a ≤ 0 it is taken as 0 (rather than NaN) — a constant exponent, the common case, never asks.
 */
export function pow(x: Operand, y: Operand): Tensor {
  return binary('pow', x, y, (a, b, out) => (g, n) => {
    const ad = a.detach();
    const bd = b.detach();
    return [
      n[0] ? sumTo(mul(g, mul(bd, pow(ad, sub(bd, 1)))), a.shape) : null,
      n[1] ? sumTo(mul(g, where(gt(ad, 0), mul(out.detach(), log(ad)), 0)), b.shape) : null,
    ];
  });
}

export function neg(x: Tensor): Tensor {
  return unary('neg', x, () => (g) => [neg(g)]);
}

/** d e^x = e^x dx: reuses the output. */
export function exp(x: Tensor): Tensor {
  return unary('exp', x, (_, out) => (g) => [mul(g, out.detach())]);
}

export function log(x: Tensor): Tensor {
  return unary('log', x, (a) => (g) => [div(g, a.detach())]);
}

/** d√x = dx / (2√x). */
export function sqrt(x: Tensor): Tensor {
  return unary('sqrt', x, (_, out) => (g) => [div(g, mul(out.detach(), 2))]);
}

/**
 * tanh and sigmoid are primitives rather than compositions of exp: e^x overflows float32 past
 * x ≈ 88, and the composed backward then forms inf/inf = NaN. Their derivatives come from the
 * output alone: tanh' = 1 − y², σ' = y(1 − y).
 */
export function tanh(x: Tensor): Tensor {
  return unary('tanh', x, (_, out) => (g) => {
    const y = out.detach();
    return [mul(g, sub(1, mul(y, y)))];
  });
}

export function sigmoid(x: Tensor): Tensor {
  return unary('sigmoid', x, (_, out) => (g) => {
    const y = out.detach();
    return [mul(g, mul(y, sub(1, y)))];
  });
}

/** d erf(x) = (2/√π) e^(−x²) dx. */
export function erf(x: Tensor): Tensor {
  return unary('erf', x, (a) => (g) => {
    const xd = a.detach();
    return [mul(g, mul(exp(neg(mul(xd, xd))), 2 / Math.sqrt(Math.PI)))];
  });
}

/** d|x| = sign(x) dx (0 at x = 0, as in PyTorch). */
export function abs(x: Tensor): Tensor {
  return unary('abs', x, (a) => (g) => [mul(g, sign(a.detach()))]);
}

/** sign has zero gradient almost everywhere. */
export function sign(x: Tensor): Tensor {
  return constant(x, x.backend.unary('sign', x.buffer), x.shape);
}

function compare(op: BinaryOp, x: Operand, y: Operand): Tensor {
  const like = typeof x === 'number' ? (y as Tensor) : x;
  const a = lift(x, like);
  const b = lift(y, like);
  checkCompatible(op, [a, b]);
  const shape = broadcastShapes(a.shape, b.shape);
  return constant(a, a.backend.binary(op, a.buffer, a.shape, b.buffer, b.shape, shape), shape);
}

/** Comparisons give 1 / 0 masks with no gradient. */
export function gt(x: Operand, y: Operand): Tensor {
  return compare('gt', x, y);
}
export function ge(x: Operand, y: Operand): Tensor {
  return compare('ge', x, y);
}
export function lt(x: Operand, y: Operand): Tensor {
  return compare('gt', y, x);
}
export function le(x: Operand, y: Operand): Tensor {
  return compare('ge', y, x);
}
export function eq(x: Operand, y: Operand): Tensor {
  return compare('eq', x, y);
}

/**
 * cond ? a : b, elementwise with broadcasting. The gradient goes to whichever side was chosen;
 * unlike cond·a + (1−cond)·b, an inf or NaN on the unchosen side cannot leak into the result.
 */
export function where(cond: Tensor, x: Operand, y: Operand): Tensor {
  const a = lift(x, cond);
  const b = lift(y, cond);
  checkCompatible('where', [cond, a, b]);
  const shape = broadcastShapes(cond.shape, a.shape, b.shape);
  const buffer = cond.backend.where(cond.buffer, cond.shape, a.buffer, a.shape, b.buffer, b.shape, shape);
  return record('where', [a, b], buffer, shape, (g, n) => [
    n[0] ? sumTo(where(cond, g, 0), a.shape) : null,
    n[1] ? sumTo(where(cond, 0, g), b.shape) : null,
  ]);
}

/**
 * Parsers for numeric and enumerated flag values. Each throws commander's InvalidArgumentError, so
 * a bad value exits non-zero with one line naming the flag and the value.
 */

import { InvalidArgumentError } from 'commander';

function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number.`);
  return n;
}

export function positiveInt(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive integer.`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative integer.`);
  return n;
}

export function positiveFloat(value: string): number {
  const n = number(value);
  if (n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive number.`);
  return n;
}

export function nonNegativeFloat(value: string): number {
  const n = number(value);
  if (n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative number.`);
  return n;
}

/** A fraction in [0, 1). */
export function fraction(value: string): number {
  const n = number(value);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`'${value}' is not in [0, 1).`);
  return n;
}

export function integer(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`'${value}' is not an integer.`);
  return n;
}

/** A TCP port, 0 (any free port) to 65535. */
export function port(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`'${value}' is not a port (an integer from 0 to 65535; 0 picks a free port).`);
  return n;
}

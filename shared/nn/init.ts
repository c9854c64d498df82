/**
 * Weight initialisation from a seeded RNG, with PyTorch's definitions of fan-in / fan-out
 * (for a weight [out, in, ...kernel]: fanIn = in·∏kernel, fanOut = out·∏kernel) and gains.
 */

import { tensor } from '../ops/create.js';
import { shapeSize, type Shape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/random.js';

export type Nonlinearity = 'linear' | 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid';

export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new RangeError(`fan-in/fan-out need a weight of rank >= 2, got rank ${shape.length}`);
  const receptive = shapeSize(shape.slice(2));
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export function gain(nonlinearity: Nonlinearity, negativeSlope = 0.01): number {
  switch (nonlinearity) {
    case 'linear':
    case 'sigmoid':
      return 1;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
    case 'tanh':
      return 5 / 3;
  }
}

export function uniformTensor(shape: Shape, bound: number, rng: Rng): Tensor {
  const a = new Float32Array(shapeSize(shape));
  for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
  return tensor(a, shape);
}

/** `std` for a normal initialisation, checked (finite, >= 0); errors name `layer`. */
export function checkedStd(layer: string, std: number): number {
  if (!(std >= 0 && Number.isFinite(std))) throw new RangeError(`${layer}: std must be a finite number >= 0, got ${std}`);
  return std;
}

export function normalTensor(shape: Shape, std: number, rng: Rng): Tensor {
  const a = new Float32Array(shapeSize(shape));
  for (let i = 0; i < a.length; i++) a[i] = std * rng.normal();
  return tensor(a, shape);
}

/** He et al.: U(±gain·√(3/fanIn)). */
export function kaimingUniform(shape: Shape, rng: Rng, nonlinearity: Nonlinearity = 'leaky_relu', negativeSlope = Math.sqrt(5)): Tensor {
  return uniformTensor(shape, gain(nonlinearity, negativeSlope) * Math.sqrt(3 / fans(shape).fanIn), rng);
}

/** He et al.: N(0, (gain/√fanIn)²). */
export function kaimingNormal(shape: Shape, rng: Rng, nonlinearity: Nonlinearity = 'relu'): Tensor {
  return normalTensor(shape, gain(nonlinearity) / Math.sqrt(fans(shape).fanIn), rng);
}

/** Glorot & Bengio: U(±gain·√(6/(fanIn+fanOut))). */
export function xavierUniform(shape: Shape, rng: Rng, g = 1): Tensor {
  const { fanIn, fanOut } = fans(shape);
  return uniformTensor(shape, g * Math.sqrt(6 / (fanIn + fanOut)), rng);
}

export function xavierNormal(shape: Shape, rng: Rng, g = 1): Tensor {
  const { fanIn, fanOut } = fans(shape);
  return normalTensor(shape, g * Math.sqrt(2 / (fanIn + fanOut)), rng);
}

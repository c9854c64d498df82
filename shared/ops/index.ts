/** The op API: every tensor operation meshgrad has, as plain functions. */

export * from './create.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './layout.js';
export * from './matmul.js';
export * from './activations.js';
export * from './losses.js';
export { noGrad, enableGrad, isGradEnabled } from '../autograd/grad-mode.js';
export * from './dropout.js';
export * from './conv.js';

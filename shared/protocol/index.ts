/** The coordinator–worker wire protocol. */

export * from './errors.js';
export * from './messages.js';
export * from './codec.js';
export * from './wire-tensor.js';
export * from './auth.js';
export * from './wire-compressed.js';
export * from './compress.js';

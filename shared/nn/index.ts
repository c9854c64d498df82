/** The nn API: modules, layers, initialisation and model specs. */

export * from './module.js';
export * from './layers.js';
export * from './init.js';
export * from './spec.js';
export * from './presets.js';
export * from './resolve.js';
export * from './normalization.js';
export * from './recurrent.js';
export * from './attention.js';

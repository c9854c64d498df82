/**
 * Which backend new tensors go to when the caller does not say. It starts as the CPU reference
 * backend; a process that wants the fast one (the CLI, by --backend) installs it once at start-up.
 * float64 tensors always go to the CPU backend, the only one that holds them.
 */

import type { DType } from '../tensor/dtype.js';
import type { Backend } from './backend.js';
import { cpu } from './cpu/cpu-backend.js';

let current: Backend = cpu;

export function defaultBackend(dtype: DType = 'float32'): Backend {
  return dtype === 'float64' ? cpu : current;
}

export function setDefaultBackend(backend: Backend): void {
  current = backend;
}

/**
 * Which backend new tensors go to when the caller does not say, and which backends can hold which
 * dtypes. The default starts as the CPU reference backend; a process that wants the fast one (the
 * CLI, by --backend) installs it once at start-up. float64 tensors created without a backend go to
 * the CPU backend, the only one that holds them; a float64 request that *names* another backend
 * (`resolveBackend`, `Module.to`, a layer's `backend` option) is an error, never a silent detour.
 */

import type { DType } from '../tensor/dtype.js';
import type { Backend } from './backend.js';
import { cpu, CpuBackend } from './cpu/cpu-backend.js';

let current: Backend = cpu;

/** The backend for a tensor of `dtype` when none is named: float64 always on the CPU backend. */
export function defaultBackend(dtype: DType = 'float32'): Backend {
  return dtype === 'float64' ? cpu : current;
}

export function setDefaultBackend(backend: Backend): void {
  current = backend;
}

/** Whether `backend` can hold tensors of `dtype`: every backend holds float32, only the CPU one float64. */
export function backendHolds(backend: Backend, dtype: DType): boolean {
  return dtype === 'float32' || backend instanceof CpuBackend;
}

/** Throws a one-line error naming the backend when it cannot hold `dtype`. */
export function checkBackendHolds(backend: Backend, dtype: DType, who = 'tensor'): void {
  if (!backendHolds(backend, dtype)) {
    throw new TypeError(`${who}: the '${backend.name}' backend cannot hold ${dtype} (only the cpu backend holds float64); use float32 there, or the cpu backend for ${dtype}`);
  }
}

/**
 * The backend for an explicit request: `backend` when given (checked to hold `dtype`), else the
 * default for `dtype`. `who` names the caller in the error.
 */
export function resolveBackend(dtype: DType, backend?: Backend, who?: string): Backend {
  if (backend === undefined) return defaultBackend(dtype);
  checkBackendHolds(backend, dtype, who);
  return backend;
}

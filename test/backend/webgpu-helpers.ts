// Shared by the WebGPU tests: opens the backend once, or says why it cannot (no adapter, no
// package), so each suite is skipped with that reason printed rather than silently.
import { WebGpuBackend } from '../../shared/backend/webgpu/webgpu-backend.js';
import { probeGpu } from '../../shared/backend/webgpu/gpu-loader.js';
import * as F from '../../shared/ops/index.js';
import type { Tensor } from '../../shared/tensor/tensor.js';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';

const probe = await probeGpu();
export const gpuSkipReason: string | null = probe.reason;
if (gpuSkipReason !== null) console.warn(`WebGPU tests skipped: ${gpuSkipReason}`);
export const gpu: WebGpuBackend | null = gpuSkipReason === null ? await WebGpuBackend.create() : null;

/** The GPU backend; only called inside suites that run when it exists. */
export function webgpu(): WebGpuBackend {
  if (gpu === null) throw new Error(`no WebGPU: ${gpuSkipReason}`);
  return gpu;
}

/** A float32 copy of a host tensor on the GPU. */
export function onGpu(t: Tensor): Tensor {
  return F.tensor(Float32Array.from(t.dataSync()), t.shape, { backend: webgpu() });
}

/** A GPU tensor's values on the host. */
export async function host(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/** Random float32 data on the CPU backend. */
export function randomTensor(shape: readonly number[], seed: number, scale = 1): Tensor {
  let s = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = (((s >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return F.tensor(data, shape, { backend: cpu });
}

/**
 * max |a − e| / max(max finite |e|, tiny): an error relative to the data's scale. Equal values
 * (NaN with NaN, ∞ with ∞ included) count as no error; any other NaN or ∞ mismatch is Infinity.
 */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Object.is(actual[i], expected[i])) continue;
    const d = Math.abs(actual[i] - expected[i]);
    err = Math.max(err, Number.isNaN(d) ? Infinity : d);
  }
  return err / Math.max(scale, 1e-30);
}

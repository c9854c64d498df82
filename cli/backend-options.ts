/**
 * `--backend` and `--threads`: which compute backend a process uses, installed once at start-up.
 * `webgpu` opens a WebGPU device (the optional `webgpu` package, imported only then) and fails
 * with the reason when there is none; `auto` takes WebGPU on a hardware adapter and wasm otherwise
 * (a software adapter such as lavapipe is correct but slower than the wasm backend).
 */

import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { setDefaultBackend } from '../shared/backend/default.js';
import type { Backend } from '../shared/backend/backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { positiveInt } from './flags.js';

export type BackendName = 'wasm' | 'cpu' | 'webgpu' | 'auto';
export const BACKEND_NAMES: readonly BackendName[] = ['wasm', 'cpu', 'webgpu', 'auto'];

export interface BackendFlags {
  backend: BackendName;
  threads?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend: wasm (SIMD kernels, threads), cpu (plain TypeScript reference), webgpu (GPU through WebGPU/Dawn) or auto (webgpu on a hardware GPU, else wasm)').choices([...BACKEND_NAMES]).default('wasm').env('MESHGRAD_BACKEND'))
    .addOption(new Option('--threads <n>', `threads for intra-op parallelism (default: the cores available, ${availableParallelism()} here)`).argParser(positiveInt).env('MESHGRAD_THREADS'));
}

export interface ActiveBackend {
  readonly backend: Backend;
  /** e.g. "wasm (simd, 2 threads)" or "webgpu (nvidia: NVIDIA H200)". */
  readonly description: string;
  /** The protocol's `capabilities.device`. */
  readonly device: 'cpu' | 'webgpu';
  /** The GPU adapter's name, or null on the CPU. */
  readonly adapter: string | null;
  close(): Promise<void>;
}

/** A backend for a process that keeps its model on the host (the coordinator): webgpu/auto become wasm. */
export function hostBackendFlags(flags: BackendFlags): BackendFlags {
  return flags.backend === 'webgpu' || flags.backend === 'auto' ? { ...flags, backend: 'wasm' } : flags;
}

async function configureWebGpu(): Promise<ActiveBackend> {
  const { WebGpuBackend } = await import('../shared/backend/webgpu/webgpu-backend.js');
  const gpu = await WebGpuBackend.create();
  setDefaultBackend(gpu);
  return {
    backend: gpu,
    description: `webgpu (${gpu.adapter.name})`,
    device: 'webgpu',
    adapter: gpu.adapter.name,
    close: async () => {
      setDefaultBackend(cpu);
      await gpu.close();
    },
  };
}

/** Creates the backend the flags ask for and makes it the default for new tensors. */
export async function configureBackend(flags: BackendFlags): Promise<ActiveBackend> {
  if (flags.backend === 'cpu') {
    setDefaultBackend(cpu);
    return { backend: cpu, description: 'cpu (TypeScript reference kernels, 1 thread)', device: 'cpu', adapter: null, close: async () => {} };
  }
  if (flags.backend === 'webgpu') return configureWebGpu();
  if (flags.backend === 'auto') {
    const { probeGpu } = await import('../shared/backend/webgpu/gpu-loader.js');
    const probe = await probeGpu();
    if (probe.adapter !== null && !probe.adapter.software) return configureWebGpu();
  }
  const threads = flags.threads ?? availableParallelism();
  const wasm = await WasmBackend.create({ threads });
  setDefaultBackend(wasm);
  return {
    backend: wasm,
    description: `wasm (${wasm.flavour}, ${wasm.threads} thread${wasm.threads > 1 ? 's' : ''})`,
    device: 'cpu',
    adapter: null,
    close: async () => {
      setDefaultBackend(cpu);
      await wasm.close();
    },
  };
}

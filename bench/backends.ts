/**
 * The meshgrad backends the benchmarks compare: the plain-TypeScript reference (`cpu`), and the
 * WebAssembly backend with one thread and with two (SIMD kernels, relaxed-SIMD FMA when the runtime
 * validates it; matrix products split across a fork-join pool).
 */

import type { Backend } from '../shared/backend/backend.js';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import type { HeapStats } from '../shared/backend/wasm/heap.js';
import type { KernelFlavour } from '../shared/backend/wasm/kernels.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';

export type MeshgradEngineId = 'meshgrad-cpu' | 'meshgrad-wasm-1t' | 'meshgrad-wasm-2t';

export const MESHGRAD_ENGINES: readonly MeshgradEngineId[] = ['meshgrad-wasm-1t', 'meshgrad-wasm-2t', 'meshgrad-cpu'];

export interface MeshgradEngine {
  readonly id: MeshgradEngineId;
  readonly backend: Backend;
  /** The wasm backend (null for cpu). */
  readonly wasm: WasmBackend | null;
  readonly threads: number;
  /** The wasm kernel build that runs (null for cpu). */
  readonly flavour: KernelFlavour | null;
  /** E.g. "meshgrad wasm (relaxed-simd, 2 threads)". */
  readonly description: string;
  /** The wasm heap's counters (null for cpu, which allocates on the JS heap). */
  memoryStats(): HeapStats | null;
  close(): Promise<void>;
}

export function engineThreads(id: MeshgradEngineId): number {
  return id === 'meshgrad-wasm-2t' ? 2 : 1;
}

/** Opens one engine's backend. Close it when done (the 2-thread one holds a worker thread). */
export async function openMeshgradEngine(id: MeshgradEngineId, options: { flavour?: KernelFlavour } = {}): Promise<MeshgradEngine> {
  if (id === 'meshgrad-cpu') {
    return {
      id,
      backend: cpu,
      wasm: null,
      threads: 1,
      flavour: null,
      description: 'meshgrad cpu (TypeScript reference kernels, 1 thread)',
      memoryStats: () => null,
      close: async () => {},
    };
  }
  const threads = engineThreads(id);
  const wasm = await WasmBackend.create({ threads, flavour: options.flavour });
  return {
    id,
    backend: wasm,
    wasm,
    threads: wasm.threads,
    flavour: wasm.flavour,
    description: `meshgrad wasm (${wasm.flavour}, ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'})`,
    memoryStats: () => wasm.memoryStats(),
    close: () => wasm.close(),
  };
}

/** `--backend` and `--threads`: which compute backend a process uses, installed once at start-up. */

import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { setDefaultBackend } from '../shared/backend/default.js';
import type { Backend } from '../shared/backend/backend.js';
import { WasmBackend } from '../shared/backend/wasm/wasm-backend.js';
import { positiveInt } from './flags.js';

export type BackendName = 'wasm' | 'cpu';

export interface BackendFlags {
  backend: BackendName;
  threads?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend: wasm (SIMD kernels, threads) or cpu (plain TypeScript reference)').choices(['wasm', 'cpu']).default('wasm').env('MESHGRAD_BACKEND'))
    .addOption(new Option('--threads <n>', `threads for intra-op parallelism (default: the cores available, ${availableParallelism()} here)`).argParser(positiveInt).env('MESHGRAD_THREADS'));
}

export interface ActiveBackend {
  readonly backend: Backend;
  readonly description: string;
  close(): Promise<void>;
}

/** Creates the backend the flags ask for and makes it the default for new tensors. */
export async function configureBackend(flags: BackendFlags): Promise<ActiveBackend> {
  if (flags.backend === 'cpu') {
    setDefaultBackend(cpu);
    return { backend: cpu, description: 'cpu (TypeScript reference kernels, 1 thread)', close: async () => {} };
  }
  const threads = flags.threads ?? availableParallelism();
  const wasm = await WasmBackend.create({ threads });
  setDefaultBackend(wasm);
  return {
    backend: wasm,
    description: `wasm (${wasm.flavour}, ${wasm.threads} thread${wasm.threads > 1 ? 's' : ''})`,
    close: async () => {
      setDefaultBackend(cpu);
      await wasm.close();
    },
  };
}

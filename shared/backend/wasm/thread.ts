/**
 * A pool thread: instantiates the kernels on the shared memory, then waits on the control block
 * for tasks, runs its slice of each, and reports completion. It never allocates or returns data:
 * everything it reads and writes is in the shared memory.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { CTL, OP, SLICE, SPIN_POLLS } from './control.js';
import { instantiateKernels } from './kernels.js';

interface ThreadData {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly index: number;
}

const { module, memory, control, index } = workerData as ThreadData;
const kernels = instantiateKernels(module, memory);
const ctl = new Int32Array(control);
const u32 = new Uint32Array(control);
const slice = CTL.slices + SLICE * index;

// Tell the pool we are ready only once `seen` is read: a task issued before that would be missed
// (the pool waits for this message, not for the thread's 'online' event, which comes earlier).
let seen = Atomics.load(ctl, CTL.generation);
parentPort?.postMessage('ready');
for (;;) {
  for (let i = 0; i < SPIN_POLLS && Atomics.load(ctl, CTL.generation) === seen; i++);
  Atomics.wait(ctl, CTL.generation, seen);
  seen = Atomics.load(ctl, CTL.generation);
  const op = Atomics.load(ctl, CTL.opcode);
  if (op === OP.stop) break;
  try {
    if (op === OP.gemm) {
      const a = CTL.args;
      kernels.gemm(u32[a], u32[a + 1], u32[a + 2], ctl[a + 3], ctl[a + 4], ctl[a + 5], ctl[a + 6], ctl[a + 7], ctl[a + 8], ctl[slice], ctl[slice + 1], u32[slice + 2]);
    }
  } catch {
    Atomics.store(ctl, CTL.error, index + 1);
  }
  if (Atomics.sub(ctl, CTL.pending, 1) === 1) Atomics.notify(ctl, CTL.pending);
}

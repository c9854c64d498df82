/**
 * A pool thread: instantiates the kernels on the shared memory, then waits on the control block
 * for tasks, runs its slice of each (OP.gemm) or claims pieces until none is left (chunked ops,
 * control.ts), and reports completion. It never allocates or returns data: everything it reads and
 * writes is in the shared memory.
 *
 * The trap this loop avoids: `Atomics.wait` returning "ok" does not mean a new task exists. The
 * pool increments `generation` and then notifies; if the pool is preempted between the two, this
 * thread can see the new generation while spinning, run it, go back to sleep, and only then receive
 * that generation's notify. Treating that wake-up as a task ran the slice twice: the second run
 * wrote into memory the caller had already reused (wrong results) and took `pending` to −1 (a hang).
 * So a task is a change of `generation`, never a wake-up.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { CHUNK_ARG_WORDS, CTL, OP, SLICE, SLOT, SPIN_POLLS, THREAD_STATE } from './control.js';
import { instantiateKernels, runChunk } from './kernels.js';

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
const slot = CTL.slices + SLICE * index;
/** The shared argument words, read in place by runChunk. */
const chunkArgs = u32.subarray(CTL.args, CTL.args + CHUNK_ARG_WORDS);

/** Blocks until `generation` differs from `seen` and returns the new value. */
function nextGeneration(seen: number): number {
  for (let i = 0; i < SPIN_POLLS; i++) {
    const g = Atomics.load(ctl, CTL.generation);
    if (g !== seen) return g;
  }
  // Only a hint for the caller (control.ts, SLOT.sleeping); cleared before the task runs.
  Atomics.store(ctl, slot + SLOT.sleeping, 1);
  for (;;) {
    const g = Atomics.load(ctl, CTL.generation);
    if (g !== seen) {
      Atomics.store(ctl, slot + SLOT.sleeping, 0);
      return g;
    }
    Atomics.wait(ctl, CTL.generation, seen);
  }
}

function run(op: number): void {
  if (op === OP.gemm) {
    const a = CTL.args;
    kernels.gemm(u32[a], u32[a + 1], u32[a + 2], ctl[a + 3], ctl[a + 4], ctl[a + 5], ctl[a + 6], ctl[a + 7], ctl[a + 8], ctl[slot + SLOT.j0], ctl[slot + SLOT.j1], u32[slot + SLOT.scratch]);
  } else if (op === OP.gemmChunks || op === OP.im2col || op === OP.col2im || op === OP.maxPool || op === OP.rows) {
    // Claim pieces until none is left; the caller and the other threads claim from the same counter.
    const chunks = ctl[CTL.chunks];
    const scratch = u32[slot + SLOT.scratch];
    for (let c = Atomics.add(ctl, CTL.next, 1); c < chunks; c = Atomics.add(ctl, CTL.next, 1)) runChunk(kernels, op, chunkArgs, c, scratch);
  } else {
    throw new Error(`unknown pool opcode ${op}`);
  }
}

// Tell the pool we are ready only once `seen` is read: a task issued before that would be missed
// (the pool waits for this message, not for the thread's 'online' event, which comes earlier).
let seen = Atomics.load(ctl, CTL.generation);
Atomics.store(ctl, slot + SLOT.started, seen);
Atomics.store(ctl, slot + SLOT.finished, seen);
Atomics.store(ctl, slot + SLOT.state, THREAD_STATE.idle);
parentPort?.postMessage('ready');
try {
  for (;;) {
    seen = nextGeneration(seen);
    const op = Atomics.load(ctl, CTL.opcode);
    if (op === OP.stop) break;
    Atomics.store(ctl, slot + SLOT.state, THREAD_STATE.running);
    Atomics.store(ctl, slot + SLOT.started, seen);
    try {
      run(op);
    } catch {
      Atomics.store(ctl, CTL.error, index + 1);
    }
    Atomics.store(ctl, slot + SLOT.finished, seen);
    Atomics.store(ctl, slot + SLOT.state, THREAD_STATE.idle);
    if (Atomics.sub(ctl, CTL.pending, 1) === 1) Atomics.notify(ctl, CTL.pending);
  }
} finally {
  Atomics.store(ctl, slot + SLOT.state, THREAD_STATE.exited);
  Atomics.notify(ctl, CTL.pending);
}

/**
 * The compute thread's entry point (run as dist/worker/compute-thread.js): installs the backend,
 * keeps the model replica, and answers each assignment with an encoded gradients frame. Messages
 * are handled strictly in arrival order, so a `params` that precedes an `assign` on the socket
 * also precedes it here, and each gets exactly one reply (the network thread's watchdog counts
 * them: compute-client.ts).
 *
 * Fault injection: MESHGRAD_FAILPOINT=compute-stall-after:N makes this thread block for good
 * (Atomics.wait with no timeout, as a lost wake-up would) when assignment N+1 arrives. Tests use
 * it to check that a stuck compute thread is reported instead of rejoining forever.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { configureBackend } from '../cli/backend-options.js';
import type { ShardReport } from './trainer.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import type { ComputeThreadOptions, FromCompute, ToCompute } from './compute-messages.js';
import { Replica } from './trainer.js';
import { loadModelFile } from '../shared/nn/user-model.js';

const port = parentPort;
if (!port) throw new Error('worker/compute-thread.js runs as a worker thread only');
const options = workerData as ComputeThreadOptions;
const active = await configureBackend({ backend: options.backend, threads: options.threads });
// A model written in code: this thread builds it, so it loads the file too (the main thread checked it already).
if (options.module !== undefined) await loadModelFile(options.module);
let replica: Replica | null = null;
const stallAfter = parseFailpoint(options.failpoint);
let assignments = 0;

function parseFailpoint(spec: string | undefined): number | null {
  if (!spec) return null;
  const m = /^compute-stall-after:(\d+)$/.exec(spec);
  if (!m) throw new Error(`MESHGRAD_FAILPOINT must be compute-stall-after:N, got '${spec}'`);
  return Number(m[1]);
}

const reply = (m: FromCompute, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

function handle(m: Exclude<ToCompute, { kind: 'close' }>): void | Promise<void> {
  switch (m.kind) {
    case 'welcome': {
      const w = m.welcome;
      if (!replica || replica.specJson !== JSON.stringify(w.model) || replica.compression !== w.compression) replica = new Replica(w, options.dataDir, m.workerSeed);
      else replica.welcomed(w);
      reply({ kind: 'joined', session: m.session, parameterCount: replica.parameterCount });
      return;
    }
    case 'params':
      if (!replica) throw new ProtocolError('UNEXPECTED', 'parameters before welcome');
      replica.applyParams(m.params);
      reply({ kind: 'loaded', session: m.session });
      return;
    case 'assign': {
      if (!replica) throw new ProtocolError('UNEXPECTED', 'assignment before welcome');
      if (stallAfter !== null && assignments++ >= stallAfter) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      let frame: Uint8Array | null = null;
      const compute = replica.onDevice ? replica.computeOnDevice.bind(replica) : replica.compute.bind(replica);
      const outcome = compute(
        m.assign,
        (g) => {
          // The encoder's buffer may be shared with later frames: copy into one we can hand over.
          const encoded = encodeMessage(g);
          frame = new Uint8Array(encoded.byteLength);
          frame.set(encoded);
        },
        (b) => {
          // A bucket leaves at once: the network thread sends it while backward goes on.
          const encoded = encodeMessage(b);
          const part = new Uint8Array(encoded.byteLength);
          part.set(encoded);
          reply({ kind: 'bucket', session: m.session, frame: part }, [part.buffer as ArrayBuffer]);
        },
      );
      const finish = (report: ShardReport): void => {
        if (!frame) throw new Error('internal: the replica produced no gradients frame');
        const out: Uint8Array = frame;
        reply({ kind: 'gradients', session: m.session, step: m.assign.step, frame: out, report }, [out.buffer as ArrayBuffer]);
      };
      // A device backend's figures come back asynchronously; host backends answer at once.
      if (outcome instanceof Promise) return outcome.then(finish);
      finish(outcome);
      return;
    }
  }
}

function failed(m: Exclude<ToCompute, { kind: 'close' }>, err: unknown): void {
  if (err instanceof ProtocolError) {
    reply({ kind: 'rejected', session: m.session, code: err.code, message: err.message, step: m.kind === 'assign' ? m.assign.step : undefined });
  } else {
    reply({ kind: 'failed', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
  }
}

/**
 * Messages are handled one at a time, in order: on a device backend an assignment finishes
 * asynchronously, and the parameters that arrive meanwhile must wait for it (they would replace
 * the version it computes with).
 */
let pending: Promise<void> | null = null;
const backlog: Array<Exclude<ToCompute, { kind: 'close' }>> = [];

function drain(): void {
  while (pending === null && backlog.length > 0) {
    const m = backlog.shift()!;
    try {
      const result = handle(m);
      if (result instanceof Promise) {
        pending = result
          .catch((err: unknown) => failed(m, err))
          .finally(() => {
            pending = null;
            drain();
          });
      }
    } catch (err) {
      failed(m, err);
    }
  }
}

port.on('message', (m: ToCompute) => {
  if (m.kind === 'close') {
    const closing = pending ?? Promise.resolve();
    void closing.then(() => active.close()).finally(() => port.close());
    return;
  }
  backlog.push(m);
  drain();
});
reply({ kind: 'started', backend: active.description, device: active.device, adapter: active.adapter });

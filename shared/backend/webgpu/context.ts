/**
 * The WebGPU machinery every kernel shares: a pipeline cache, a size-bucketed buffer pool recycled
 * per scope (as the wasm heap recycles a step's memory), and command recording with few queue
 * submissions.
 *
 * Recording. Kernels are recorded into one open compute pass of one command encoder; nothing is
 * submitted until `flush()` (at the end of a scope, before a read, before writing a live buffer,
 * or when the uniform arena fills). Each dispatch is its own usage scope in WebGPU, so a dispatch
 * sees what the previous one wrote without barriers of ours.
 *
 * Uniforms. Each dispatch's small parameters (sizes, strides, scalars) are packed into one host
 * arena at the device's uniform offset alignment and written with a single `writeBuffer` just
 * before the submit that uses them. `writeBuffer` is a queue operation, ordered after the earlier
 * submits, so one arena buffer serves every flush.
 *
 * Buffer reuse, and why it is safe. `queue.writeBuffer` runs before any command still being
 * recorded. A buffer may therefore be written with `writeBuffer` only if no unsubmitted command
 * uses it. Buffers reach the free lists only after a flush (a scope's buffers when it ends, the
 * buffers of collected tensors at the next flush), so a buffer taken from a free list is never
 * referenced by recorded commands, and uploading into it directly is safe. Writing into a live
 * buffer (`writeInto`) flushes first.
 */

/// <reference types="@webgpu/types" />

import type { AdapterSummary } from './gpu-loader.js';

// GPUBufferUsage / GPUMapMode values from the WebGPU specification (the `webgpu` package's
// globals are not installed into this process's global scope).
export const USAGE_MAP_READ = 0x0001;
export const USAGE_COPY_SRC = 0x0004;
export const USAGE_COPY_DST = 0x0008;
export const USAGE_UNIFORM = 0x0040;
export const USAGE_STORAGE = 0x0080;
const MAP_MODE_READ = 0x0001;

const STORAGE_USAGE = USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST;
/** Uniform bytes per flush; a full arena flushes early. */
const ARENA_BYTES = 1 << 20;
/** Smallest buffer handed out: a binding may not be empty. */
const MIN_BYTES = 16;

/**
 * Size classes 2^k and 1.5·2^k bytes: at most a third of a buffer is slack, and a step's buffers
 * fall into few classes, so each step reuses the previous step's buffers.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(MIN_BYTES, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.ceil(Math.log2(b));
  const threeQuarters = (p / 4) * 3;
  return b <= threeQuarters && threeQuarters % 4 === 0 ? threeQuarters : p;
}

export interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly key: string;
}

/** A small host-side writer for one dispatch's uniforms: 32-bit words, padded to 16 bytes. */
export class Uniforms {
  private readonly words: number[] = [];
  private readonly kinds: Array<'u' | 'i' | 'f'> = [];
  u32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v >>> 0);
      this.kinds.push('u');
    }
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v | 0);
      this.kinds.push('i');
    }
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v);
      this.kinds.push('f');
    }
    return this;
  }
  get byteLength(): number {
    return Math.max(16, Math.ceil(this.words.length / 4) * 16);
  }
  writeTo(view: DataView, offset: number): void {
    this.words.forEach((w, i) => {
      const at = offset + 4 * i;
      if (this.kinds[i] === 'f') view.setFloat32(at, w, true);
      else if (this.kinds[i] === 'i') view.setInt32(at, w, true);
      else view.setUint32(at, w, true);
    });
  }
}

/**
 * WGSL for a kernel's uniform block of `words` 32-bit words, read with `pu(i)` (u32), `pi(i)`
 * (i32) and `pf(i)` (f32) so every kernel lays out its parameters the same way.
 */
export function uniformPrelude(words: number): string {
  const vecs = Math.max(1, Math.ceil(words / 4));
  return `struct Params { w: array<vec4<u32>, ${vecs}> }
@group(0) @binding(0) var<uniform> params: Params;
fn pu(i: u32) -> u32 { return params.w[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(params.w[i / 4u][i % 4u]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(params.w[i / 4u][i % 4u]); }
`;
}

/** Workgroups for `n` invocations of `size` threads, as (x, y): x at most 65535, the rest in y. */
export function grid(n: number, size: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / size));
  if (groups <= 65535) return [groups, 1];
  return [65535, Math.ceil(groups / 65535)];
}

/** WGSL: the linear invocation index of a `grid()` dispatch with workgroups of `size` threads. */
export function linearIndex(size: number): string {
  return `gid.x + gid.y * nwg.x * ${size}u`;
}

interface Recording {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder | null;
}

export class GpuContext {
  private readonly pipelines = new Map<string, Kernel>();
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly readFree = new Map<number, GPUBuffer[]>();
  /** Buffers whose tensors were collected: free after the next flush. */
  private readonly releasedSinceFlush: GPUBuffer[] = [];
  private readonly scopes: GPUBuffer[][] = [];
  private readonly arenaHost = new ArrayBuffer(ARENA_BYTES);
  private readonly arenaView = new DataView(this.arenaHost);
  private readonly arena: GPUBuffer;
  private arenaUsed = 0;
  private readonly align: number;
  private recording: Recording | null = null;
  private lost: string | null = null;
  /** Counters for the benchmark and the tests. */
  readonly stats = { submits: 0, dispatches: 0, buffersCreated: 0, pipelinesCompiled: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
  ) {
    this.align = Math.max(16, device.limits.minUniformBufferOffsetAlignment);
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: USAGE_UNIFORM | USAGE_COPY_DST });
    void device.lost.then((info) => {
      this.lost = `the WebGPU device was lost (${info.reason}: ${info.message})`;
    });
    device.addEventListener('uncapturederror', (event) => {
      const e = event as GPUUncapturedErrorEvent;
      this.lost ??= `WebGPU error: ${e.error.message}`;
    });
  }

  get maxStorageBinding(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  /** Throws the first device error seen, if any (a validation error would otherwise be silent). */
  check(): void {
    if (this.lost !== null) throw new Error(this.lost);
  }

  /** The compiled pipeline for `key`, compiling `source()` the first time. */
  kernel(key: string, source: () => string): Kernel {
    let k = this.pipelines.get(key);
    if (k === undefined) {
      const module = this.device.createShaderModule({ code: source(), label: key });
      const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
      k = { pipeline, layout: pipeline.getBindGroupLayout(0), key };
      this.pipelines.set(key, k);
      this.stats.pipelinesCompiled++;
    }
    return k;
  }

  // -- buffers ---------------------------------------------------------------------------------

  /** A storage buffer of at least `bytes`, from the pool; owned by the current scope if any. */
  alloc(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxStorageBinding) throw new RangeError(`a ${bytes}-byte tensor exceeds this WebGPU device's largest storage binding (${this.maxStorageBinding} bytes)`);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer === undefined) {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.stats.buffersCreated++;
    }
    this.scopes[this.scopes.length - 1]?.push(buffer);
    return buffer;
  }

  /** Whether a buffer just allocated belongs to a scope (else its owner must call `releaseLater`). */
  get inScope(): boolean {
    return this.scopes.length > 0;
  }

  /** A buffer allocated outside any scope whose owner was collected: reusable after the next flush. */
  releaseLater(buffer: GPUBuffer): void {
    this.releasedSinceFlush.push(buffer);
  }

  private recycle(buffer: GPUBuffer): void {
    const list = this.free.get(buffer.size);
    if (list) list.push(buffer);
    else this.free.set(buffer.size, [buffer]);
  }

  /** Runs fn; every pooled buffer allocated inside returns to the pool when it ends. */
  scope<T>(fn: () => T): T {
    this.scopes.push([]);
    try {
      return fn();
    } finally {
      const owned = this.scopes.pop()!;
      this.flush();
      for (const b of owned) this.recycle(b);
    }
  }

  /** Uploads host data into a buffer no recorded command uses (a fresh one from `alloc`). */
  writeFresh(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    if (data.byteLength === 0) return;
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Overwrites a live buffer: what was recorded before runs first (so it still reads the old data). */
  writeInto(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    if (this.recording !== null) this.flush();
    this.writeFresh(buffer, data, byteOffset);
  }

  // -- recording -------------------------------------------------------------------------------

  private rec(): Recording {
    this.recording ??= { encoder: this.device.createCommandEncoder(), pass: null };
    return this.recording;
  }

  private computePass(): GPUComputePassEncoder {
    const r = this.rec();
    r.pass ??= r.encoder.beginComputePass();
    return r.pass;
  }

  private encoderForCopy(): GPUCommandEncoder {
    const r = this.rec();
    if (r.pass !== null) {
      r.pass.end();
      r.pass = null;
    }
    return r.encoder;
  }

  /** Records one dispatch: binding 0 is the uniforms, then `buffers` at bindings 1, 2, …. */
  dispatch(kernel: Kernel, buffers: readonly GPUBuffer[], uniforms: Uniforms, groups: readonly [number, number?, number?]): void {
    const bytes = uniforms.byteLength;
    let offset = Math.ceil(this.arenaUsed / this.align) * this.align;
    if (offset + bytes > ARENA_BYTES) {
      this.flush();
      offset = 0;
    }
    uniforms.writeTo(this.arenaView, offset);
    this.arenaUsed = offset + bytes;
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset, size: bytes } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout: kernel.layout, entries });
    const pass = this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    this.stats.dispatches++;
  }

  /** Records a buffer-to-buffer copy (byte offsets and size multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.encoderForCopy().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded (with its uniforms); buffers released meanwhile become reusable. */
  flush(): void {
    const r = this.recording;
    if (r !== null) {
      if (r.pass !== null) r.pass.end();
      if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, Math.ceil(this.arenaUsed / 4) * 4);
      this.device.queue.submit([r.encoder.finish()]);
      this.stats.submits++;
      this.recording = null;
      this.arenaUsed = 0;
    }
    for (const b of this.releasedSinceFlush.splice(0)) this.recycle(b);
  }

  /**
   * Copies each (buffer, bytes) back to the host, with one submit for all of them. The copies are
   * recorded now, so each sees every kernel recorded before it and nothing recorded after. The
   * submit happens before the staging buffers are mapped (a buffer waiting to be mapped may not
   * be used by a submit).
   */
  readMany(sources: ReadonlyArray<readonly [GPUBuffer, number]>): Promise<ArrayBuffer[]> {
    const staged = sources.map(([src, bytes]) => {
      const size = Math.max(MIN_BYTES, Math.ceil(bytes / 4) * 4);
      const staging = this.readFree.get(size)?.pop() ?? this.device.createBuffer({ size, usage: USAGE_MAP_READ | USAGE_COPY_DST });
      if (bytes > 0) this.encoderForCopy().copyBufferToBuffer(src, 0, staging, 0, Math.ceil(bytes / 4) * 4);
      return { staging, size, bytes };
    });
    this.flush();
    return Promise.all(
      staged.map(({ staging, size, bytes }) =>
        staging.mapAsync(MAP_MODE_READ).then(
          () => {
            const out = staging.getMappedRange(0, size).slice(0, bytes);
            staging.unmap();
            const list = this.readFree.get(size);
            if (list) list.push(staging);
            else this.readFree.set(size, [staging]);
            return out;
          },
          (error: unknown) => {
            this.check();
            throw error;
          },
        ),
      ),
    );
  }

  /** Waits for every submitted command to finish (tests and benchmarks). */
  async idle(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  destroy(): void {
    this.flush();
    this.device.destroy();
  }
}

/**
 * The wasm backend's memory: one shared WebAssembly.Memory (so worker threads running the same
 * kernels see the same tensors) and an allocator over it, written here because no library manages
 * a heap inside a wasm memory from JavaScript.
 *
 * Blocks are 64-byte aligned and rounded up to a size class (four classes per power of two, so at
 * most 25% is wasted); freed blocks go to their class's free list and are handed out again, which
 * keeps a training step from touching fresh pages (about 10 µs per 4 KiB on these machines).
 * Memory grows on demand and never shrinks; existing views stay valid across growth because the
 * buffer is a SharedArrayBuffer.
 */

const PAGE = 65536;
const ALIGN = 64;
/** Low memory kept free (the kernels' own data segments would live here; they have none today). */
const RESERVED = 65536;

export function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const top = 2 ** Math.floor(Math.log2(b));
  if (top <= 256) return Math.ceil(b / ALIGN) * ALIGN;
  const step = top / 4;
  return Math.ceil(b / step) * step;
}

export interface HeapStats {
  readonly bytesInUse: number;
  readonly bytesFree: number;
  readonly bytesReserved: number;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  private top = RESERVED;
  private readonly free = new Map<number, number[]>();
  private inUse = 0;
  private freeBytes = 0;

  constructor(initialBytes = 64 << 20, maximumPages = 65536) {
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(initialBytes / PAGE), maximum: maximumPages, shared: true });
  }

  /** A block of at least `bytes` bytes; returns its address and actual size. */
  alloc(bytes: number): { ptr: number; size: number } {
    const size = sizeClass(bytes);
    // Exact class first; else the smallest free block up to twice the size (a step whose shapes
    // differ from the last one's then reuses memory instead of growing the heap).
    for (const candidate of this.candidates(size)) {
      const reused = this.free.get(candidate)?.pop();
      if (reused !== undefined) {
        this.freeBytes -= candidate;
        this.inUse += candidate;
        return { ptr: reused, size: candidate };
      }
    }
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least a quarter of the current size, so growth happens O(log n) times.
      const need = Math.ceil((end - have) / PAGE);
      const pages = Math.max(need, Math.ceil(have / PAGE / 4));
      try {
        this.memory.grow(pages);
      } catch {
        this.memory.grow(need);
      }
    }
    this.top = end;
    this.inUse += size;
    return { ptr, size };
  }

  private candidates(size: number): number[] {
    const out = [size];
    for (const [s, list] of this.free) if (s > size && s <= 2 * size && list.length > 0) out.push(s);
    return out.length > 2 ? [size, ...out.slice(1).sort((a, b) => a - b)] : out;
  }

  release(ptr: number, size: number): void {
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ptr);
    this.inUse -= size;
    this.freeBytes += size;
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  stats(): HeapStats {
    return { bytesInUse: this.inUse, bytesFree: this.freeBytes, bytesReserved: this.memory.buffer.byteLength };
  }
}

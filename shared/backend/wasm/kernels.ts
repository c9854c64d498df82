/**
 * Loading the compiled AssemblyScript kernels (dist/wasm, built by `npm run build:wasm`). Two
 * builds exist: plain 128-bit SIMD, and relaxed SIMD whose fused multiply-add doubles matmul
 * throughput. Node 20's V8 has relaxed SIMD behind a flag, which is switched on here when the
 * relaxed build does not validate without it; if it still does not, the plain build is used.
 *
 * Also here: runChunk, one fixed piece of a chunked op (a matrix product cut by batch members,
 * rows or columns; a window op cut by images or planes), which the caller and the pool threads
 * (thread.ts) run alike, so a piece is the same work wherever it runs.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { packageRoot } from '../../util/paths.js';
import { OP } from './control.js';

type Kernel = (...args: number[]) => void;

export interface KernelExports {
  gemm(a: number, b: number, c: number, m: number, n: number, k: number, transA: number, transB: number, accumulate: number, j0: number, j1: number, scratch: number): void;
  gemmScratchBytes(cols: number): number;
  /**
   * gemmBatch(a, b, c, m, n, k, flags, aStride, bStride, t0, t1, r0, r1, v0, v1, scratch): members
   * [t0, t1), S rows [r0, r1), V lanes [v0, v1) of C (=|+=) op(A)·op(B); flags are GEMM_FLAGS.
   */
  gemmBatch(a: number, b: number, c: number, m: number, n: number, k: number, flags: number, aStride: number, bStride: number, t0: number, t1: number, r0: number, r1: number, v0: number, v1: number, scratch: number): void;
  /** Scratch bytes of gemmBatch over `lanes` V lanes (packOnce: V packed once for all members). */
  gemmScratchFor(k: number, lanes: number, packOnce: number): number;
  binary(op: number, a: number, sa: number, b: number, sb: number, out: number, n: number): void;
  binaryRows(op: number, a: number, b: number, out: number, rows: number, inner: number): void;
  binaryCols(op: number, a: number, b: number, out: number, rows: number, inner: number, period: number): void;
  unary(op: number, a: number, out: number, n: number): void;
  sumMiddle(a: number, out: number, outer: number, r: number, inner: number, acc: number): void;
  sumRows(a: number, out: number, rows: number, inner: number): void;
  /** im2col/col2im(src, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out). */
  im2col: Kernel;
  col2im: Kernel;
  /** maxPool(x, planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, grad (0: forward), out). */
  maxPool: Kernel;
  sumSources(out: number, srcs: number, count: number, n: number): void;
  /** adam(p, g, m, v, n, beta1, beta2, 1 − beta1, 1 − beta2, eps, l2, shrink, stepSize, bias2Sqrt), the scalars float64. */
  adam: Kernel;
  // Fused primitives (assembly/fused.ts); pointers are byte addresses, 0 = no bias.
  unaryTranscendental(op: number, a: number, out: number, n: number): void;
  gelu(x: number, out: number, n: number, approximate: number): void;
  geluBackward(x: number, gy: number, out: number, n: number, approximate: number): void;
  softmaxRows(x: number, out: number, rows: number, cols: number, causal: number): void;
  softmaxBackwardRows(y: number, gy: number, out: number, rows: number, cols: number): void;
  logSoftmaxRows(x: number, out: number, rows: number, cols: number): void;
  logSoftmaxBackwardRows(y: number, gy: number, out: number, rows: number, cols: number): void;
  lstmCell(gi: number, giRow: number, gh: number, bias: number, c: number, batch: number, hidden: number, hOut: number, cOut: number, act: number): void;
  /** relu(x, 0, out, n) forward; relu(x, gy, out, n): gy where x > 0, else 0. */
  relu(x: number, gy: number, out: number, n: number): void;
  /** copyRuns(src, dst, run, n0..n3, src strides s0..s3, dst strides t0..t3), strides in floats. */
  copyRuns: Kernel;
  lstmCellBackward(act: number, c: number, gradOut: number, gradOutRow: number, gradH: number, gradC: number, batch: number, hidden: number, gGates: number, gc: number): void;
  layerNormRows(x: number, w: number, b: number, rows: number, cols: number, eps: number, y: number, mean: number, rstd: number): void;
  layerNormBackwardRows(gy: number, x: number, mean: number, rstd: number, w: number, rows: number, cols: number, gx: number, accW: number, accB: number): void;
  gruCell(gi: number, giRow: number, gh: number, bias: number, h: number, batch: number, hidden: number, hOut: number, act: number): void;
}

/** Flags of gemmBatch (assembly/gemm.ts). */
export const GEMM_FLAGS = { transA: 1, transB: 2, accumulate: 4, swap: 8, packOnce: 16 } as const;

export type KernelFlavour = 'relaxed-simd' | 'simd';

let compiled: { module: WebAssembly.Module; flavour: KernelFlavour } | null = null;

function wasmPath(flavour: KernelFlavour): string {
  return join(packageRoot(), 'dist', 'wasm', flavour === 'relaxed-simd' ? 'kernels-relaxed.wasm' : 'kernels-simd.wasm');
}

/** The compiled kernel module (compiled once per thread). `prefer` forces a flavour (tests, benchmarks). */
export function kernelModule(prefer?: KernelFlavour): { module: WebAssembly.Module; flavour: KernelFlavour } {
  if (compiled && (!prefer || prefer === compiled.flavour)) return compiled;
  const order: KernelFlavour[] = prefer ? [prefer] : ['relaxed-simd', 'simd'];
  for (const flavour of order) {
    const path = wasmPath(flavour);
    if (!existsSync(path)) throw new Error(`the wasm kernels are not built: ${path} is missing (run npm run build)`);
    const bytes = readFileSync(path);
    if (!WebAssembly.validate(bytes)) {
      // Node 20 has relaxed SIMD behind a flag; Node 22 has it on and no longer knows the flag
      // (setting it there prints "unrecognized flag"), so the flag is set only when needed.
      if (flavour !== 'relaxed-simd') continue;
      setFlagsFromString('--experimental-wasm-relaxed-simd');
      if (!WebAssembly.validate(bytes)) continue;
    }
    const result = { module: new WebAssembly.Module(bytes), flavour };
    if (!prefer) compiled = result;
    return result;
  }
  throw new Error('this Node.js cannot run WebAssembly SIMD, which the wasm backend needs; use --backend cpu');
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new Error(`wasm kernel aborted at ${line}:${col}`);
      },
    },
  });
  return bindKernels(instance.exports);
}

/** Checks that the module exports every kernel, with the right arity, and types them. */
function bindKernels(exports: WebAssembly.Exports): KernelExports {
  const fn = (name: string, arity: number): ((...args: number[]) => number) => {
    const f = exports[name];
    if (typeof f !== 'function' || f.length !== arity) throw new Error(`the wasm kernels lack ${name}/${arity}: rebuild with npm run build`);
    return f as (...args: number[]) => number;
  };
  const gemmScratchBytes = fn('gemmScratchBytes', 1);
  return {
    gemm: fn('gemm', 12),
    gemmScratchBytes: (cols) => gemmScratchBytes(cols),
    gemmBatch: fn('gemmBatch', 16),
    gemmScratchFor: fn('gemmScratchFor', 3),
    binary: fn('binary', 7),
    binaryRows: fn('binaryRows', 6),
    binaryCols: fn('binaryCols', 7),
    unary: fn('unary', 4),
    sumMiddle: fn('sumMiddle', 6),
    sumRows: fn('sumRows', 4),
    im2col: fn('im2col', 16),
    col2im: fn('col2im', 16),
    maxPool: fn('maxPool', 16),
    sumSources: fn('sumSources', 4),
    adam: fn('adam', 14),
    unaryTranscendental: fn('unaryTranscendental', 4),
    gelu: fn('gelu', 4),
    geluBackward: fn('geluBackward', 5),
    softmaxRows: fn('softmaxRows', 5),
    softmaxBackwardRows: fn('softmaxBackwardRows', 5),
    logSoftmaxRows: fn('logSoftmaxRows', 4),
    logSoftmaxBackwardRows: fn('logSoftmaxBackwardRows', 5),
    lstmCell: fn('lstmCell', 10),
    gruCell: fn('gruCell', 9),
    relu: fn('relu', 4),
    copyRuns: fn('copyRuns', 15),
    lstmCellBackward: fn('lstmCellBackward', 10),
    layerNormRows: fn('layerNormRows', 9),
    layerNormBackwardRows: fn('layerNormBackwardRows', 10),
  };
}

// ---- chunked ops: one fixed piece of a kernel call, claimed by whichever thread is free ----------

/**
 * Argument words of OP.gemmChunks: the product, then how it is cut. `split` is which range the
 * pieces divide (GEMM_SPLIT), `per` the size of one piece in members, S rows or V lanes (a
 * multiple of the 4-row strip or the 8-lane panel, so only the last piece is partial), `rows` and
 * `lanes` the extents of S rows and V lanes (rows / columns of C, or columns / rows when swapped).
 */
export const GEMM_CHUNK_ARGS = ['a', 'b', 'c', 'm', 'n', 'k', 'flags', 'aStride', 'bStride', 'batch', 'split', 'per', 'rows', 'lanes'] as const;
export const GEMM_SPLIT = { members: 0, rows: 1, lanes: 2 } as const;

/**
 * Argument words of the window ops (OP.im2col, OP.col2im, OP.maxPool): the kernel's own arguments
 * and `per`, images (im2col, col2im) or planes (maxPool: `count` is N·C, `c` unused) per piece.
 * `grad` is maxPool's gradient (0: the forward).
 */
export const WINDOW_CHUNK_ARGS = ['src', 'grad', 'out', 'count', 'c', 'h', 'w', 'kh', 'kw', 'sh', 'sw', 'ph', 'pw', 'dh', 'dw', 'oh', 'ow', 'per'] as const;

/**
 * Argument words of OP.rows: an elementwise or row-wise kernel (`kind`, ROW_KIND) over `units`
 * units of `cols` floats each — elements (cols = 1) or rows — cut into pieces of `per` units.
 * `p0` and `p2` (the output) advance with the piece; `p1` too, except a broadcast operand (a bias
 * row for binaryRows, a scalar for binary) or an absent one (0). `code` is the kernel's op code,
 * GELU's `approximate`, or softmax's `causal`; binary adds bit 8 when a steps through its
 * elements and bit 9 when b does (else the operand is a scalar). binaryCols (b one value per row,
 * repeating every `period` rows) cuts pieces at multiples of the period, or, when the period is all
 * the rows, advances b with the rows. sumRows writes one float per row, so its output advances by
 * rows, not by floats. adam: p0, p1, p2 are the parameters, gradients and first moments, word 9
 * the second moments, words 10–18 its nine scalars as float32 bits (the kernel rounds each to
 * float32 before use, so nothing is lost).
 */
export const ROWS_CHUNK_ARGS = ['kind', 'code', 'p0', 'p1', 'p2', 'units', 'cols', 'per', 'period'] as const;
export const ROW_KIND = { unary: 0, transcendental: 1, relu: 2, gelu: 3, geluBackward: 4, binary: 5, binaryRows: 6, softmax: 7, softmaxBackward: 8, logSoftmax: 9, logSoftmaxBackward: 10, binaryCols: 11, sumRows: 12, adam: 13 } as const;

const bits = new Uint32Array(1);
const bitsAsFloat = new Float32Array(bits.buffer);
/** The float32 whose bits are `word`. */
function asFloat32(word: number): number {
  bits[0] = word;
  return bitsAsFloat[0];
}
/** The bits of `x` rounded to float32. */
export function float32Bits(x: number): number {
  bitsAsFloat[0] = x;
  return bits[0];
}

function runRowsChunk(k: KernelExports, w: ArrayLike<number>, chunk: number): void {
  const [kind, code, p0, p1, p2, units, cols, per, period] = [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]];
  const first = chunk * per;
  const count = Math.min(per, units - first);
  if (count <= 0) return;
  const off = first * cols * 4;
  const a = p0 + off;
  const out = p2 + off;
  switch (kind) {
    case ROW_KIND.unary:
      return k.unary(code, a, out, count);
    case ROW_KIND.transcendental:
      return k.unaryTranscendental(code, a, out, count);
    case ROW_KIND.relu:
      return k.relu(a, p1 === 0 ? 0 : p1 + off, out, count);
    case ROW_KIND.gelu:
      return k.gelu(a, out, count, code);
    case ROW_KIND.geluBackward:
      return k.geluBackward(a, p1 + off, out, count, code);
    case ROW_KIND.binary: {
      const sa = (code >> 8) & 1;
      const sb = (code >> 9) & 1;
      return k.binary(code & 0xff, sa ? a : p0, sa, sb ? p1 + off : p1, sb, out, count);
    }
    case ROW_KIND.binaryRows:
      return k.binaryRows(code, a, p1, out, count, cols);
    case ROW_KIND.softmax:
      return k.softmaxRows(a, out, count, cols, code);
    case ROW_KIND.softmaxBackward:
      return k.softmaxBackwardRows(a, p1 + off, out, count, cols);
    case ROW_KIND.logSoftmax:
      return k.logSoftmaxRows(a, out, count, cols);
    case ROW_KIND.logSoftmaxBackward:
      return k.logSoftmaxBackwardRows(a, p1 + off, out, count, cols);
    case ROW_KIND.binaryCols:
      // period === units: b has one value per row of the whole op, so it advances with the piece.
      return period === units ? k.binaryCols(code, a, p1 + first * 4, out, count, cols, count) : k.binaryCols(code, a, p1, out, count, cols, period);
    case ROW_KIND.sumRows:
      return k.sumRows(a, p2 + first * 4, count, cols);
    case ROW_KIND.adam: {
      const f = (i: number): number => asFloat32(w[10 + i]);
      return k.adam(a, p1 + off, out, w[9] + off, count, f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8));
    }
    default:
      throw new Error(`unknown row kernel ${kind}`);
  }
}

/**
 * Runs piece `chunk` of a chunked op whose argument words are `w` (GEMM_CHUNK_ARGS,
 * WINDOW_CHUNK_ARGS or ROWS_CHUNK_ARGS order), with this thread's scratch. The same function runs on the caller and on
 * pool threads, so a piece is the same work wherever it runs. Addresses are unsigned words.
 */
export function runChunk(k: KernelExports, op: number, w: ArrayLike<number>, chunk: number, scratch: number): void {
  if (op === OP.rows) {
    runRowsChunk(k, w, chunk);
    return;
  }
  if (op === OP.gemmChunks) {
    const batch = w[9];
    const split = w[10];
    const lo = chunk * w[11];
    const hi = lo + w[11];
    let t0 = 0, t1 = batch, r0 = 0, r1 = w[12], v0 = 0, v1 = w[13];
    if (split === GEMM_SPLIT.members) [t0, t1] = [lo, Math.min(hi, batch)];
    else if (split === GEMM_SPLIT.rows) [r0, r1] = [lo, Math.min(hi, r1)];
    else [v0, v1] = [lo, Math.min(hi, v1)];
    k.gemmBatch(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], t0, t1, r0, r1, v0, v1, scratch);
    return;
  }
  const [src, grad, out, count, c, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, per] = Array.from({ length: WINDOW_CHUNK_ARGS.length }, (_, i) => w[i]);
  const first = chunk * per;
  const pieces = Math.min(per, count - first);
  if (pieces <= 0) return;
  const window = [kh, kw, sh, sw, ph, pw, dh, dw, oh, ow];
  const image = c * h * wd * 4;
  const rowsBytes = oh * ow * c * kh * kw * 4;
  if (op === OP.im2col) k.im2col(src + first * image, pieces, c, h, wd, ...window, out + first * rowsBytes);
  else if (op === OP.col2im) k.col2im(src + first * rowsBytes, pieces, c, h, wd, ...window, out + first * image);
  else if (op === OP.maxPool) {
    const plane = h * wd * 4;
    const pooled = oh * ow * 4;
    k.maxPool(src + first * plane, pieces, h, wd, ...window, grad ? grad + first * pooled : 0, out + first * (grad ? plane : pooled));
  } else throw new Error(`unknown chunked op ${op}`);
}

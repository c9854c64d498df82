/**
 * Loading the compiled AssemblyScript kernels (dist/wasm, built by `npm run build:wasm`). Two
 * builds exist: plain 128-bit SIMD, and relaxed SIMD whose fused multiply-add doubles matmul
 * throughput. Node 20's V8 has relaxed SIMD behind a flag, which is switched on here before the
 * module is compiled; if the relaxed build still does not validate, the plain build is used.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { packageRoot } from '../../util/paths.js';

type Kernel = (...args: number[]) => void;

export interface KernelExports {
  gemm(a: number, b: number, c: number, m: number, n: number, k: number, transA: number, transB: number, accumulate: number, j0: number, j1: number, scratch: number): void;
  gemmScratchBytes(cols: number): number;
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
    if (flavour === 'relaxed-simd') setFlagsFromString('--experimental-wasm-relaxed-simd');
    const bytes = readFileSync(path);
    if (!WebAssembly.validate(bytes)) continue;
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
    lstmCell: fn('lstmCell', 10),
    gruCell: fn('gruCell', 9),
    relu: fn('relu', 4),
    copyRuns: fn('copyRuns', 15),
    lstmCellBackward: fn('lstmCellBackward', 10),
    layerNormRows: fn('layerNormRows', 9),
    layerNormBackwardRows: fn('layerNormBackwardRows', 10),
  };
}

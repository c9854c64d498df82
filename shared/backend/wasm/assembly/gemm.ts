// AssemblyScript. Single-precision matrix multiply with 128-bit SIMD.
//
// C[m, n] (=|+=) op(A)·op(B), op transposing an operand stored transposed: A(i, p) is read at
// a[i·k + p] or, transposed, a[p·m + i]; B(p, j) at b[p·n + j] or b[j·k + p]. The transposes are
// absorbed by packing, so the micro-kernel always sees the same layout:
//   - k is cut into blocks of KC; for each, the columns [j0, j1) of B are packed into panels of NR
//     columns, [kc][NR] floats each (zero-padded past n), then for every MR rows of A a panel of
//     [kc][MR] floats (zero-padded past m) is packed and multiplied with every B panel;
//   - the micro-kernel keeps an MR x NR = 4 x 8 tile of C in 8 SIMD registers (16 registers exist
//     on x86 for wasm SIMD; a bigger tile spills), doing 8 multiply-adds per 6 loads;
//   - partial tiles at the right and bottom edges go through a scratch tile.
// Each thread calls gemm on its own column range [j0, j1) with its own packing buffers, so threads
// never write the same memory.

import { madd } from './simd';

const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;

// @ts-ignore: decorator
@inline function packA(a: usize, transA: bool, m: i32, k: i32, i0: i32, p0: i32, kc: i32, dst: usize): void {
  const rows = min(MR, m - i0);
  for (let p = 0; p < kc; p++) {
    for (let r = 0; r < MR; r++) {
      let v: f32 = 0;
      if (r < rows) {
        const i = i0 + r;
        const q = p0 + p;
        v = transA ? load<f32>(a + (<usize>(q * m + i) << 2)) : load<f32>(a + (<usize>(i * k + q) << 2));
      }
      store<f32>(dst + (<usize>(p * MR + r) << 2), v);
    }
  }
}

// @ts-ignore: decorator
@inline function packB(b: usize, transB: bool, n: i32, k: i32, j0: i32, p0: i32, kc: i32, dst: usize): void {
  const cols = min(NR, n - j0);
  if (!transB && cols == NR) {
    for (let p = 0; p < kc; p++) {
      const src = b + (<usize>((p0 + p) * n + j0) << 2);
      v128.store(dst, v128.load(src));
      v128.store(dst, v128.load(src, 16), 16);
      dst += 32;
    }
    return;
  }
  for (let p = 0; p < kc; p++) {
    for (let c = 0; c < NR; c++) {
      let v: f32 = 0;
      if (c < cols) {
        const j = j0 + c;
        const q = p0 + p;
        v = transB ? load<f32>(b + (<usize>(j * k + q) << 2)) : load<f32>(b + (<usize>(q * n + j) << 2));
      }
      store<f32>(dst + (<usize>(p * NR + c) << 2), v);
    }
  }
}

/** Multiplies one packed A panel by one packed B panel into a 4 x 8 tile at `c` (row stride ldc floats). */
// @ts-ignore: decorator
@inline function microKernel(ap: usize, bp: usize, kc: i32, c: usize, ldc: i32, accumulate: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    ap += 16;
    bp += 32;
  }
  const s = <usize>ldc << 2;
  if (accumulate) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c + s)); c11 = f32x4.add(c11, v128.load(c + s, 16));
    c20 = f32x4.add(c20, v128.load(c + 2 * s)); c21 = f32x4.add(c21, v128.load(c + 2 * s, 16));
    c30 = f32x4.add(c30, v128.load(c + 3 * s)); c31 = f32x4.add(c31, v128.load(c + 3 * s, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + s, c10); v128.store(c + s, c11, 16);
  v128.store(c + 2 * s, c20); v128.store(c + 2 * s, c21, 16);
  v128.store(c + 3 * s, c30); v128.store(c + 3 * s, c31, 16);
}

/** Bytes of scratch one gemm call needs: the A panel, the B panels for `cols` columns, a tile. */
export function gemmScratchBytes(cols: i32): i32 {
  const panels = (cols + NR - 1) / NR;
  return (KC * MR + panels * KC * NR + MR * NR) * 4;
}

/**
 * C[:, j0:j1] = op(A)·op(B)[:, j0:j1] (accumulate: +=). a, b, c and scratch are byte addresses;
 * scratch holds gemmScratchBytes(j1 - j0) bytes, 16-byte aligned.
 */
export function gemm(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, transA: bool, transB: bool, accumulate: bool, j0: i32, j1: i32, scratch: usize): void {
  const cols = j1 - j0;
  if (m <= 0 || cols <= 0) return;
  const apack = scratch;
  const bpack = apack + (<usize>(KC * MR) << 2);
  const panels = (cols + NR - 1) / NR;
  const tile = bpack + (<usize>(panels * KC * NR) << 2);
  if (k <= 0) {
    if (!accumulate) for (let i = 0; i < m; i++) memory.fill(c + (<usize>(i * n + j0) << 2), 0, <usize>cols << 2);
    return;
  }
  for (let p0 = 0; p0 < k; p0 += KC) {
    const kc = min(KC, k - p0);
    const acc = accumulate || p0 > 0;
    for (let t = 0; t < panels; t++) packB(b, transB, n, k, j0 + t * NR, p0, kc, bpack + (<usize>(t * KC * NR) << 2));
    for (let i0 = 0; i0 < m; i0 += MR) {
      packA(a, transA, m, k, i0, p0, kc, apack);
      const rows = min(MR, m - i0);
      for (let t = 0; t < panels; t++) {
        const jt = j0 + t * NR;
        const colsHere = min(NR, j1 - jt);
        const bp = bpack + (<usize>(t * KC * NR) << 2);
        if (rows == MR && colsHere == NR) {
          microKernel(apack, bp, kc, c + (<usize>(i0 * n + jt) << 2), n, acc);
        } else {
          microKernel(apack, bp, kc, tile, NR, false);
          for (let r = 0; r < rows; r++) {
            const dst = c + (<usize>((i0 + r) * n + jt) << 2);
            for (let q = 0; q < colsHere; q++) {
              const v = load<f32>(tile + (<usize>(r * NR + q) << 2));
              const at = dst + (<usize>q << 2);
              store<f32>(at, acc ? load<f32>(at) + v : v);
            }
          }
        }
      }
    }
  }
}

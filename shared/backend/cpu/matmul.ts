/**
 * CPU matrix multiply: C[m, n] = op(A) · op(B), where op transposes an operand that is stored
 * transposed. Transposes are never materialised: the kernel reads A(i, p) at i·sAi + p·sAp and
 * B(p, j) at p·sBp + j·sBj, so backward's Aᵀ·G and G·Bᵀ cost the same as forward.
 *
 * The body is a 4x4 register tile (16 accumulators in locals, 8 loads per 16 multiply-adds),
 * blocked over k so the slice of B a tile row walks stays in L2. Plain JS cannot use SIMD; a
 * WebAssembly kernel replaces this for speed, and this one stays as the reference.
 */

import type { MatmulSpec } from '../backend.js';
import { allocArray, dtypeOf, type FloatArray } from '../../tensor/dtype.js';

const KC = 256;

function gemm(a: FloatArray, aOff: number, sAi: number, sAp: number, b: FloatArray, bOff: number, sBp: number, sBj: number, c: FloatArray, cOff: number, m: number, n: number, k: number): void {
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let p0 = 0; p0 < k; p0 += KC) {
    const p1 = Math.min(k, p0 + KC);
    for (let i = 0; i < m4; i += 4) {
      const a0 = aOff + i * sAi;
      const a1 = a0 + sAi;
      const a2 = a1 + sAi;
      const a3 = a2 + sAi;
      const c0 = cOff + i * n;
      const c1 = c0 + n;
      const c2 = c1 + n;
      const c3 = c2 + n;
      for (let j = 0; j < n4; j += 4) {
        let x00 = 0, x01 = 0, x02 = 0, x03 = 0;
        let x10 = 0, x11 = 0, x12 = 0, x13 = 0;
        let x20 = 0, x21 = 0, x22 = 0, x23 = 0;
        let x30 = 0, x31 = 0, x32 = 0, x33 = 0;
        const bj = bOff + j * sBj;
        for (let p = p0; p < p1; p++) {
          const pa = p * sAp;
          const pb = bj + p * sBp;
          const va0 = a[a0 + pa], va1 = a[a1 + pa], va2 = a[a2 + pa], va3 = a[a3 + pa];
          const vb0 = b[pb], vb1 = b[pb + sBj], vb2 = b[pb + 2 * sBj], vb3 = b[pb + 3 * sBj];
          x00 += va0 * vb0; x01 += va0 * vb1; x02 += va0 * vb2; x03 += va0 * vb3;
          x10 += va1 * vb0; x11 += va1 * vb1; x12 += va1 * vb2; x13 += va1 * vb3;
          x20 += va2 * vb0; x21 += va2 * vb1; x22 += va2 * vb2; x23 += va2 * vb3;
          x30 += va3 * vb0; x31 += va3 * vb1; x32 += va3 * vb2; x33 += va3 * vb3;
        }
        c[c0 + j] += x00; c[c0 + j + 1] += x01; c[c0 + j + 2] += x02; c[c0 + j + 3] += x03;
        c[c1 + j] += x10; c[c1 + j + 1] += x11; c[c1 + j + 2] += x12; c[c1 + j + 3] += x13;
        c[c2 + j] += x20; c[c2 + j + 1] += x21; c[c2 + j + 2] += x22; c[c2 + j + 3] += x23;
        c[c3 + j] += x30; c[c3 + j + 1] += x31; c[c3 + j + 2] += x32; c[c3 + j + 3] += x33;
      }
    }
    // Edges that do not fill a 4x4 tile: the last m % 4 rows, and the last n % 4 columns.
    for (let i = 0; i < m; i++) {
      const jStart = i < m4 ? n4 : 0;
      if (jStart >= n) continue;
      const ai = aOff + i * sAi;
      const ci = cOff + i * n;
      for (let j = jStart; j < n; j++) {
        let s = 0;
        const bj = bOff + j * sBj;
        for (let p = p0; p < p1; p++) s += a[ai + p * sAp] * b[bj + p * sBp];
        c[ci + j] += s;
      }
    }
  }
}

export function matmulKernel(a: FloatArray, b: FloatArray, spec: MatmulSpec, into?: FloatArray): FloatArray {
  const { batch, m, n, k, transA, transB } = spec;
  // The kernel accumulates into C, so a recycled output must start at zero.
  const out = into ? into.fill(0) : allocArray(dtypeOf(a), batch * m * n);
  const sAi = transA ? 1 : k;
  const sAp = transA ? m : 1;
  const sBp = transB ? 1 : n;
  const sBj = transB ? k : 1;
  const aStride = spec.aBroadcast ? 0 : m * k;
  const bStride = spec.bBroadcast ? 0 : k * n;
  for (let t = 0; t < batch; t++) gemm(a, t * aStride, sAi, sAp, b, t * bStride, sBp, sBj, out, t * m * n, m, n, k);
  return out;
}

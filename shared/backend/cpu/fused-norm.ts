/**
 * Reference kernels for the fused NormKernels primitives (shared/backend/fused-norm.ts, where the
 * math of every forward and backward rule is written out): softmax, log-softmax, LayerNorm and GELU.
 *
 * Pure functions over Float32Array / Float64Array that write into a provided output (the CPU
 * backend passes fresh arrays, the wasm backend views of its heap, which may hold stale data: every
 * output element is therefore written, masked entries included). Arithmetic is in JavaScript
 * numbers (float64) and each result is rounded once when stored; per-row and per-column sums are
 * float64 whatever the data's dtype.
 */

import type { GeluApproximation } from '../fused-norm.js';
import type { FloatArray } from '../../tensor/dtype.js';
import { erf32, erf64 } from './erf.js';

function checkMatrix(op: string, length: number, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== length) {
    throw new RangeError(`${op}: ${length} elements cannot be viewed as [${rows}, ${cols}]`);
  }
}

function checkSame(op: string, a: FloatArray, b: FloatArray): void {
  if (a.length !== b.length) throw new RangeError(`${op}: operands have ${a.length} and ${b.length} elements`);
}

// ---- softmax ------------------------------------------------------------------------------------

/**
 * out = softmax of each row of x [rows, cols] (max-subtracted). With `causal`, row r is query
 * i = r mod cols of a [cols, cols] block: only entries j ≤ i are read, the rest are set to 0.
 */
export function softmaxKernel(x: FloatArray, out: FloatArray, rows: number, cols: number, causal: boolean): void {
  checkMatrix('softmax', x.length, rows, cols);
  checkSame('softmax', x, out);
  if (causal && cols > 0 && rows % cols !== 0) throw new RangeError(`softmax: causal rows ${rows} are not whole [${cols}, ${cols}] blocks`);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const n = causal ? (r % cols) + 1 : cols;
    let m = -Infinity;
    for (let j = 0; j < n; j++) if (x[o + j] > m) m = x[o + j];
    let s = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(x[o + j] - m);
      out[o + j] = e;
      s += e;
    }
    // Divide (rather than multiply by 1/s): in float64 each probability is then rounded once.
    for (let j = 0; j < n; j++) out[o + j] /= s;
    for (let j = n; j < cols; j++) out[o + j] = 0;
  }
}

/** out = y ⊙ (gy − Σⱼ gy⊙y) per row: softmax's backward from its output. */
export function softmaxBackwardKernel(y: FloatArray, gy: FloatArray, out: FloatArray, rows: number, cols: number): void {
  checkMatrix('softmaxBackward', y.length, rows, cols);
  checkSame('softmaxBackward', y, gy);
  checkSame('softmaxBackward', y, out);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += gy[o + j] * y[o + j];
    for (let j = 0; j < cols; j++) out[o + j] = y[o + j] * (gy[o + j] - dot);
  }
}

// ---- log-softmax --------------------------------------------------------------------------------

/** out = (x − m) − log Σ exp(x − m) per row, m the row maximum. */
export function logSoftmaxKernel(x: FloatArray, out: FloatArray, rows: number, cols: number): void {
  checkMatrix('logSoftmax', x.length, rows, cols);
  checkSame('logSoftmax', x, out);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > m) m = x[o + j];
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - m);
    const logSum = Math.log(s);
    for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - m - logSum;
  }
}

/** out = gy − exp(y)·Σⱼ gy per row: logSoftmax's backward from its output. */
export function logSoftmaxBackwardKernel(y: FloatArray, gy: FloatArray, out: FloatArray, rows: number, cols: number): void {
  checkMatrix('logSoftmaxBackward', y.length, rows, cols);
  checkSame('logSoftmaxBackward', y, gy);
  checkSame('logSoftmaxBackward', y, out);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += gy[o + j];
    for (let j = 0; j < cols; j++) out[o + j] = gy[o + j] - Math.exp(y[o + j]) * s;
  }
}

// ---- LayerNorm ----------------------------------------------------------------------------------

function checkParam(op: string, name: string, p: FloatArray | null, cols: number): void {
  if (p && p.length !== cols) throw new RangeError(`${op}: ${name} has ${p.length} elements for rows of ${cols}`);
}

/**
 * y = (x − μ)·rstd·γ + β per row, writing y [rows, cols] and the row statistics mean, rstd [rows].
 * Two passes for the variance (deviations from the mean, never E[x²] − μ²).
 */
export function layerNormKernel(
  x: FloatArray,
  weight: FloatArray | null,
  bias: FloatArray | null,
  rows: number,
  cols: number,
  eps: number,
  y: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
): void {
  checkMatrix('layerNorm', x.length, rows, cols);
  checkSame('layerNorm', x, y);
  checkParam('layerNorm', 'weight', weight, cols);
  checkParam('layerNorm', 'bias', bias, cols);
  if (mean.length !== rows || rstd.length !== rows) throw new RangeError(`layerNorm: mean and rstd need ${rows} elements`);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[o + j];
    const mu = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) {
      const d = x[o + j] - mu;
      v += d * d;
    }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    if (weight && bias) for (let j = 0; j < cols; j++) y[o + j] = (x[o + j] - mu) * rs * weight[j] + bias[j];
    else if (weight) for (let j = 0; j < cols; j++) y[o + j] = (x[o + j] - mu) * rs * weight[j];
    else if (bias) for (let j = 0; j < cols; j++) y[o + j] = (x[o + j] - mu) * rs + bias[j];
    else for (let j = 0; j < cols; j++) y[o + j] = (x[o + j] - mu) * rs;
  }
}

/**
 * LayerNorm's backward: gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = gy·γ and x̂ recomputed from
 * the saved mean and rstd; gWeight = Σ_rows gy·x̂ and gBias = Σ_rows gy when their outputs are given
 * (column sums in float64 scratch, then rounded once).
 */
export function layerNormBackwardKernel(
  gy: FloatArray,
  x: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
  weight: FloatArray | null,
  rows: number,
  cols: number,
  gx: FloatArray,
  gWeight: FloatArray | null,
  gBias: FloatArray | null,
): void {
  checkMatrix('layerNormBackward', x.length, rows, cols);
  checkSame('layerNormBackward', x, gy);
  checkSame('layerNormBackward', x, gx);
  checkParam('layerNormBackward', 'weight', weight, cols);
  checkParam('layerNormBackward', 'gWeight', gWeight, cols);
  checkParam('layerNormBackward', 'gBias', gBias, cols);
  if (mean.length !== rows || rstd.length !== rows) throw new RangeError(`layerNormBackward: mean and rstd need ${rows} elements`);
  const accW = gWeight ? new Float64Array(cols) : null;
  const accB = gBias ? new Float64Array(cols) : null;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r];
    const rs = rstd[r];
    // Pass 1: the row means of ĝ and ĝ·x̂ (the μ and σ² paths), and the parameter column sums.
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xh = (x[o + j] - mu) * rs;
      const g = gy[o + j];
      const gh = weight ? g * weight[j] : g;
      sumG += gh;
      sumGX += gh * xh;
      if (accW) accW[j] += g * xh;
      if (accB) accB[j] += g;
    }
    const mg = sumG / cols;
    const mgx = sumGX / cols;
    // Pass 2: gx.
    if (weight) for (let j = 0; j < cols; j++) gx[o + j] = rs * (gy[o + j] * weight[j] - mg - (x[o + j] - mu) * rs * mgx);
    else for (let j = 0; j < cols; j++) gx[o + j] = rs * (gy[o + j] - mg - (x[o + j] - mu) * rs * mgx);
  }
  if (gWeight && accW) gWeight.set(accW);
  if (gBias && accB) gBias.set(accB);
}

// ---- GELU ---------------------------------------------------------------------------------------

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = 0.044715;

/** out = GELU(x), exact (erf; erf32 for float32 data, erf64 for float64) or the tanh approximation. */
export function geluKernel(x: FloatArray, out: FloatArray, approximate: GeluApproximation): void {
  checkSame('gelu', x, out);
  const n = x.length;
  if (approximate === 'tanh') {
    // Same grouping as the composed (x·0.5)·(tanh(√(2/π)·(x + 0.044715·x³)) + 1).
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const u = (v + v * v * v * GELU_C) * SQRT_2_OVER_PI;
      out[i] = v * 0.5 * (Math.tanh(u) + 1);
    }
  } else if (out instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = v * 0.5 * (erf32(v * Math.SQRT1_2) + 1);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = v * 0.5 * (erf64(v * Math.SQRT1_2) + 1);
    }
  }
}

/** out = gy·GELU'(x): Φ(x) + x·φ(x) (exact), or the tanh form's derivative (see fused-norm.ts). */
export function geluBackwardKernel(x: FloatArray, gy: FloatArray, out: FloatArray, approximate: GeluApproximation): void {
  checkSame('geluBackward', x, gy);
  checkSame('geluBackward', x, out);
  const n = x.length;
  if (approximate === 'tanh') {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const t = Math.tanh((v + v * v * v * GELU_C) * SQRT_2_OVER_PI);
      const sech2 = 1 - t * t;
      // sech2 === 0 where tanh has saturated; skipping the term there avoids 0·∞ for huge |x|.
      const d = 0.5 * (1 + t) + (sech2 === 0 ? 0 : 0.5 * v * sech2 * SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v));
      out[i] = gy[i] * d;
    }
  } else if (out instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = gy[i] * (0.5 * (1 + erf32(v * Math.SQRT1_2)) + v * Math.exp(-0.5 * v * v) * INV_SQRT_2PI);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = gy[i] * (0.5 * (1 + erf64(v * Math.SQRT1_2)) + v * Math.exp(-0.5 * v * v) * INV_SQRT_2PI);
    }
  }
}

// ---- ReLU ---------------------------------------------------------------------------------------

/** out = x where x > 0, else 0; NaN propagates (NaN > 0 is false, so it is kept explicitly). */
export function reluKernel(x: FloatArray, out: FloatArray): void {
  checkSame('relu', x, out);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = v > 0 || Number.isNaN(v) ? v : 0;
  }
}

/** out = gy where x > 0, else 0 (NaN in x passes no gradient). */
export function reluBackwardKernel(x: FloatArray, gy: FloatArray, out: FloatArray): void {
  checkSame('reluBackward', x, gy);
  checkSame('reluBackward', x, out);
  for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? gy[i] : 0;
}

/**
 * Reference kernels for the fused RecurrentKernels primitives (shared/backend/fused-recurrent.ts,
 * where the math of every forward and backward rule is written out): one step of an LSTM, GRU or
 * Elman RNN cell, and its backward.
 *
 * Pure functions over Float32Array / Float64Array that write into provided outputs (the CPU backend
 * passes fresh arrays, the wasm backend views of its heap, which may hold stale data: every output
 * element is written). Arithmetic is in JavaScript numbers (float64). Every activation is stored
 * first and READ BACK from the output before it is used: in float32 the forward state update then
 * uses exactly the rounded gate values that backward sees in `act` (and that the composed ops,
 * which store every intermediate, used too).
 */

import type { FloatArray } from '../../tensor/dtype.js';
import type { RnnActivation } from '../fused-recurrent.js';

/** σ(x) without overflow (the unary 'sigmoid' kernel's formula): e^x is only taken for x < 0. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function checkDims(op: string, batch: number, hidden: number): void {
  if (!Number.isInteger(batch) || !Number.isInteger(hidden) || batch < 0 || hidden < 0) {
    throw new RangeError(`${op}: batch ${batch} and hidden ${hidden} must be non-negative integers`);
  }
}

/** `a` must hold exactly `length` elements. */
function checkLength(op: string, what: string, a: FloatArray | null, length: number): void {
  if (a !== null && a.length !== length) throw new RangeError(`${op}: ${what} has ${a.length} elements, expected ${length}`);
}

/** `a` must be a [rows, cols] matrix with rows `row` … `row` + batch − 1 inside it. */
function checkRows(op: string, what: string, a: FloatArray | null, row: number, batch: number, cols: number): void {
  if (a === null) return;
  if (cols > 0 && a.length % cols !== 0) throw new RangeError(`${op}: ${what} has ${a.length} elements, not whole rows of ${cols}`);
  const rows = cols > 0 ? a.length / cols : 0;
  if (!Number.isInteger(row) || row < 0 || (cols > 0 && row + batch > rows)) {
    throw new RangeError(`${op}: rows ${row} … ${row + batch - 1} of ${what} are outside its ${rows} rows`);
  }
}

// ---- LSTM ---------------------------------------------------------------------------------------

/**
 * a = gi[giRow + b] + gh[b] + bias; i, f, g, o = σ, σ, tanh, σ (a); c' = f c + i g; h' = o tanh(c').
 * Writes hOut, cOut [B, H] and actOut [B, 5H] = i, f, g, o, tanh(c').
 */
export function lstmCellKernel(
  gi: FloatArray,
  giRow: number,
  gh: FloatArray,
  bias: FloatArray | null,
  c: FloatArray,
  batch: number,
  hidden: number,
  hOut: FloatArray,
  cOut: FloatArray,
  actOut: FloatArray,
): void {
  const op = 'lstmCell';
  const H = hidden;
  const G = 4 * H;
  checkDims(op, batch, H);
  checkRows(op, 'gi', gi, giRow, batch, G);
  checkLength(op, 'gh', gh, batch * G);
  checkLength(op, 'bias', bias, G);
  checkLength(op, 'c', c, batch * H);
  checkLength(op, 'h out', hOut, batch * H);
  checkLength(op, 'c out', cOut, batch * H);
  checkLength(op, 'act out', actOut, batch * 5 * H);
  for (let b = 0; b < batch; b++) {
    const xi = (giRow + b) * G;
    const xh = b * G;
    const s = b * H;
    const ao = b * 5 * H;
    for (let j = 0; j < H; j++) {
      const bi = bias ? bias[j] : 0;
      const bf = bias ? bias[H + j] : 0;
      const bg = bias ? bias[2 * H + j] : 0;
      const bo = bias ? bias[3 * H + j] : 0;
      actOut[ao + j] = sigmoid(gi[xi + j] + (gh[xh + j] + bi));
      actOut[ao + H + j] = sigmoid(gi[xi + H + j] + (gh[xh + H + j] + bf));
      actOut[ao + 2 * H + j] = Math.tanh(gi[xi + 2 * H + j] + (gh[xh + 2 * H + j] + bg));
      actOut[ao + 3 * H + j] = sigmoid(gi[xi + 3 * H + j] + (gh[xh + 3 * H + j] + bo));
      const i = actOut[ao + j];
      const f = actOut[ao + H + j];
      const g = actOut[ao + 2 * H + j];
      const o = actOut[ao + 3 * H + j];
      cOut[s + j] = f * c[s + j] + i * g;
      actOut[ao + 4 * H + j] = Math.tanh(cOut[s + j]);
      hOut[s + j] = o * actOut[ao + 4 * H + j];
    }
  }
}

/**
 * dh' = gradOut[gradOutRow + b] + gradH; dc' = gradC + dh' o (1 − tanh²c');
 * gGates = [dc' g i(1−i), dc' c f(1−f), dc' i (1−g²), dh' tanh(c') o(1−o)]; gc = dc' f.
 */
export function lstmCellBackwardKernel(
  act: FloatArray,
  c: FloatArray,
  gradOut: FloatArray | null,
  gradOutRow: number,
  gradH: FloatArray | null,
  gradC: FloatArray | null,
  batch: number,
  hidden: number,
  gGatesOut: FloatArray,
  gcOut: FloatArray,
): void {
  const op = 'lstmCellBackward';
  const H = hidden;
  checkDims(op, batch, H);
  checkLength(op, 'act', act, batch * 5 * H);
  checkLength(op, 'c', c, batch * H);
  checkRows(op, 'gradOut', gradOut, gradOutRow, batch, H);
  checkLength(op, 'gradH', gradH, batch * H);
  checkLength(op, 'gradC', gradC, batch * H);
  checkLength(op, 'gGates out', gGatesOut, batch * 4 * H);
  checkLength(op, 'gc out', gcOut, batch * H);
  for (let b = 0; b < batch; b++) {
    const s = b * H;
    const ao = b * 5 * H;
    const go = b * 4 * H;
    const gr = (gradOutRow + b) * H;
    for (let j = 0; j < H; j++) {
      const i = act[ao + j];
      const f = act[ao + H + j];
      const g = act[ao + 2 * H + j];
      const o = act[ao + 3 * H + j];
      const tc = act[ao + 4 * H + j];
      const dh = (gradOut ? gradOut[gr + j] : 0) + (gradH ? gradH[s + j] : 0);
      const dc = (gradC ? gradC[s + j] : 0) + dh * o * (1 - tc * tc);
      gGatesOut[go + j] = dc * g * i * (1 - i);
      gGatesOut[go + H + j] = dc * c[s + j] * f * (1 - f);
      gGatesOut[go + 2 * H + j] = dc * i * (1 - g * g);
      gGatesOut[go + 3 * H + j] = dh * tc * o * (1 - o);
      gcOut[s + j] = dc * f;
    }
  }
}

// ---- GRU ----------------------------------------------------------------------------------------

/**
 * q = gh[b] + bias; r = σ(gi_r + q_r); z = σ(gi_z + q_z); n = tanh(gi_n + r q_n); h' = n + z (h − n).
 * Writes hOut [B, H] and actOut [B, 4H] = r, z, n, q_n.
 */
export function gruCellKernel(
  gi: FloatArray,
  giRow: number,
  gh: FloatArray,
  bias: FloatArray | null,
  h: FloatArray,
  batch: number,
  hidden: number,
  hOut: FloatArray,
  actOut: FloatArray,
): void {
  const op = 'gruCell';
  const H = hidden;
  const G = 3 * H;
  checkDims(op, batch, H);
  checkRows(op, 'gi', gi, giRow, batch, G);
  checkLength(op, 'gh', gh, batch * G);
  checkLength(op, 'bias', bias, G);
  checkLength(op, 'h', h, batch * H);
  checkLength(op, 'h out', hOut, batch * H);
  checkLength(op, 'act out', actOut, batch * 4 * H);
  for (let b = 0; b < batch; b++) {
    const xi = (giRow + b) * G;
    const xh = b * G;
    const s = b * H;
    const ao = b * 4 * H;
    for (let j = 0; j < H; j++) {
      const qr = gh[xh + j] + (bias ? bias[j] : 0);
      const qz = gh[xh + H + j] + (bias ? bias[H + j] : 0);
      actOut[ao + j] = sigmoid(gi[xi + j] + qr);
      actOut[ao + H + j] = sigmoid(gi[xi + H + j] + qz);
      actOut[ao + 3 * H + j] = gh[xh + 2 * H + j] + (bias ? bias[2 * H + j] : 0);
      const r = actOut[ao + j];
      const z = actOut[ao + H + j];
      actOut[ao + 2 * H + j] = Math.tanh(gi[xi + 2 * H + j] + r * actOut[ao + 3 * H + j]);
      const n = actOut[ao + 2 * H + j];
      hOut[s + j] = n + z * (h[s + j] - n);
    }
  }
}

/**
 * dh' = gradOut[gradOutRow + b] + gradH + gradHDirect; dn = dh'(1 − z); dz = dh'(h − n);
 * d a_n = dn (1 − n²); d a_z = dz z(1 − z); d a_r = d a_n q_n r(1 − r);
 * gGi = [d a_r, d a_z, d a_n]; gGh = [d a_r, d a_z, d a_n r]; ghOut = dh' z.
 */
export function gruCellBackwardKernel(
  act: FloatArray,
  h: FloatArray,
  gradOut: FloatArray | null,
  gradOutRow: number,
  gradH: FloatArray | null,
  gradHDirect: FloatArray | null,
  batch: number,
  hidden: number,
  gGiOut: FloatArray,
  gGhOut: FloatArray,
  ghOut: FloatArray,
): void {
  const op = 'gruCellBackward';
  const H = hidden;
  checkDims(op, batch, H);
  checkLength(op, 'act', act, batch * 4 * H);
  checkLength(op, 'h', h, batch * H);
  checkRows(op, 'gradOut', gradOut, gradOutRow, batch, H);
  checkLength(op, 'gradH', gradH, batch * H);
  checkLength(op, 'gradHDirect', gradHDirect, batch * H);
  checkLength(op, 'gGi out', gGiOut, batch * 3 * H);
  checkLength(op, 'gGh out', gGhOut, batch * 3 * H);
  checkLength(op, 'gh out', ghOut, batch * H);
  for (let b = 0; b < batch; b++) {
    const s = b * H;
    const ao = b * 4 * H;
    const go = b * 3 * H;
    const gr = (gradOutRow + b) * H;
    for (let j = 0; j < H; j++) {
      const r = act[ao + j];
      const z = act[ao + H + j];
      const n = act[ao + 2 * H + j];
      const qn = act[ao + 3 * H + j];
      const dh = (gradOut ? gradOut[gr + j] : 0) + (gradH ? gradH[s + j] : 0) + (gradHDirect ? gradHDirect[s + j] : 0);
      const dan = dh * (1 - z) * (1 - n * n);
      const daz = dh * (h[s + j] - n) * z * (1 - z);
      const dar = dan * qn * r * (1 - r);
      gGiOut[go + j] = dar;
      gGiOut[go + H + j] = daz;
      gGiOut[go + 2 * H + j] = dan;
      gGhOut[go + j] = dar;
      gGhOut[go + H + j] = daz;
      gGhOut[go + 2 * H + j] = dan * r;
      ghOut[s + j] = dh * z;
    }
  }
}

// ---- Elman RNN ----------------------------------------------------------------------------------

/** h' = act(gi[giRow + b] + gh[b] + bias), act = tanh or max(0, ·). Writes hOut [B, H]. */
export function rnnCellKernel(
  activation: RnnActivation,
  gi: FloatArray,
  giRow: number,
  gh: FloatArray,
  bias: FloatArray | null,
  batch: number,
  hidden: number,
  hOut: FloatArray,
): void {
  const op = 'rnnCell';
  const H = hidden;
  checkDims(op, batch, H);
  checkRows(op, 'gi', gi, giRow, batch, H);
  checkLength(op, 'gh', gh, batch * H);
  checkLength(op, 'bias', bias, H);
  checkLength(op, 'h out', hOut, batch * H);
  const relu = activation === 'relu';
  for (let b = 0; b < batch; b++) {
    const xi = (giRow + b) * H;
    const s = b * H;
    for (let j = 0; j < H; j++) {
      const a = gi[xi + j] + (gh[s + j] + (bias ? bias[j] : 0));
      hOut[s + j] = relu ? (a > 0 ? a : 0) : Math.tanh(a);
    }
  }
}

/** dh' = gradOut[gradOutRow + b] + gradH; d a = dh'(1 − h'²) (tanh) or dh'·[h' > 0] (ReLU). */
export function rnnCellBackwardKernel(
  activation: RnnActivation,
  h: FloatArray,
  gradOut: FloatArray | null,
  gradOutRow: number,
  gradH: FloatArray | null,
  batch: number,
  hidden: number,
  gOut: FloatArray,
): void {
  const op = 'rnnCellBackward';
  const H = hidden;
  checkDims(op, batch, H);
  checkLength(op, 'h', h, batch * H);
  checkRows(op, 'gradOut', gradOut, gradOutRow, batch, H);
  checkLength(op, 'gradH', gradH, batch * H);
  checkLength(op, 'g out', gOut, batch * H);
  const relu = activation === 'relu';
  for (let b = 0; b < batch; b++) {
    const s = b * H;
    const gr = (gradOutRow + b) * H;
    for (let j = 0; j < H; j++) {
      const dh = (gradOut ? gradOut[gr + j] : 0) + (gradH ? gradH[s + j] : 0);
      const y = h[s + j];
      gOut[s + j] = relu ? (y > 0 ? dh : 0) : dh * (1 - y * y);
    }
  }
}

/**
 * WGSL recurrent cells: one time step of an LSTM, GRU or Elman RNN, and its backward. The contracts,
 * with every formula, are in shared/backend/fused-recurrent.ts; the reference is
 * shared/backend/cpu/fused-recurrent.ts, and each expression below keeps its grouping.
 *
 * Approach. One thread per (b, j) element of the [B, H] state (b = i / H, j = i mod H), reading its
 * G gate columns k·H + j of the [B, G·H] inputs; a `grid()` dispatch of 256-thread workgroups.
 * The step's rows of the time-major sequences `gi` and `gradOut` are addressed with the row
 * offsets giRow / gradOutRow passed as uniforms (storage binding offsets would have to be
 * 256-byte aligned, which t·B·G·H·4 bytes is not in general).
 *
 * Optional inputs (bias, and the gradient inputs of the backward kernels, null meaning zero): with
 * layout 'auto' every declared binding must be bound and used, so each null pattern compiles its
 * own variant, which declares only the buffers it is given and reads 0 for the others (at most 8
 * variants per kernel, each compiled once).
 *
 * Precision. The reference computes in float64 and rounds each stored value once; here arithmetic
 * is float32 (WGSL has no f64), a few ulps apart. Activations are used in the float32 form in which
 * they are stored, as the reference does by reading them back.
 *
 * Numerical traps:
 *   - σ is the overflow-free sigmoid of MATH_WGSL (e^x only for x < 0), the reference's formula.
 *   - tanh is MATH_WGSL's safe_tanh (argument clamped to ±15, where tanh is ±1 in float32): some
 *     drivers compute tanh through exp and give NaN for large arguments.
 *   - Backward takes every derivative from the SAVED activations (σ' = s(1 − s), tanh' = 1 − t²),
 *     never from pre-activations: for a saturated gate it is then exactly 0, not ∞/∞.
 *   - ReLU's gradient is a select on h' > 0, so an infinite dh' where h' = 0 gives 0, not NaN.
 */

/// <reference types="@webgpu/types" />

import type { RnnActivation } from '../../fused-recurrent.js';
import { grid, linearIndex, uniformPrelude, Uniforms, type GpuContext } from '../context.js';
import { MATH_WGSL, WG } from './elementwise.js';

/** A storage input that may be absent: its name, and whether it is bound. */
type Binding = readonly [name: string, writable: boolean, present?: boolean];

/**
 * The WGSL of a cell kernel: uniform words batch, hidden, row (giRow or gradOutRow); storage
 * bindings 1, 2, … for the present entries of `list`, in order; `body` runs for each of the
 * n = B·H elements with `b`, `j`, `i` (= b·H + j) and `H` defined.
 */
function cellSource(list: readonly Binding[], body: string): string {
  let n = 1;
  const decls = list
    .filter(([, , present]) => present !== false)
    .map(([name, writable]) => `@group(0) @binding(${n++}) var<storage, ${writable ? 'read_write' : 'read'}> ${name}: array<f32>;`)
    .join('\n');
  return `${uniformPrelude(3)}${MATH_WGSL}
${decls}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${linearIndex(WG)};
  let B = pu(0u);
  let H = pu(1u);
  let row = pu(2u);
  if (i >= B * H) { return; }
  let b = i / H;
  let j = i % H;
${body}
}`;
}

/** The buffers of the present entries, in binding order. */
function present(...buffers: Array<GPUBuffer | null>): GPUBuffer[] {
  return buffers.filter((b): b is GPUBuffer => b !== null);
}

/** A variant key: one letter per optional buffer, '1' bound or '0' null. */
function pattern(...buffers: Array<GPUBuffer | null>): string {
  return buffers.map((b) => (b === null ? '0' : '1')).join('');
}

function checkDims(op: string, batch: number, hidden: number, ...rows: number[]): void {
  if (!Number.isInteger(batch) || !Number.isInteger(hidden) || batch < 0 || hidden < 0) throw new RangeError(`${op}: batch ${batch} and hidden ${hidden} must be non-negative integers`);
  for (const r of rows) if (!Number.isInteger(r) || r < 0) throw new RangeError(`${op}: row offset ${r} must be a non-negative integer`);
}

function run(ctx: GpuContext, key: string, source: () => string, buffers: GPUBuffer[], batch: number, hidden: number, row: number): void {
  const n = batch * hidden;
  if (n === 0) return;
  ctx.dispatch(ctx.kernel(key, source), buffers, new Uniforms().u32(batch, hidden, row), grid(n, WG));
}

/** `name[index]`, or 0.0 when the buffer is absent (a null gradient or bias is zero). */
function opt(has: boolean, name: string, index: string): string {
  return has ? `${name}[${index}]` : '0.0';
}

// ---- LSTM ---------------------------------------------------------------------------------------

export function lstmCellGpu(ctx: GpuContext, gi: GPUBuffer, giRow: number, gh: GPUBuffer, bias: GPUBuffer | null, c: GPUBuffer, batch: number, hidden: number): { h: GPUBuffer; c: GPUBuffer; act: GPUBuffer } {
  checkDims('lstmCell', batch, hidden, giRow);
  const n = batch * hidden;
  const hOut = ctx.alloc(4 * n);
  const cOut = ctx.alloc(4 * n);
  const act = ctx.alloc(4 * 5 * n);
  const hasBias = bias !== null;
  // a = gi + (gh + bias): the reference's grouping (without a bias, gi + gh).
  const pre = (k: number) => (hasBias ? `gi[xi + ${k}u * H + j] + (gh[xh + ${k}u * H + j] + bias[${k}u * H + j])` : `gi[xi + ${k}u * H + j] + gh[xh + ${k}u * H + j]`);
  const source = () =>
    cellSource(
      [
        ['gi', false],
        ['gh', false],
        ['bias', false, hasBias],
        ['c', false],
        ['h_out', true],
        ['c_out', true],
        ['act', true],
      ],
      `  let xi = (row + b) * 4u * H;
  let xh = b * 4u * H;
  let ao = b * 5u * H;
  let ig = sigmoid(${pre(0)});
  let fg = sigmoid(${pre(1)});
  let gg = safe_tanh(${pre(2)});
  let og = sigmoid(${pre(3)});
  let cn = fg * c[i] + ig * gg;
  let tc = safe_tanh(cn);
  act[ao + j] = ig;
  act[ao + H + j] = fg;
  act[ao + 2u * H + j] = gg;
  act[ao + 3u * H + j] = og;
  act[ao + 4u * H + j] = tc;
  c_out[i] = cn;
  h_out[i] = og * tc;`,
    );
  run(ctx, `lstmCell:${pattern(bias)}`, source, present(gi, gh, bias, c, hOut, cOut, act), batch, hidden, giRow);
  return { h: hOut, c: cOut, act };
}

export function lstmCellBackwardGpu(
  ctx: GpuContext,
  act: GPUBuffer,
  c: GPUBuffer,
  gradOut: GPUBuffer | null,
  gradOutRow: number,
  gradH: GPUBuffer | null,
  gradC: GPUBuffer | null,
  batch: number,
  hidden: number,
): { gGates: GPUBuffer; gc: GPUBuffer } {
  checkDims('lstmCellBackward', batch, hidden, gradOutRow);
  const n = batch * hidden;
  const gGates = ctx.alloc(4 * 4 * n);
  const gc = ctx.alloc(4 * n);
  const [hasOut, hasH, hasC] = [gradOut !== null, gradH !== null, gradC !== null];
  const source = () =>
    cellSource(
      [
        ['act', false],
        ['c', false],
        ['grad_out', false, hasOut],
        ['grad_h', false, hasH],
        ['grad_c', false, hasC],
        ['g_gates', true],
        ['gc', true],
      ],
      `  let ao = b * 5u * H;
  let go = b * 4u * H;
  let ig = act[ao + j];
  let fg = act[ao + H + j];
  let gg = act[ao + 2u * H + j];
  let og = act[ao + 3u * H + j];
  let tc = act[ao + 4u * H + j];
  let dh = ${opt(hasOut, 'grad_out', '(row + b) * H + j')} + ${opt(hasH, 'grad_h', 'i')};
  let dc = ${opt(hasC, 'grad_c', 'i')} + dh * og * (1.0 - tc * tc);
  g_gates[go + j] = dc * gg * ig * (1.0 - ig);
  g_gates[go + H + j] = dc * c[i] * fg * (1.0 - fg);
  g_gates[go + 2u * H + j] = dc * ig * (1.0 - gg * gg);
  g_gates[go + 3u * H + j] = dh * tc * og * (1.0 - og);
  gc[i] = dc * fg;`,
    );
  run(ctx, `lstmCellBackward:${pattern(gradOut, gradH, gradC)}`, source, present(act, c, gradOut, gradH, gradC, gGates, gc), batch, hidden, gradOutRow);
  return { gGates, gc };
}

// ---- GRU ----------------------------------------------------------------------------------------

export function gruCellGpu(ctx: GpuContext, gi: GPUBuffer, giRow: number, gh: GPUBuffer, bias: GPUBuffer | null, h: GPUBuffer, batch: number, hidden: number): { h: GPUBuffer; act: GPUBuffer } {
  checkDims('gruCell', batch, hidden, giRow);
  const n = batch * hidden;
  const hOut = ctx.alloc(4 * n);
  const act = ctx.alloc(4 * 4 * n);
  const hasBias = bias !== null;
  // q = gh + bias (W_hh·h + b_hh); b_hn stays inside the reset product r ⊙ q_n.
  const q = (k: number) => (hasBias ? `gh[xh + ${k}u * H + j] + bias[${k}u * H + j]` : `gh[xh + ${k}u * H + j]`);
  const source = () =>
    cellSource(
      [
        ['gi', false],
        ['gh', false],
        ['bias', false, hasBias],
        ['h', false],
        ['h_out', true],
        ['act', true],
      ],
      `  let xi = (row + b) * 3u * H;
  let xh = b * 3u * H;
  let ao = b * 4u * H;
  let r = sigmoid(gi[xi + j] + (${q(0)}));
  let z = sigmoid(gi[xi + H + j] + (${q(1)}));
  let qn = ${q(2)};
  let nn = safe_tanh(gi[xi + 2u * H + j] + r * qn);
  act[ao + j] = r;
  act[ao + H + j] = z;
  act[ao + 2u * H + j] = nn;
  act[ao + 3u * H + j] = qn;
  // h' = n + z (h - n), the composed ops' form of (1 - z) n + z h.
  h_out[i] = nn + z * (h[i] - nn);`,
    );
  run(ctx, `gruCell:${pattern(bias)}`, source, present(gi, gh, bias, h, hOut, act), batch, hidden, giRow);
  return { h: hOut, act };
}

export function gruCellBackwardGpu(
  ctx: GpuContext,
  act: GPUBuffer,
  h: GPUBuffer,
  gradOut: GPUBuffer | null,
  gradOutRow: number,
  gradH: GPUBuffer | null,
  gradHDirect: GPUBuffer | null,
  batch: number,
  hidden: number,
): { gGi: GPUBuffer; gGh: GPUBuffer; gh: GPUBuffer } {
  checkDims('gruCellBackward', batch, hidden, gradOutRow);
  const n = batch * hidden;
  const gGi = ctx.alloc(4 * 3 * n);
  const gGh = ctx.alloc(4 * 3 * n);
  const ghOut = ctx.alloc(4 * n);
  const [hasOut, hasH, hasD] = [gradOut !== null, gradH !== null, gradHDirect !== null];
  const source = () =>
    cellSource(
      [
        ['act', false],
        ['h', false],
        ['grad_out', false, hasOut],
        ['grad_h', false, hasH],
        ['grad_hd', false, hasD],
        ['g_gi', true],
        ['g_gh', true],
        ['gh_out', true],
      ],
      `  let ao = b * 4u * H;
  let go = b * 3u * H;
  let r = act[ao + j];
  let z = act[ao + H + j];
  let nn = act[ao + 2u * H + j];
  let qn = act[ao + 3u * H + j];
  let dh = ${opt(hasOut, 'grad_out', '(row + b) * H + j')} + ${opt(hasH, 'grad_h', 'i')} + ${opt(hasD, 'grad_hd', 'i')};
  let dan = dh * (1.0 - z) * (1.0 - nn * nn);
  let daz = dh * (h[i] - nn) * z * (1.0 - z);
  let dar = dan * qn * r * (1.0 - r);
  g_gi[go + j] = dar;
  g_gi[go + H + j] = daz;
  g_gi[go + 2u * H + j] = dan;
  g_gh[go + j] = dar;
  g_gh[go + H + j] = daz;
  g_gh[go + 2u * H + j] = dan * r;
  gh_out[i] = dh * z;`,
    );
  run(ctx, `gruCellBackward:${pattern(gradOut, gradH, gradHDirect)}`, source, present(act, h, gradOut, gradH, gradHDirect, gGi, gGh, ghOut), batch, hidden, gradOutRow);
  return { gGi, gGh, gh: ghOut };
}

// ---- Elman RNN ----------------------------------------------------------------------------------

export function rnnCellGpu(ctx: GpuContext, activation: RnnActivation, gi: GPUBuffer, giRow: number, gh: GPUBuffer, bias: GPUBuffer | null, batch: number, hidden: number): GPUBuffer {
  checkDims('rnnCell', batch, hidden, giRow);
  const hOut = ctx.alloc(4 * batch * hidden);
  const hasBias = bias !== null;
  // ReLU as the reference: a > 0 ? a : 0 (so NaN gives 0).
  const act = activation === 'relu' ? 'select(0.0, a, a > 0.0)' : 'safe_tanh(a)';
  const source = () =>
    cellSource(
      [
        ['gi', false],
        ['gh', false],
        ['bias', false, hasBias],
        ['h_out', true],
      ],
      `  let a = gi[(row + b) * H + j] + ${hasBias ? '(gh[i] + bias[j])' : 'gh[i]'};
  h_out[i] = ${act};`,
    );
  run(ctx, `rnnCell:${activation}:${pattern(bias)}`, source, present(gi, gh, bias, hOut), batch, hidden, giRow);
  return hOut;
}

export function rnnCellBackwardGpu(ctx: GpuContext, activation: RnnActivation, h: GPUBuffer, gradOut: GPUBuffer | null, gradOutRow: number, gradH: GPUBuffer | null, batch: number, hidden: number): GPUBuffer {
  checkDims('rnnCellBackward', batch, hidden, gradOutRow);
  const gOut = ctx.alloc(4 * batch * hidden);
  const [hasOut, hasH] = [gradOut !== null, gradH !== null];
  // tanh' = 1 − h'² from the saved output; ReLU passes dh' where h' > 0 (0 at a ≤ 0, as the relu op).
  const grad = activation === 'relu' ? 'select(0.0, dh, y > 0.0)' : 'dh * (1.0 - y * y)';
  const source = () =>
    cellSource(
      [
        ['h', false],
        ['grad_out', false, hasOut],
        ['grad_h', false, hasH],
        ['g_out', true],
      ],
      `  let dh = ${opt(hasOut, 'grad_out', '(row + b) * H + j')} + ${opt(hasH, 'grad_h', 'i')};
  let y = h[i];
  g_out[i] = ${grad};`,
    );
  run(ctx, `rnnCellBackward:${activation}:${pattern(gradOut, gradH)}`, source, present(h, gradOut, gradH, gOut), batch, hidden, gradOutRow);
  return gOut;
}

/**
 * Fused Backend primitives for recurrent cells (LSTM, GRU, Elman RNN), forward and backward side
 * by side. Declared here and implemented by every backend: the TypeScript reference kernels in
 * shared/backend/cpu/fused-recurrent.ts, which the CPU backend runs on its arrays and the wasm
 * backend on views of its heap.
 *
 * One time step of a recurrent layer is, as in cuDNN, ONE matrix product gh = h·W_hhᵀ (run by the
 * caller with `matmul`) and ONE of the cell kernels below, which adds the step's input projection
 * and the recurrent bias, applies the gate nonlinearities and the state update; backward is ONE
 * cell-backward kernel and ONE product dGates·W_hh. The whole-layer op that drives them through
 * time (and computes the weight gradients in one product over all steps) is shared/ops/recurrent.ts.
 *
 * Conventions shared by every kernel:
 *   - B = `batch`, H = `hidden`, G = gates (LSTM 4: i, f, g, o; GRU 3: r, z, n; RNN 1), all
 *     matrices row-major, gates stacked along the columns in PyTorch's order: column block k·H …
 *     (k+1)·H − 1 of a [B, G·H] matrix is gate k.
 *   - `gi` is the input projection W_ih·x + b_ih of a whole sequence, [rows, G·H] time-major; the
 *     step reads its rows `giRow` … `giRow` + B − 1 (giRow = t·B), so no per-step slice is copied.
 *     Likewise `gradOut` (the gradient of the layer's output sequence, [rows, H]) is read at rows
 *     `gradOutRow` … `gradOutRow` + B − 1. A null `gradOut` is zero.
 *   - `gh` is the recurrent product h·W_hhᵀ [B, G·H] WITHOUT bias; `bias` is b_hh [G·H] or null.
 *   - Gradient inputs that are null are zeros (the last step has no recurrent gradient yet).
 *   - Every result is a new buffer of the inputs' dtype, every element written. Arithmetic is in
 *     float64 (JavaScript numbers) and each stored value is rounded once to the dtype.
 *
 * Numerical traps, common to all cells:
 *   - σ(x) is evaluated without overflow: 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) for x < 0 (the
 *     same formula as the unary 'sigmoid' kernel, so results equal the composed ops).
 *   - Derivatives come from the SAVED (rounded) activations: σ' = s(1 − s), tanh' = 1 − t². They
 *     are never recomputed from pre-activations (for |x| large e^x overflows and σ'(x) computed as
 *     e^−x/(1 + e^−x)² becomes ∞/∞ = NaN; from the saved s it is exactly 0, the right limit), and
 *     in float32 the saved values are what forward actually used.
 *   - LSTM saves tanh(c') in `act`: recomputing it in backward from the rounded c' would differ from
 *     the forward value in float32.
 */

import type { DeviceBuffer } from './backend.js';

/** The result of one LSTM step. */
export interface LstmCellResult {
  /** h' [B, H]. */
  readonly h: DeviceBuffer;
  /** c' [B, H]. */
  readonly c: DeviceBuffer;
  /** What backward needs, [B, 5H]: the post-activation gates i, f, g, o, then tanh(c'). */
  readonly act: DeviceBuffer;
}

/** Gradients of one LSTM step. */
export interface LstmCellGrads {
  /**
   * dL/d(pre-activation gates) [B, 4H]: the gradient of the step's rows of `gi`, of `gh` and,
   * summed over rows, of b_hh.
   */
  readonly gGates: DeviceBuffer;
  /** dL/dc of the previous cell state [B, H]. */
  readonly gc: DeviceBuffer;
}

/** The result of one GRU step. */
export interface GruCellResult {
  /** h' [B, H]. */
  readonly h: DeviceBuffer;
  /** What backward needs, [B, 4H]: r, z, n, then the recurrent candidate term W_hn·h + b_hn. */
  readonly act: DeviceBuffer;
}

/** Gradients of one GRU step. */
export interface GruCellGrads {
  /** dL/d(step rows of gi) [B, 3H]. */
  readonly gGi: DeviceBuffer;
  /** dL/d(gh + b_hh) [B, 3H] (differs from gGi in the n block: it is multiplied by r). */
  readonly gGh: DeviceBuffer;
  /**
   * The direct part of dL/dh (previous hidden state) [B, H]: z ⊙ dh'. The full gradient adds the
   * part through the gates, gGh·W_hh, which the caller computes with one product.
   */
  readonly gh: DeviceBuffer;
}

/** The Elman RNN's nonlinearity. */
export type RnnActivation = 'tanh' | 'relu';

export interface RecurrentKernels {
  /**
   * One LSTM step (PyTorch, gates i, f, g, o):
   *   a  = gi[giRow + b] + gh[b] + bias            (pre-activations, [B, 4H])
   *   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
   *   c' = f ⊙ c + i ⊙ g                           h' = o ⊙ tanh(c')
   * Rounding: c' is formed as (f·c) + (i·g) and h' as o·tanh(c'), the composed ops' grouping.
   */
  lstmCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, c: DeviceBuffer, batch: number, hidden: number): LstmCellResult;

  /**
   * Backward of `lstmCell`, from its `act` and the previous cell state `c`. With
   *   dh' = gradOut[gradOutRow + b] + gradH        (the output's and the recurrence's gradient)
   *   dc' = gradC + dh' ⊙ o ⊙ (1 − tanh²(c'))      (gradC: gradient of c' from the next step / cT)
   * the rule is
   *   d a_i = dc' ⊙ g ⊙ i(1 − i)     d a_f = dc' ⊙ c ⊙ f(1 − f)
   *   d a_g = dc' ⊙ i ⊙ (1 − g²)     d a_o = dh' ⊙ tanh(c') ⊙ o(1 − o)
   *   gc    = dc' ⊙ f                              (gradient of the previous c)
   * gGates = [d a_i, d a_f, d a_g, d a_o]; the caller forms dh = gGates·W_hh with one product.
   */
  lstmCellBackward(
    act: DeviceBuffer,
    c: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradC: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): LstmCellGrads;

  /**
   * One GRU step (PyTorch, gates r, z, n; b_hn sits inside the reset product, so gi and gh cannot
   * be summed before the split):
   *   q = gh[b] + bias                              (W_hh·h + b_hh, [B, 3H])
   *   r = σ(gi_r + q_r)   z = σ(gi_z + q_z)   n = tanh(gi_n + r ⊙ q_n)
   *   h' = n + z ⊙ (h − n)                          (= (1 − z) ⊙ n + z ⊙ h, the composed ops' form)
   */
  gruCell(gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, h: DeviceBuffer, batch: number, hidden: number): GruCellResult;

  /**
   * Backward of `gruCell`, from its `act` and the previous hidden state `h`. With
   *   dh' = gradOut[gradOutRow + b] + gradH + gradHDirect
   * (gradH = gGh·W_hh and gradHDirect = gh of the following step's backward) the rule is
   *   dn = dh' ⊙ (1 − z)              dz = dh' ⊙ (h − n)             gh = dh' ⊙ z   (direct part)
   *   d a_n = dn ⊙ (1 − n²)           d a_z = dz ⊙ z(1 − z)
   *   dr = d a_n ⊙ q_n                d a_r = dr ⊙ r(1 − r)
   *   gGi = [d a_r, d a_z, d a_n]     gGh = [d a_r, d a_z, d a_n ⊙ r]
   */
  gruCellBackward(
    act: DeviceBuffer,
    h: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    gradHDirect: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): GruCellGrads;

  /**
   * One Elman RNN step: h' = act(gi[giRow + b] + gh[b] + bias), act = tanh or ReLU (max(0, a)).
   * h' is also all that backward needs.
   */
  rnnCell(activation: RnnActivation, gi: DeviceBuffer, giRow: number, gh: DeviceBuffer, bias: DeviceBuffer | null, batch: number, hidden: number): DeviceBuffer;

  /**
   * Backward of `rnnCell` from its output h': with dh' = gradOut[gradOutRow + b] + gradH,
   *   d a = dh' ⊙ (1 − h'²)  (tanh)      d a = dh' ⊙ [h' > 0]  (ReLU: 0 at a ≤ 0, as the relu op)
   * returns d a [B, H], the gradient of gi's rows, gh and b_hh; dh = d a·W_hh is the caller's product.
   */
  rnnCellBackward(
    activation: RnnActivation,
    h: DeviceBuffer,
    gradOut: DeviceBuffer | null,
    gradOutRow: number,
    gradH: DeviceBuffer | null,
    batch: number,
    hidden: number,
  ): DeviceBuffer;
}

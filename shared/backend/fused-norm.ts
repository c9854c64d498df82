/**
 * Fused Backend primitives for normalisation, activations and softmax (forward and backward side
 * by side). Declared here and implemented by every backend: the TypeScript reference kernels in
 * shared/backend/cpu/fused-norm.ts, which the CPU backend runs on host arrays and the wasm backend
 * on views of its heap.
 *
 * Each replaces a chain of elementwise / reduce passes (max, sub, exp, sum, div; mean, sub, mul,
 * sqrt; erf, mul, add) by one pass over the data, with its backward rule as a second primitive.
 *
 * Conventions shared by all of them:
 *   - buffers are dense and row-major; "rows, cols" views a buffer as a [rows, cols] matrix whose
 *     rows are the last axis of the tensor (rows · cols === buffer.length);
 *   - every result has the dtype of the input (float32 or float64) and is a new buffer;
 *   - per-row sums are accumulated in float64 (JavaScript numbers) even for float32 data, so a
 *     long row loses no more than one float32 rounding per stored value.
 */

import type { DeviceBuffer } from './backend.js';

/** GELU's form: 'none' is the exact x·Φ(x) (erf), 'tanh' GPT-2's approximation (as torch's `approximate`). */
export type GeluApproximation = 'none' | 'tanh';

/** LayerNorm's forward result: the output and, per row, the statistics its backward needs. */
export interface LayerNormResult {
  /** [rows, cols]: (x − μ)·rstd·γ + β. */
  readonly y: DeviceBuffer;
  /** [rows]: μ, the row mean. */
  readonly mean: DeviceBuffer;
  /** [rows]: 1/√(σ² + eps), σ² the biased variance of the row. */
  readonly rstd: DeviceBuffer;
}

/** Which parameter gradients LayerNorm's backward computes (the input's is always computed). */
export interface LayerNormGradRequest {
  readonly weight: boolean;
  readonly bias: boolean;
}

export interface LayerNormGrads {
  /** [rows, cols]. */
  readonly gx: DeviceBuffer;
  /** [cols], or null when not requested. */
  readonly gWeight: DeviceBuffer | null;
  /** [cols], or null when not requested. */
  readonly gBias: DeviceBuffer | null;
}

export interface NormKernels {
  /**
   * Row-wise softmax of x viewed as [rows, cols]: yᵢⱼ = exp(xᵢⱼ − mᵢ) / Σₖ exp(xᵢₖ − mᵢ),
   * mᵢ = maxⱼ xᵢⱼ.
   *
   * Numerical trap: exp overflows for large logits (float32 past ≈ 88). Subtracting the row
   * maximum leaves the ratio unchanged and keeps every exponent ≤ 0, so the sum is in [1, cols].
   *
   * `causal`: the rows are [T, T] blocks (cols === T, rows a multiple of T) of attention scores,
   * row r being query i = r mod T; keys j > i are masked. Their probability is exactly 0 and their
   * x is never read (no exp of them is computed; the maximum runs over j ≤ i only), so a masked
   * score of any value, NaN included, cannot leak in. Equal, up to rounding, to replacing masked
   * scores by a very negative finite value (the composed path's −1e9) before an unmasked softmax.
   */
  softmax(x: DeviceBuffer, rows: number, cols: number, causal: boolean): DeviceBuffer;
  /**
   * The gradient of softmax from its output y and the output's gradient gy:
   *   gxᵢⱼ = yᵢⱼ·(gyᵢⱼ − Σₖ gyᵢₖ·yᵢₖ),
   * from ∂yᵢₖ/∂xᵢⱼ = yᵢₖ(δⱼₖ − yᵢⱼ). The row maximum needs no term: it shifts every xᵢⱼ equally
   * and softmax is invariant to that shift. Entries with y = 0 (causally masked) get exactly 0,
   * so the same rule serves the causal form.
   */
  softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer;

  /**
   * Row-wise log-softmax: yᵢⱼ = (xᵢⱼ − mᵢ) − log Σₖ exp(xᵢₖ − mᵢ), mᵢ the row maximum.
   * Stable for any finite logits: the log's argument is in [1, cols], so no log(0) and no overflow
   * (unlike log(softmax(x)), which gives −∞ once a probability underflows).
   */
  logSoftmax(x: DeviceBuffer, rows: number, cols: number): DeviceBuffer;
  /**
   * The gradient of logSoftmax from its output y: gxᵢⱼ = gyᵢⱼ − exp(yᵢⱼ)·Σₖ gyᵢₖ, from
   * ∂yᵢₖ/∂xᵢⱼ = δⱼₖ − softmax(x)ᵢⱼ and softmax = exp(y). exp(y) ≤ 1, so it cannot overflow.
   */
  logSoftmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, rows: number, cols: number): DeviceBuffer;

  /**
   * LayerNorm over each row of x [rows, cols]: x̂ = (x − μ)·rstd, rstd = 1/√(σ² + eps),
   * y = x̂·γ + β (γ = weight [cols], β = bias [cols], each optional), σ² the biased variance
   * (divided by cols, as torch).
   *
   * Numerical traps: σ² is the mean of squared deviations from μ (two passes over the row), not
   * E[x²] − μ², which cancels catastrophically for rows with a large mean and can come out
   * negative (→ NaN). eps sits inside the root, so a constant row gives x̂ = 0 rather than 0/0
   * (with eps = 0 it is NaN, as the textbook formula). Sums are float64 for float32 data.
   */
  layerNorm(x: DeviceBuffer, weight: DeviceBuffer | null, bias: DeviceBuffer | null, rows: number, cols: number, eps: number): LayerNormResult;
  /**
   * LayerNorm's gradients from the output's gradient gy, the input x and the saved mean and rstd
   * (x̂ is recomputed rather than stored). With ĝ = gy·γ (gy when there is no weight) and means over
   * the row (n = cols):
   *   gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),
   * which is the chain rule through x̂ = (x − μ)·rstd with ∂μ/∂x = 1/n and ∂rstd/∂x = −rstd³(x − μ)/n;
   * the two subtracted means are exactly the μ and σ² paths. Parameter gradients sum over rows:
   *   gWeight = Σᵢ gyᵢ·x̂ᵢ,  gBias = Σᵢ gyᵢ  (column sums, accumulated in float64).
   */
  layerNormBackward(
    gy: DeviceBuffer,
    x: DeviceBuffer,
    mean: DeviceBuffer,
    rstd: DeviceBuffer,
    weight: DeviceBuffer | null,
    rows: number,
    cols: number,
    grads: LayerNormGradRequest,
  ): LayerNormGrads;

  /**
   * GELU, elementwise.
   *   'none': y = x·Φ(x) = x/2·(1 + erf(x/√2)); erf is shared/backend/cpu/erf.ts (erf64 for float64,
   *           the cheaper erf32 for float32 data, where its 1.5e-7 error is below the rounding).
   *   'tanh': y = x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).
   * Both saturate cleanly: erf and tanh go to ±1, so y → x or → 0 (−0) for large |x|.
   */
  gelu(x: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer;
  /**
   * GELU's gradient from the input x and the output's gradient gy: gx = gy·y'(x) with
   *   'none': y' = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π) (the Gaussian density);
   *   'tanh': y' = (1 + t)/2 + x/2·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(u).
   * Numerical trap (tanh form): for huge |x| (float64), x² overflows to ∞ while 1 − t² is exactly 0,
   * and 0·∞ = NaN; the second term is therefore dropped wherever 1 − t² is 0 (it is 0 there), which
   * leaves the slope's limit (1 for x > 0, 0 for x < 0). The exact form's x·φ(x) underflows to 0
   * without trouble for any finite x.
   */
  geluBackward(x: DeviceBuffer, gy: DeviceBuffer, approximate: GeluApproximation): DeviceBuffer;
  /** ReLU, elementwise: y = x where x > 0, else 0 (NaN stays NaN). One pass instead of a mask and a product. */
  relu(x: DeviceBuffer): DeviceBuffer;
  /**
   * ReLU's gradient from its input: gx = gy where x > 0, else exactly 0 (the subgradient at x = 0
   * is taken as 0, as PyTorch does). A masked copy rather than gy·[x > 0], so an infinite gy where
   * x ≤ 0 gives 0, not NaN.
   */
  reluBackward(x: DeviceBuffer, gy: DeviceBuffer): DeviceBuffer;
}

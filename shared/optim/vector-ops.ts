/**
 * Optional fast paths for the optimizers' per-element loops. A backend whose tensors live in its
 * own memory (the wasm backend) provides SIMD kernels that work on arrays inside that memory;
 * `alloc` makes optimizer state live there too. When an array is not in that memory, or no ops are
 * given, the optimizers run their plain TypeScript loops (the reference).
 */

/**
 * The scalars of one Adam update, all computed in float64 (a kernel must not form them itself in
 * float32: 1 − β2 from a float32 β2 = 0.999 is 1.3e-5 off, relatively). A kernel may then compute
 * in float32, as PyTorch does, staying within a few float32 roundings of the reference loop in
 * shared/optim/adam.ts.
 */
export interface AdamArgs {
  readonly beta1: number;
  readonly beta2: number;
  /** 1 − beta1 and 1 − beta2, computed once in float64 as the reference loop uses them. */
  readonly oneMinusBeta1: number;
  readonly oneMinusBeta2: number;
  readonly eps: number;
  /** Coupled L2 weight decay added to the gradient (Adam); 0 for AdamW. */
  readonly l2: number;
  /** Multiplier applied to p before the update: 1 − lr·wd for AdamW, 1 for Adam. */
  readonly shrink: number;
  readonly stepSize: number;
  readonly bias2Sqrt: number;
}

export interface VectorOps {
  /** A zeroed float32 array the kernels can work on (lives as long as the array is reachable). */
  alloc(length: number): Float32Array;
  /** One Adam update in place; false when an array is outside the kernels' memory. */
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, args: AdamArgs): boolean;
  /** out = Σ parts (float64 accumulation, in order); false when an array is outside the kernels' memory. */
  sum(out: Float32Array, parts: readonly Float32Array[]): boolean;
}

// AssemblyScript. The coordinator's per-step vector work at memory speed: summing the workers'
// gradient contributions, and the Adam / AdamW update, both over float32 with 128-bit SIMD.

/**
 * out[i] = Σ_s src_s[i] for the `count` sources whose addresses are stored (as u32) at `srcs`,
 * summed in source order in float64 (two lanes at a time) and rounded once.
 */
export function sumSources(out: usize, srcs: usize, count: i32, n: i32): void {
  let i = 0;
  const n4 = n & ~3;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    let lo = f64x2.splat(0);
    let hi = f64x2.splat(0);
    for (let s = 0; s < count; s++) {
      const x = v128.load(<usize>load<u32>(srcs + (<usize>s << 2)) + o);
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(x));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1)));
    }
    const a = f32x4.demote_f64x2_zero(lo);
    const b = f32x4.demote_f64x2_zero(hi);
    v128.store(out + o, i32x4.shuffle(a, b, 0, 1, 4, 5));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let acc: f64 = 0;
    for (let s = 0; s < count; s++) acc += <f64>load<f32>(<usize>load<u32>(srcs + (<usize>s << 2)) + o);
    store<f32>(out + o, <f32>acc);
  }
}

/**
 * One Adam step over n elements (see shared/optim/adam.ts for the math): with decoupled, p is
 * first scaled by shrink = 1 − lr·wd (AdamW); otherwise l2 = wd is added to the gradient (Adam).
 * stepSize = lr / (1 − β1^t) and bias2Sqrt = √(1 − β2^t) come from the caller, in float64.
 */
export function adam(p: usize, g: usize, m: usize, v: usize, n: i32, beta1: f32, beta2: f32, eps: f32, l2: f32, shrink: f32, stepSize: f32, bias2Sqrt: f32): void {
  const b1 = f32x4.splat(beta1);
  const b2 = f32x4.splat(beta2);
  const a1 = f32x4.splat(1 - beta1);
  const a2 = f32x4.splat(1 - beta2);
  const e = f32x4.splat(eps);
  const wd = f32x4.splat(l2);
  const sh = f32x4.splat(shrink);
  const ss = f32x4.splat(stepSize);
  const bc = f32x4.splat(bias2Sqrt);
  let i = 0;
  const n4 = n & ~3;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    let pi = f32x4.mul(v128.load(p + o), sh);
    const gi = f32x4.add(v128.load(g + o), f32x4.mul(wd, pi));
    const mi = f32x4.add(f32x4.mul(b1, v128.load(m + o)), f32x4.mul(a1, gi));
    const vi = f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(a2, f32x4.mul(gi, gi)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    pi = f32x4.sub(pi, f32x4.div(f32x4.mul(ss, mi), f32x4.add(f32x4.div(f32x4.sqrt(vi), bc), e)));
    v128.store(p + o, pi);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let pi = load<f32>(p + o) * shrink;
    const gi = load<f32>(g + o) + l2 * pi;
    const mi = beta1 * load<f32>(m + o) + (1 - beta1) * gi;
    const vi = beta2 * load<f32>(v + o) + (1 - beta2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    pi -= (stepSize * mi) / (Mathf.sqrt(vi) / bias2Sqrt + eps);
    store<f32>(p + o, pi);
  }
}

// AssemblyScript. The coordinator's per-step vector work with 128-bit SIMD over float32 arrays:
// summing the workers' gradient contributions, and the Adam / AdamW update, both computed in
// float64 lanes and rounded where the TypeScript reference rounds, so they match it exactly.

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

/** A float64x2 rounded to float32 and back: what storing each lane in a Float32Array does. */
// @ts-ignore: decorator
@inline function round32(x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(x));
}

/**
 * One Adam step over n elements, reproducing shared/optim/adam.ts bit for bit: every operation is
 * done in float64, in the reference's order, and rounded to float32 exactly where the reference
 * stores into its Float32Arrays (p after the AdamW shrink, m, v, and p after the update). With
 * decoupled, p is first scaled by shrink = 1 − lr·wd (AdamW); otherwise l2 = wd is added to the
 * gradient (Adam; shrink = 1, which leaves p unchanged). a1 = 1 − β1, a2 = 1 − β2, stepSize =
 * lr / (1 − β1^t) and bias2Sqrt = √(1 − β2^t) come from the caller, all in float64 (1 − β2 in
 * float32 would put v 1.3e-5 off, relatively, for β2 = 0.999).
 */
export function adam(p: usize, g: usize, m: usize, v: usize, n: i32, beta1: f64, beta2: f64, a1: f64, a2: f64, eps: f64, l2: f64, shrink: f64, stepSize: f64, bias2Sqrt: f64): void {
  const b1 = f64x2.splat(beta1);
  const b2 = f64x2.splat(beta2);
  const c1 = f64x2.splat(a1);
  const c2 = f64x2.splat(a2);
  const e = f64x2.splat(eps);
  const wd = f64x2.splat(l2);
  const sh = f64x2.splat(shrink);
  const ss = f64x2.splat(stepSize);
  const bc = f64x2.splat(bias2Sqrt);
  let i = 0;
  const n2 = n & ~1;
  // Two elements at a time: their 8 bytes load into the low half of a v128 and widen to f64x2.
  for (; i < n2; i += 2) {
    const o = <usize>i << 2;
    const pi = round32(f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(p + o)), sh));
    const gi = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(g + o)), f64x2.mul(wd, pi));
    const mi = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b1, f64x2.promote_low_f32x4(v128.load64_zero(m + o))), f64x2.mul(c1, gi)));
    const vi = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b2, f64x2.promote_low_f32x4(v128.load64_zero(v + o))), f64x2.mul(f64x2.mul(c2, gi), gi)));
    v128.store64_lane(m + o, mi, 0);
    v128.store64_lane(v + o, vi, 0);
    const num = f64x2.mul(ss, f64x2.promote_low_f32x4(mi));
    const den = f64x2.add(f64x2.div(f64x2.sqrt(f64x2.promote_low_f32x4(vi)), bc), e);
    v128.store64_lane(p + o, f32x4.demote_f64x2_zero(f64x2.sub(pi, f64x2.div(num, den))), 0);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const pi = <f64><f32>(<f64>load<f32>(p + o) * shrink);
    const gi = <f64>load<f32>(g + o) + l2 * pi;
    const mi = <f32>(beta1 * <f64>load<f32>(m + o) + a1 * gi);
    const vi = <f32>(beta2 * <f64>load<f32>(v + o) + a2 * gi * gi);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, <f32>(pi - (stepSize * <f64>mi) / (Math.sqrt(<f64>vi) / bias2Sqrt + eps)));
  }
}

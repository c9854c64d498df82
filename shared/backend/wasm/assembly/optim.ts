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

/**
 * One Adam step over n elements, in float32 as PyTorch computes it (see shared/optim/adam.ts for
 * the math): with decoupled, p is first scaled by shrink = 1 − lr·wd (AdamW); otherwise l2 = wd
 * is added to the gradient (Adam; shrink = 1). The scalars come from the caller computed in
 * float64 — a1 = 1 − β1 and a2 = 1 − β2 above all: formed here in float32 from β2 = 0.999 (itself
 * rounded), 1 − β2 is 1.3e-5 off, relatively, and so is every second moment — and are rounded to
 * float32 once. Each result is then within a few float32 roundings of the float64 reference
 * (test/backend/wasm-backend.test.ts bounds exp_avg, exp_avg_sq and p), at the speed of the plain
 * float32 loop; a bit-exact float64 version measured 2–3× slower, which an MLP step notices.
 */
export function adam(p: usize, g: usize, m: usize, v: usize, n: i32, beta1: f64, beta2: f64, a1: f64, a2: f64, eps: f64, l2: f64, shrink: f64, stepSize: f64, bias2Sqrt: f64): void {
  const b1 = f32x4.splat(<f32>beta1);
  const b2 = f32x4.splat(<f32>beta2);
  const c1 = f32x4.splat(<f32>a1);
  const c2 = f32x4.splat(<f32>a2);
  const e = f32x4.splat(<f32>eps);
  const wd = f32x4.splat(<f32>l2);
  const sh = f32x4.splat(<f32>shrink);
  const ss = f32x4.splat(<f32>stepSize);
  const bc = f32x4.splat(<f32>bias2Sqrt);
  let i = 0;
  const n4 = n & ~3;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    let pi = f32x4.mul(v128.load(p + o), sh);
    const gi = f32x4.add(v128.load(g + o), f32x4.mul(wd, pi));
    const mi = f32x4.add(f32x4.mul(b1, v128.load(m + o)), f32x4.mul(c1, gi));
    const vi = f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(f32x4.mul(c2, gi), gi));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    pi = f32x4.sub(pi, f32x4.div(f32x4.mul(ss, mi), f32x4.add(f32x4.div(f32x4.sqrt(vi), bc), e)));
    v128.store(p + o, pi);
  }
  const fb1 = <f32>beta1, fb2 = <f32>beta2, fa1 = <f32>a1, fa2 = <f32>a2, fe = <f32>eps;
  const fl2 = <f32>l2, fsh = <f32>shrink, fss = <f32>stepSize, fbc = <f32>bias2Sqrt;
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let pi = load<f32>(p + o) * fsh;
    const gi = load<f32>(g + o) + fl2 * pi;
    const mi = fb1 * load<f32>(m + o) + fa1 * gi;
    const vi = fb2 * load<f32>(v + o) + fa2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    pi -= (fss * mi) / (Mathf.sqrt(vi) / fbc + fe);
    store<f32>(p + o, pi);
  }
}

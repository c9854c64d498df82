// AssemblyScript. SIMD kernels for the transcendental-heavy fused primitives: the LSTM and GRU
// cells' forward (sigmoid, tanh), GELU and its derivative (erf, exp), row softmax (exp), and the
// unary exp / tanh / sigmoid / erf ops. The TypeScript reference kernels (shared/backend/cpu/
// fused-norm.ts, fused-recurrent.ts, elementwise.ts) compute the same functions with Math.exp /
// Math.tanh in float64 and round once; these run float32 polynomials four lanes at a time:
//   exp:  Cephes expf: n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two so r is exact to
//         float32), e^r by a degree-6 polynomial, 2^n by writing n + 127 into the exponent bits.
//         x is clamped to [−87.33, 88.37] first, where 2^n is a normal float: exp never returns
//         inf or a denormal (NaN passes through, as the clamps propagate it);
//   tanh: Cephes tanhf: x + x³·P(x²) for |x| < 0.625 (where 1 − 2/(e^{2x} + 1) would cancel and
//         lose relative accuracy), else sign(x)·(1 − 2/(e^{2|x|} + 1));
//   sigmoid: 1/(1 + e^{−x}) (the clamp keeps e^{−x} finite, so σ(−∞) → ~1e-38, not NaN);
//   erf:  Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7), the same formula as erf32.
// Each is within a few float32 ulps of the reference (relative 1e-6, absolute 1e-7 near 0), which
// the tests check against the reference kernels. Element tails (counts not a multiple of 4) run
// the same vector code on a splat and keep lane 0, so every element sees the same arithmetic.

// @ts-ignore: decorator
@inline function expv(x0: v128): v128 {
  const x = f32x4.max(f32x4.min(x0, f32x4.splat(88.37)), f32x4.splat(-87.33));
  const fx = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(0.5)));
  let r = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, z), r), f32x4.splat(1));
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(fx), i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2);
}

// @ts-ignore: decorator
@inline function sigmoidv(x: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, expv(f32x4.neg(x))));
}

// @ts-ignore: decorator
@inline function tanhv(x: v128): v128 {
  const ax = f32x4.abs(x);
  // Large |x|: 1 − 2/(e^{2|x|} + 1), sign restored from x.
  const e = expv(f32x4.add(ax, ax));
  const big = f32x4.sub(f32x4.splat(1), f32x4.div(f32x4.splat(2), f32x4.add(e, f32x4.splat(1))));
  const signed = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  // Small |x|: odd polynomial.
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), x), x);
  return v128.bitselect(small, signed, f32x4.lt(ax, f32x4.splat(0.625)));
}

// @ts-ignore: decorator
@inline function erfv(x: v128): v128 {
  const ax = f32x4.abs(x);
  const one = f32x4.splat(1);
  const t = f32x4.div(one, f32x4.add(one, f32x4.mul(f32x4.splat(0.3275911), ax)));
  let p = f32x4.splat(1.061405429);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.453152027));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.421413741));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.284496736));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.254829592));
  p = f32x4.mul(p, t);
  const y = f32x4.sub(one, f32x4.mul(p, expv(f32x4.neg(f32x4.mul(ax, ax)))));
  return v128.or(y, v128.and(x, i32x4.splat(0x80000000)));
}

// ---- unary ----------------------------------------------------------------------------------

const EXP: i32 = 0;
const TANH: i32 = 1;
const SIGMOID: i32 = 2;
const ERF: i32 = 3;

// @ts-ignore: decorator
@inline function transcendental(op: i32, x: v128): v128 {
  switch (op) {
    case EXP: return expv(x);
    case TANH: return tanhv(x);
    case SIGMOID: return sigmoidv(x);
    default: return erfv(x);
  }
}

/** out[i] = f(a[i]) for f = exp, tanh, sigmoid or erf (codes 0–3). */
export function unaryTranscendental(op: i32, a: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), transcendental(op, v128.load(a + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), f32x4.extract_lane(transcendental(op, f32x4.splat(load<f32>(a + (<usize>i << 2)))), 0));
}

// ---- GELU -------------------------------------------------------------------------------------

const SQRT1_2: f32 = 0.7071067811865476;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const GELU_C: f32 = 0.044715;

// @ts-ignore: decorator
@inline function geluTanhArg(v: v128): v128 {
  return f32x4.mul(f32x4.add(v, f32x4.mul(f32x4.mul(f32x4.mul(v, v), v), f32x4.splat(GELU_C))), f32x4.splat(SQRT_2_OVER_PI));
}

/**
 * GELU. Tanh form: ½x(1 + tanh u) is computed as x·σ(2u) (the same value: 1 + tanh u = 2σ(2u)),
 * because 1 + tanh u cancels to a few ulps of 1 for u ≪ 0, where σ(2u) is exact to float32.
 */
// @ts-ignore: decorator
@inline function geluv(v: v128, approximate: bool): v128 {
  if (approximate) {
    const u = geluTanhArg(v);
    return f32x4.mul(v, sigmoidv(f32x4.add(u, u)));
  }
  const half = f32x4.mul(v, f32x4.splat(0.5));
  return f32x4.mul(half, f32x4.add(erfv(f32x4.mul(v, f32x4.splat(SQRT1_2))), f32x4.splat(1)));
}

/**
 * d GELU/dx. Exact: Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π). Tanh form: with u = √(2/π)(x + 0.044715x³),
 * ½(1 + tanh u) + ½x·sech²u·√(2/π)(1 + 3·0.044715x²), written with s± = σ(±2u):
 * ½(1 + tanh u) = s+ and sech²u = 4·s+·s− — no cancellation at either end, unlike 1 + t and
 * 1 − t². Where s− < 1e-30 (u > ~35) the second term is below float32's reach and is dropped, so
 * x³ overflowing to ∞ for absurd x cannot turn it into ∞·0.
 */
// @ts-ignore: decorator
@inline function geluGradv(v: v128, approximate: bool): v128 {
  const one = f32x4.splat(1);
  if (approximate) {
    const u2 = f32x4.mul(geluTanhArg(v), f32x4.splat(2));
    const sp = sigmoidv(u2);
    const sm = sigmoidv(f32x4.neg(u2));
    const sech2 = f32x4.mul(f32x4.splat(4), f32x4.mul(sp, sm));
    const slope = f32x4.mul(f32x4.splat(SQRT_2_OVER_PI), f32x4.add(one, f32x4.mul(f32x4.splat(3 * GELU_C), f32x4.mul(v, v))));
    const inner = f32x4.mul(f32x4.mul(f32x4.mul(f32x4.splat(0.5), v), sech2), slope);
    const saturated = v128.or(f32x4.lt(sm, f32x4.splat(1e-30)), f32x4.lt(sp, f32x4.splat(1e-30)));
    return f32x4.add(sp, v128.andnot(inner, saturated));
  }
  const cdf = f32x4.mul(f32x4.splat(0.5), f32x4.add(one, erfv(f32x4.mul(v, f32x4.splat(SQRT1_2)))));
  const pdf = f32x4.mul(expv(f32x4.mul(f32x4.splat(-0.5), f32x4.mul(v, v))), f32x4.splat(INV_SQRT_2PI));
  return f32x4.add(cdf, f32x4.mul(v, pdf));
}

export function gelu(x: usize, out: usize, n: i32, approximate: bool): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), geluv(v128.load(x + (<usize>i << 2)), approximate));
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), f32x4.extract_lane(geluv(f32x4.splat(load<f32>(x + (<usize>i << 2))), approximate), 0));
}

/** out = gy · GELU'(x). */
export function geluBackward(x: usize, gy: usize, out: usize, n: i32, approximate: bool): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, f32x4.mul(v128.load(gy + at), geluGradv(v128.load(x + at), approximate)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, load<f32>(gy + at) * f32x4.extract_lane(geluGradv(f32x4.splat(load<f32>(x + at)), approximate), 0));
  }
}

// ---- softmax ------------------------------------------------------------------------------------

/**
 * Row softmax of x [rows, cols], the row maximum subtracted first (so every exponent is ≤ 0 and
 * nothing overflows). causal: rows come in [cols, cols] blocks and row r keeps only its first
 * (r mod cols) + 1 entries; the rest are written as exact zeros and never read, so whatever they
 * hold (−∞, NaN) cannot leak in. The row sum is accumulated in float64.
 */
export function softmaxRows(x: usize, out: usize, rows: i32, cols: i32, causal: bool): void {
  for (let r = 0; r < rows; r++) {
    const row = x + (<usize>(r * cols) << 2);
    const dst = out + (<usize>(r * cols) << 2);
    const live = causal ? (r % cols) + 1 : cols;
    let m: f32 = -Infinity;
    for (let j = 0; j < live; j++) m = max(m, load<f32>(row + (<usize>j << 2)));
    const mv = f32x4.splat(m);
    let sum: f64 = 0;
    let j = 0;
    for (; j + 4 <= live; j += 4) {
      const e = expv(f32x4.sub(v128.load(row + (<usize>j << 2)), mv));
      v128.store(dst + (<usize>j << 2), e);
      sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
    }
    for (; j < live; j++) {
      const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(row + (<usize>j << 2)) - m)), 0);
      store<f32>(dst + (<usize>j << 2), e);
      sum += <f64>e;
    }
    const inv = f32x4.splat(<f32>(1 / sum));
    j = 0;
    for (; j + 4 <= live; j += 4) v128.store(dst + (<usize>j << 2), f32x4.mul(v128.load(dst + (<usize>j << 2)), inv));
    for (; j < live; j++) store<f32>(dst + (<usize>j << 2), load<f32>(dst + (<usize>j << 2)) * f32x4.extract_lane(inv, 0));
    for (j = live; j < cols; j++) store<f32>(dst + (<usize>j << 2), 0);
  }
}

/**
 * softmax's backward from its output, per row of [rows, cols]: out = y·(gy − Σⱼ gyⱼ·yⱼ), the dot
 * product accumulated in float64 (shared/backend/cpu/fused-norm.ts, softmaxBackwardKernel).
 */
export function softmaxBackwardRows(y: usize, gy: usize, out: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * cols) << 2;
    let dot: f64 = 0;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const p = f32x4.mul(v128.load(y + o + (<usize>j << 2)), v128.load(gy + o + (<usize>j << 2)));
      dot += <f64>f32x4.extract_lane(p, 0) + <f64>f32x4.extract_lane(p, 1) + <f64>f32x4.extract_lane(p, 2) + <f64>f32x4.extract_lane(p, 3);
    }
    for (; j < cols; j++) dot += <f64>(load<f32>(y + o + (<usize>j << 2)) * load<f32>(gy + o + (<usize>j << 2)));
    const d = f32x4.splat(<f32>dot);
    j = 0;
    for (; j + 4 <= cols; j += 4) {
      const at = o + (<usize>j << 2);
      v128.store(out + at, f32x4.mul(v128.load(y + at), f32x4.sub(v128.load(gy + at), d)));
    }
    for (; j < cols; j++) {
      const at = o + (<usize>j << 2);
      store<f32>(out + at, load<f32>(y + at) * (load<f32>(gy + at) - f32x4.extract_lane(d, 0)));
    }
  }
}

/**
 * Row log-softmax of x [rows, cols]: out = (x − m) − log Σ exp(x − m), m the row maximum (every
 * exponent ≤ 0: nothing overflows), the sum in float64 and its logarithm in float64.
 */
export function logSoftmaxRows(x: usize, out: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * cols) << 2;
    let m: f32 = -Infinity;
    for (let j = 0; j < cols; j++) m = max(m, load<f32>(x + o + (<usize>j << 2)));
    const mv = f32x4.splat(m);
    let sum: f64 = 0;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const e = expv(f32x4.sub(v128.load(x + o + (<usize>j << 2)), mv));
      sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
    }
    for (; j < cols; j++) sum += <f64>f32x4.extract_lane(expv(f32x4.splat(load<f32>(x + o + (<usize>j << 2)) - m)), 0);
    const shift = f32x4.splat(<f32>(<f64>m + Math.log(sum)));
    j = 0;
    for (; j + 4 <= cols; j += 4) v128.store(out + o + (<usize>j << 2), f32x4.sub(v128.load(x + o + (<usize>j << 2)), shift));
    for (; j < cols; j++) store<f32>(out + o + (<usize>j << 2), load<f32>(x + o + (<usize>j << 2)) - f32x4.extract_lane(shift, 0));
  }
}

/** log-softmax's backward from its output y, per row: out = gy − exp(y)·Σⱼ gyⱼ (the sum in float64). */
export function logSoftmaxBackwardRows(y: usize, gy: usize, out: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * cols) << 2;
    let sum: f64 = 0;
    for (let j = 0; j < cols; j++) sum += <f64>load<f32>(gy + o + (<usize>j << 2));
    const s = f32x4.splat(<f32>sum);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const at = o + (<usize>j << 2);
      v128.store(out + at, f32x4.sub(v128.load(gy + at), f32x4.mul(expv(v128.load(y + at)), s)));
    }
    for (; j < cols; j++) {
      const at = o + (<usize>j << 2);
      store<f32>(out + at, load<f32>(gy + at) - f32x4.extract_lane(expv(f32x4.splat(load<f32>(y + at))), 0) * f32x4.extract_lane(s, 0));
    }
  }
}

// ---- recurrent cells ----------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

/** Stores a group: all four lanes, or (a tail, lanes = 1) lane 0 only. */
// @ts-ignore: decorator
@inline function st(p: usize, v: v128, lanes: i32): void {
  if (lanes == 4) v128.store(p, v);
  else store<f32>(p, f32x4.extract_lane(v, 0));
}

/** One LSTM element group (4 lanes at column j, or lane 0 only for a tail) of shared/backend/cpu/fused-recurrent.ts's lstmCellKernel. */
// @ts-ignore: decorator
@inline function lstmLanes(ai: v128, af: v128, ag: v128, ao: v128, c: v128, out: usize, cOut: usize, act: usize, s: i32, a: i32, j: i32, H: i32, lanes: i32): void {
  const i = sigmoidv(ai);
  const f = sigmoidv(af);
  const g = tanhv(ag);
  const o = sigmoidv(ao);
  const cn = f32x4.add(f32x4.mul(f, c), f32x4.mul(i, g));
  const tc = tanhv(cn);
  const h = f32x4.mul(o, tc);
  st(at(act, a + j), i, lanes);
  st(at(act, a + H + j), f, lanes);
  st(at(act, a + 2 * H + j), g, lanes);
  st(at(act, a + 3 * H + j), o, lanes);
  st(at(act, a + 4 * H + j), tc, lanes);
  st(at(cOut, s + j), cn, lanes);
  st(at(out, s + j), h, lanes);
}

// @ts-ignore: decorator
@inline function ld(p: usize, lanes: i32): v128 {
  return lanes == 4 ? v128.load(p) : f32x4.splat(load<f32>(p));
}

/**
 * LSTM cell (gates i, f, g, o): a = gi[giRow + b] + gh[b] + bias; i, f, o = σ(a), g = tanh(a);
 * c' = f·c + i·g; h' = o·tanh(c'); act[b] = [i, f, g, o, tanh c'] for the backward kernel.
 * bias = 0: no bias. The sum is taken as gi + (gh + bias), the reference kernel's grouping.
 */
export function lstmCell(gi: usize, giRow: i32, gh: usize, bias: usize, c: usize, batch: i32, H: i32, hOut: usize, cOut: usize, act: usize): void {
  const G = 4 * H;
  for (let b = 0; b < batch; b++) {
    const xi = (giRow + b) * G;
    const xh = b * G;
    const s = b * H;
    const a = b * 5 * H;
    let j = 0;
    for (; j < H; ) {
      const lanes = j + 4 <= H ? 4 : 1;
      const bz = f32x4.splat(0);
      const ai = f32x4.add(ld(at(gi, xi + j), lanes), f32x4.add(ld(at(gh, xh + j), lanes), bias == 0 ? bz : ld(at(bias, j), lanes)));
      const af = f32x4.add(ld(at(gi, xi + H + j), lanes), f32x4.add(ld(at(gh, xh + H + j), lanes), bias == 0 ? bz : ld(at(bias, H + j), lanes)));
      const ag = f32x4.add(ld(at(gi, xi + 2 * H + j), lanes), f32x4.add(ld(at(gh, xh + 2 * H + j), lanes), bias == 0 ? bz : ld(at(bias, 2 * H + j), lanes)));
      const ao = f32x4.add(ld(at(gi, xi + 3 * H + j), lanes), f32x4.add(ld(at(gh, xh + 3 * H + j), lanes), bias == 0 ? bz : ld(at(bias, 3 * H + j), lanes)));
      lstmLanes(ai, af, ag, ao, ld(at(c, s + j), lanes), hOut, cOut, act, s, a, j, H, lanes);
      j += lanes;
    }
  }
}

/**
 * GRU cell (gates r, z, n; b_hn inside the reset product): q = gh[b] + bias;
 * r = σ(gi_r + q_r), z = σ(gi_z + q_z), n = tanh(gi_n + r·q_n), h' = n + z·(h − n);
 * act[b] = [r, z, n, q_n] for the backward kernel.
 */
export function gruCell(gi: usize, giRow: i32, gh: usize, bias: usize, h: usize, batch: i32, H: i32, hOut: usize, act: usize): void {
  const G = 3 * H;
  for (let b = 0; b < batch; b++) {
    const xi = (giRow + b) * G;
    const xh = b * G;
    const s = b * H;
    const a = b * 4 * H;
    let j = 0;
    for (; j < H; ) {
      const lanes = j + 4 <= H ? 4 : 1;
      const bz = f32x4.splat(0);
      const qr = f32x4.add(ld(at(gh, xh + j), lanes), bias == 0 ? bz : ld(at(bias, j), lanes));
      const qz = f32x4.add(ld(at(gh, xh + H + j), lanes), bias == 0 ? bz : ld(at(bias, H + j), lanes));
      const qn = f32x4.add(ld(at(gh, xh + 2 * H + j), lanes), bias == 0 ? bz : ld(at(bias, 2 * H + j), lanes));
      const r = sigmoidv(f32x4.add(ld(at(gi, xi + j), lanes), qr));
      const z = sigmoidv(f32x4.add(ld(at(gi, xi + H + j), lanes), qz));
      const n = tanhv(f32x4.add(ld(at(gi, xi + 2 * H + j), lanes), f32x4.mul(r, qn)));
      const hp = ld(at(h, s + j), lanes);
      const hn = f32x4.add(n, f32x4.mul(z, f32x4.sub(hp, n)));
      st(at(act, a + j), r, lanes);
      st(at(act, a + H + j), z, lanes);
      st(at(act, a + 2 * H + j), n, lanes);
      st(at(act, a + 3 * H + j), qn, lanes);
      st(at(hOut, s + j), hn, lanes);
      j += lanes;
    }
  }
}

// ---- ReLU ---------------------------------------------------------------------------------------

/**
 * gy = 0: out = x where x > 0, else 0, NaN kept (the forward). gy ≠ 0: out = gy where x > 0, else 0
 * (the backward; a masked copy, so gy = ±∞ where x ≤ 0 gives 0 rather than NaN).
 */
export function relu(x: usize, gy: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  if (gy == 0) {
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      // keep lanes where v > 0 or v is NaN (v != v)
      v128.store(out + (<usize>i << 2), v128.and(v, v128.or(f32x4.gt(v, zero), f32x4.ne(v, v))));
    }
    for (; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      store<f32>(out + (<usize>i << 2), v > 0 || v != v ? v : 0);
    }
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, v128.and(v128.load(gy + at), f32x4.gt(v128.load(x + at), zero)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, load<f32>(x + at) > 0 ? load<f32>(gy + at) : 0);
  }
}

// ---- LayerNorm ----------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

/**
 * y = (x − μ)·rstd·γ + β per row of x [rows, cols]; mean[r] = μ, rstd[r] = 1/√(σ² + eps) with the
 * biased variance, by two passes (deviations from the mean: E[x²] − μ² would cancel for rows with
 * a large mean). Row sums in four float32 lanes, combined in float64. w, b = 0: no weight / bias.
 */
export function layerNormRows(x: usize, w: usize, b: usize, rows: i32, cols: i32, eps: f64, y: usize, mean: usize, rstd: usize): void {
  const c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = x + (<usize>(r * cols) << 2);
    const dst = y + (<usize>(r * cols) << 2);
    let acc = f32x4.splat(0);
    for (let j = 0; j < c4; j += 4) acc = f32x4.add(acc, v128.load(row + (<usize>j << 2)));
    let s = hsum(acc);
    for (let j = c4; j < cols; j++) s += <f64>load<f32>(row + (<usize>j << 2));
    const mu = <f32>(s / <f64>cols);
    const muv = f32x4.splat(mu);
    acc = f32x4.splat(0);
    for (let j = 0; j < c4; j += 4) {
      const d = f32x4.sub(v128.load(row + (<usize>j << 2)), muv);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let v = hsum(acc);
    for (let j = c4; j < cols; j++) {
      const d = <f64>(load<f32>(row + (<usize>j << 2)) - mu);
      v += d * d;
    }
    const rs = <f32>(1 / Math.sqrt(v / <f64>cols + eps));
    store<f32>(mean + (<usize>r << 2), mu);
    store<f32>(rstd + (<usize>r << 2), rs);
    const rsv = f32x4.splat(rs);
    for (let j = 0; j < c4; j += 4) {
      let o = f32x4.mul(f32x4.sub(v128.load(row + (<usize>j << 2)), muv), rsv);
      if (w != 0) o = f32x4.mul(o, v128.load(w + (<usize>j << 2)));
      if (b != 0) o = f32x4.add(o, v128.load(b + (<usize>j << 2)));
      v128.store(dst + (<usize>j << 2), o);
    }
    for (let j = c4; j < cols; j++) {
      let o = (load<f32>(row + (<usize>j << 2)) - mu) * rs;
      if (w != 0) o *= load<f32>(w + (<usize>j << 2));
      if (b != 0) o += load<f32>(b + (<usize>j << 2));
      store<f32>(dst + (<usize>j << 2), o);
    }
  }
}

/**
 * LayerNorm's backward: with x̂ = (x − μ)·rstd and ĝ = gy·γ,
 *   gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))   (the μ and σ² paths of the normalisation),
 *   gWeight = Σ_rows gy·x̂, gBias = Σ_rows gy, accumulated in float64 into accW / accB (cols f64
 *   each, zeroed by the caller; 0 = not wanted) — column sums over thousands of rows would lose
 *   digits in float32.
 */
export function layerNormBackwardRows(gy: usize, x: usize, mean: usize, rstd: usize, w: usize, rows: i32, cols: i32, gx: usize, accW: usize, accB: usize): void {
  const c4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * cols) << 2;
    const mu = f32x4.splat(load<f32>(mean + (<usize>r << 2)));
    const rs = f32x4.splat(load<f32>(rstd + (<usize>r << 2)));
    let sg = f32x4.splat(0);
    let sgx = f32x4.splat(0);
    for (let j = 0; j < c4; j += 4) {
      const at = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + o + at), mu), rs);
      const g = v128.load(gy + o + at);
      const gh = w != 0 ? f32x4.mul(g, v128.load(w + at)) : g;
      sg = f32x4.add(sg, gh);
      sgx = f32x4.add(sgx, f32x4.mul(gh, xh));
      if (accW != 0) {
        const p = f32x4.mul(g, xh);
        const aw = accW + (<usize>j << 3);
        v128.store(aw, f64x2.add(v128.load(aw), f64x2.promote_low_f32x4(p)));
        v128.store(aw, f64x2.add(v128.load(aw, 16), f64x2.promote_low_f32x4(i32x4.shuffle(p, p, 2, 3, 0, 1))), 16);
      }
      if (accB != 0) {
        const ab = accB + (<usize>j << 3);
        v128.store(ab, f64x2.add(v128.load(ab), f64x2.promote_low_f32x4(g)));
        v128.store(ab, f64x2.add(v128.load(ab, 16), f64x2.promote_low_f32x4(i32x4.shuffle(g, g, 2, 3, 0, 1))), 16);
      }
    }
    let sumG = hsum(sg);
    let sumGX = hsum(sgx);
    const mus = f32x4.extract_lane(mu, 0);
    const rss = f32x4.extract_lane(rs, 0);
    for (let j = c4; j < cols; j++) {
      const at = <usize>j << 2;
      const xh = (load<f32>(x + o + at) - mus) * rss;
      const g = load<f32>(gy + o + at);
      const gh = w != 0 ? g * load<f32>(w + at) : g;
      sumG += <f64>gh;
      sumGX += <f64>(gh * xh);
      if (accW != 0) store<f64>(accW + (<usize>j << 3), load<f64>(accW + (<usize>j << 3)) + <f64>(g * xh));
      if (accB != 0) store<f64>(accB + (<usize>j << 3), load<f64>(accB + (<usize>j << 3)) + <f64>g);
    }
    const mg = f32x4.splat(<f32>(sumG / <f64>cols));
    const mgx = f32x4.splat(<f32>(sumGX / <f64>cols));
    for (let j = 0; j < c4; j += 4) {
      const at = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(x + o + at), mu), rs);
      const g = v128.load(gy + o + at);
      const gh = w != 0 ? f32x4.mul(g, v128.load(w + at)) : g;
      v128.store(gx + o + at, f32x4.mul(rs, f32x4.sub(f32x4.sub(gh, mg), f32x4.mul(xh, mgx))));
    }
    const mgs = f32x4.extract_lane(mg, 0);
    const mgxs = f32x4.extract_lane(mgx, 0);
    for (let j = c4; j < cols; j++) {
      const at = <usize>j << 2;
      const xh = (load<f32>(x + o + at) - mus) * rss;
      const g = load<f32>(gy + o + at);
      const gh = w != 0 ? g * load<f32>(w + at) : g;
      store<f32>(gx + o + at, rss * (gh - mgs - xh * mgxs));
    }
  }
}

/**
 * LSTM cell backward (the reference kernel's formula): dh' = gradOut[gradOutRow + b] + gradH;
 * dc' = gradC + dh'·o·(1 − tanh²c'); gGates = [dc'·g·i(1−i), dc'·c·f(1−f), dc'·i·(1−g²),
 * dh'·tanh(c')·o(1−o)]; gc = dc'·f. gradOut, gradH, gradC = 0: absent (zero).
 */
export function lstmCellBackward(act: usize, c: usize, gradOut: usize, gradOutRow: i32, gradH: usize, gradC: usize, batch: i32, H: i32, gGates: usize, gcOut: usize): void {
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  for (let b = 0; b < batch; b++) {
    const s = b * H;
    const ao = b * 5 * H;
    const go = b * 4 * H;
    const gr = (gradOutRow + b) * H;
    let j = 0;
    for (; j < H; ) {
      const lanes = j + 4 <= H ? 4 : 1;
      const i = ld(at(act, ao + j), lanes);
      const f = ld(at(act, ao + H + j), lanes);
      const g = ld(at(act, ao + 2 * H + j), lanes);
      const o = ld(at(act, ao + 3 * H + j), lanes);
      const tc = ld(at(act, ao + 4 * H + j), lanes);
      const dh = f32x4.add(gradOut == 0 ? zero : ld(at(gradOut, gr + j), lanes), gradH == 0 ? zero : ld(at(gradH, s + j), lanes));
      const dc = f32x4.add(gradC == 0 ? zero : ld(at(gradC, s + j), lanes), f32x4.mul(f32x4.mul(dh, o), f32x4.sub(one, f32x4.mul(tc, tc))));
      const di = f32x4.mul(f32x4.mul(f32x4.mul(dc, g), i), f32x4.sub(one, i));
      const df = f32x4.mul(f32x4.mul(f32x4.mul(dc, ld(at(c, s + j), lanes)), f), f32x4.sub(one, f));
      const dg = f32x4.mul(f32x4.mul(dc, i), f32x4.sub(one, f32x4.mul(g, g)));
      const dO = f32x4.mul(f32x4.mul(f32x4.mul(dh, tc), o), f32x4.sub(one, o));
      const dcp = f32x4.mul(dc, f);
      st(at(gGates, go + j), di, lanes);
      st(at(gGates, go + H + j), df, lanes);
      st(at(gGates, go + 2 * H + j), dg, lanes);
      st(at(gGates, go + 3 * H + j), dO, lanes);
      st(at(gcOut, s + j), dcp, lanes);
      j += lanes;
    }
  }
}

// ---- strided copies of contiguous runs (permute with the last axis kept, slice, pad) ---------------

/**
 * For every (i0, i1, i2, i3) < (n0, n1, n2, n3): copies `run` contiguous floats from
 * src + Σ iₖ·sₖ to dst + Σ iₖ·tₖ (strides in floats). A permute that keeps the last axis, a slice
 * and the copy half of a pad are all this, with different strides; the runs never overlap.
 */
export function copyRuns(src: usize, dst: usize, run: i32, n0: i32, n1: i32, n2: i32, n3: i32, s0: i32, s1: i32, s2: i32, s3: i32, t0: i32, t1: i32, t2: i32, t3: i32): void {
  const bytes = <usize>run << 2;
  for (let i0 = 0; i0 < n0; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      for (let i2 = 0; i2 < n2; i2++) {
        let s = src + (<usize>(i0 * s0 + i1 * s1 + i2 * s2) << 2);
        let d = dst + (<usize>(i0 * t0 + i1 * t1 + i2 * t2) << 2);
        const ss = <usize>s3 << 2;
        const dd = <usize>t3 << 2;
        for (let i3 = 0; i3 < n3; i3++) {
          memory.copy(d, s, bytes);
          s += ss;
          d += dd;
        }
      }
    }
  }
}

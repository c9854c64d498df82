// AssemblyScript. Elementwise kernels over float32 with 128-bit SIMD: binary ops where each
// operand is contiguous, a broadcast scalar, a row vector repeated over rows, or a column vector
// repeated along each row (b[row % period]); and the cheap unary ops. Ops the JS side does not
// find a pattern for run in the reference kernels instead.

// Operation codes (shared with wasm-backend.ts).
const ADD: i32 = 0;
const SUB: i32 = 1;
const MUL: i32 = 2;
const DIV: i32 = 3;
const GT: i32 = 4;
const GE: i32 = 5;
const EQ: i32 = 6;

// @ts-ignore: decorator
@inline function vop(op: i32, x: v128, y: v128): v128 {
  switch (op) {
    case ADD: return f32x4.add(x, y);
    case SUB: return f32x4.sub(x, y);
    case MUL: return f32x4.mul(x, y);
    case DIV: return f32x4.div(x, y);
    // Comparisons give all-ones lanes; and-ing with 1.0 turns them into 1.0 / 0.0.
    case GT: return v128.and(f32x4.gt(x, y), f32x4.splat(1));
    case GE: return v128.and(f32x4.ge(x, y), f32x4.splat(1));
    default: return v128.and(f32x4.eq(x, y), f32x4.splat(1));
  }
}

// @ts-ignore: decorator
@inline function sop(op: i32, x: f32, y: f32): f32 {
  switch (op) {
    case ADD: return x + y;
    case SUB: return x - y;
    case MUL: return x * y;
    case DIV: return x / y;
    case GT: return x > y ? 1 : 0;
    case GE: return x >= y ? 1 : 0;
    default: return x == y ? 1 : 0;
  }
}

/** out[i] = a[i·sa] op b[i·sb] for i < n, with sa, sb in {0, 1}. */
function run(op: i32, a: usize, sa: i32, b: usize, sb: i32, out: usize, n: i32): void {
  let i = 0;
  const n4 = n & ~3;
  if (sa == 1 && sb == 1) {
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, vop(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (sa == 1) {
    const y = v128.load32_splat(b);
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, vop(op, v128.load(a + o), y));
    }
  } else if (sb == 1) {
    const x = v128.load32_splat(a);
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, vop(op, x, v128.load(b + o)));
    }
  }
  for (; i < n; i++) {
    const x = load<f32>(a + (<usize>(i * sa) << 2));
    const y = load<f32>(b + (<usize>(i * sb) << 2));
    store<f32>(out + (<usize>i << 2), sop(op, x, y));
  }
}

export function binary(op: i32, a: usize, sa: i32, b: usize, sb: i32, out: usize, n: i32): void {
  run(op, a, sa, b, sb, out, n);
}

/** out[r, j] = a[r, j] op b[j]: b (inner floats) repeated over rows. */
export function binaryRows(op: i32, a: usize, b: usize, out: usize, rows: i32, inner: i32): void {
  const stride = <usize>inner << 2;
  for (let r = 0; r < rows; r++) run(op, a + <usize>r * stride, 1, b, 1, out + <usize>r * stride, inner);
}

/** out[r, j] = a[r, j] op b[r % period]: one b value per row. */
export function binaryCols(op: i32, a: usize, b: usize, out: usize, rows: i32, inner: i32, period: i32): void {
  const stride = <usize>inner << 2;
  for (let r = 0; r < rows; r++) run(op, a + <usize>r * stride, 1, b + (<usize>(r % period) << 2), 0, out + <usize>r * stride, inner);
}

const NEG: i32 = 0;
const ABS: i32 = 1;
const SQRT: i32 = 2;

export function unary(op: i32, a: usize, out: usize, n: i32): void {
  let i = 0;
  const n4 = n & ~3;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(a + o);
    v128.store(out + o, op == NEG ? f32x4.neg(x) : op == ABS ? f32x4.abs(x) : f32x4.sqrt(x));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const x = load<f32>(a + o);
    store<f32>(out + o, op == NEG ? -x : op == ABS ? Mathf.abs(x) : Mathf.sqrt(x));
  }
}

/**
 * Sums over the middle axis of [outer, r, inner] into out [outer, inner], accumulating in float64
 * (as the reference kernel does) two lanes at a time.
 */
export function sumMiddle(a: usize, out: usize, outer: i32, r: i32, inner: i32, acc: usize): void {
  const inner2 = inner & ~1;
  for (let o = 0; o < outer; o++) {
    memory.fill(acc, 0, <usize>inner << 3);
    const base = a + (<usize>(o * r * inner) << 2);
    for (let i = 0; i < r; i++) {
      const row = base + (<usize>(i * inner) << 2);
      let j = 0;
      for (; j < inner2; j += 2) {
        const at = acc + (<usize>j << 3);
        v128.store(at, f64x2.add(v128.load(at), f64x2.promote_low_f32x4(v128.load64_zero(row + (<usize>j << 2)))));
      }
      for (; j < inner; j++) {
        const at = acc + (<usize>j << 3);
        store<f64>(at, load<f64>(at) + <f64>load<f32>(row + (<usize>j << 2)));
      }
    }
    const dst = out + (<usize>(o * inner) << 2);
    for (let j = 0; j < inner; j++) store<f32>(dst + (<usize>j << 2), <f32>load<f64>(acc + (<usize>j << 3)));
  }
}

/** Sums each row of [rows, inner] into out [rows], in float64. */
export function sumRows(a: usize, out: usize, rows: i32, inner: i32): void {
  const inner4 = inner & ~3;
  for (let r = 0; r < rows; r++) {
    const row = a + (<usize>(r * inner) << 2);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let j = 0;
    for (; j < inner4; j += 4) {
      const x = v128.load(row + (<usize>j << 2));
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(x));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1)));
    }
    let s = f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s0, 1) + f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s1, 1);
    for (; j < inner; j++) s += <f64>load<f32>(row + (<usize>j << 2));
    store<f32>(out + (<usize>r << 2), <f32>s);
  }
}

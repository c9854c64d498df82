// The 16- and 8-bit number formats against slow exact references: every half, dense random floats,
// the ties between neighbours (to even), subnormals, overflow, NaN; int8's scale and bounds.
import { describe, expect, it } from 'vitest';
import {
  decodeBfloat16,
  decodeFloat16,
  decodeInt8,
  encodeBfloat16,
  encodeFloat16,
  encodeInt8,
  float32ToBfloat16Bits,
  float32ToHalfBits,
  halfBitsToFloat32,
} from '../../shared/protocol/compress.js';
import { Rng } from '../../shared/util/random.js';

/** floor(log2 |x|) for finite x ≠ 0, exactly (Math.log2 may be off by one next to a power of two). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return e;
}

function roundHalfEven(r: number): number {
  const f = Math.floor(r);
  const frac = r - f; // exact: r has few bits above the point here
  if (frac > 0.5) return f + 1;
  if (frac < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * x rounded to a binary format with `bits` significand bits (the implicit one included), least
 * normal exponent `minExp` and largest finite `max`: all in float64, where every step is exact.
 */
function reference(x: number, bits: number, minExp: number, max: number): number {
  if (Number.isNaN(x)) return NaN;
  if (!Number.isFinite(x)) return x;
  if (x === 0) return x;
  const a = Math.abs(x);
  const q = 2 ** (Math.max(exponentOf(a), minExp) - (bits - 1));
  const r = roundHalfEven(a / q) * q;
  const signed = x < 0 ? -r : r;
  if (r > max) return x < 0 ? -Infinity : Infinity;
  return r === 0 ? (x < 0 ? -0 : 0) : signed;
}
const FP16_MAX = 65504;
const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;
const refHalf = (x: number): number => reference(x, 11, -14, FP16_MAX);
const refBf16 = (x: number): number => reference(x, 8, -126, BF16_MAX);
const bf16Value = (b: number): number => new Float32Array(new Uint32Array([b << 16]).buffer)[0];

/** Float32 values that stress rounding: random bit patterns, values near the formats' edges. */
function stressFloats(count: number): Float32Array {
  const rng = new Rng(7);
  const bits = new Uint32Array(count);
  const out = new Float32Array(bits.buffer);
  for (let i = 0; i < count; i++) {
    const kind = i % 4;
    if (kind === 0) bits[i] = Math.floor(rng.uniform() * 2 ** 32);
    else if (kind === 1) out[i] = (rng.uniform() * 2 - 1) * 70_000;
    else if (kind === 2) out[i] = (rng.uniform() * 2 - 1) * 2 ** -(rng.uniform() * 30);
    else out[i] = (rng.uniform() * 2 - 1) * 2 ** (rng.uniform() * 260 - 130);
  }
  return out;
}

function sameValue(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

describe('fp16', () => {
  it('decodes every one of the 65536 halves exactly, and re-encodes it to the same bits', () => {
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const mant = h & 0x3ff;
      const expected = exp === 31 ? (mant ? NaN : sign * Infinity) : exp === 0 ? sign * mant * 2 ** -24 : sign * (1024 + mant) * 2 ** (exp - 25);
      const got = halfBitsToFloat32(h);
      if (!sameValue(got, expected)) throw new Error(`half 0x${h.toString(16)}: ${got}, expected ${expected}`);
      if (!Number.isNaN(got) && float32ToHalfBits(got) !== h) throw new Error(`half 0x${h.toString(16)} re-encodes to 0x${float32ToHalfBits(got).toString(16)}`);
      if (Number.isNaN(got) && !Number.isNaN(halfBitsToFloat32(float32ToHalfBits(got)))) throw new Error(`NaN 0x${h.toString(16)} did not stay NaN`);
    }
    const bytes = new Uint8Array(new Uint16Array(Array.from({ length: 65536 }, (_, h) => h)).buffer);
    const all = new Float32Array(65536);
    decodeFloat16(bytes, all);
    for (let h = 0; h < 65536; h++) if (!sameValue(all[h], Math.fround(halfBitsToFloat32(h)))) throw new Error(`table decode of 0x${h.toString(16)}`);
  });
  it('rounds 400k stress floats as the exact reference does (nearest, ties to even, subnormals, overflow)', () => {
    const xs = stressFloats(400_000);
    const out = new Uint16Array(xs.length);
    encodeFloat16(xs, out);
    for (let i = 0; i < xs.length; i++) {
      const expected = refHalf(xs[i]);
      if (!sameValue(halfBitsToFloat32(out[i]), expected)) throw new Error(`${xs[i]} -> 0x${out[i].toString(16)} (${halfBitsToFloat32(out[i])}), expected ${expected}`);
    }
  });
  it('sends every tie between neighbouring halves to the even one, and a hair off a tie to the nearer', () => {
    const xs: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (halfBitsToFloat32(h) + halfBitsToFloat32(h + 1)) / 2; // a float32 for all halves
      xs.push(mid, -mid);
      const below = new Float32Array([mid]);
      const u = new Uint32Array(below.buffer);
      if (mid !== 0) {
        u[0] -= 1;
        xs.push(below[0]);
        u[0] += 2;
        xs.push(below[0]);
      }
    }
    xs.push(65519.99, 65520, 65536, 2 ** -25, 2 ** -24 * 1.5, 3e38, -3e38, 1e-45);
    const f = Float32Array.from(xs);
    const out = new Uint16Array(f.length);
    encodeFloat16(f, out);
    for (let i = 0; i < f.length; i++) if (!sameValue(halfBitsToFloat32(out[i]), refHalf(f[i]))) throw new Error(`${f[i]}: got ${halfBitsToFloat32(out[i])}, expected ${refHalf(f[i])}`);
    // Named cases: ties to even at 1, at the subnormal edge, and overflow to Inf past 65504 + 8.
    expect(float32ToHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToHalfBits(2 ** -25)).toBe(0x0000);
    expect(float32ToHalfBits(-(2 ** -25) * 1.0000001)).toBe(0x8001);
    expect(float32ToHalfBits(65519)).toBe(0x7bff);
    expect(float32ToHalfBits(65520)).toBe(0x7c00);
    expect(float32ToHalfBits(-Infinity)).toBe(0xfc00);
    expect(float32ToHalfBits(-0)).toBe(0x8000);
    expect(Number.isNaN(halfBitsToFloat32(float32ToHalfBits(NaN)))).toBe(true);
  });
});

describe('bf16', () => {
  it('rounds 400k stress floats and every half-way pattern as the exact reference does; NaN stays NaN', () => {
    const xs = stressFloats(400_000);
    const ties = new Uint32Array(20_000);
    const rng = new Rng(3);
    for (let i = 0; i < ties.length; i++) ties[i] = (Math.floor(rng.uniform() * 2 ** 16) << 16) | [0x8000, 0x7fff, 0x8001][i % 3];
    const all = new Float32Array(xs.length + ties.length);
    all.set(xs);
    all.set(new Float32Array(ties.buffer), xs.length);
    const out = new Uint16Array(all.length);
    encodeBfloat16(all, out);
    for (let i = 0; i < all.length; i++) {
      const expected = refBf16(all[i]);
      if (!sameValue(bf16Value(out[i]), expected)) throw new Error(`${all[i]} -> 0x${out[i].toString(16)} (${bf16Value(out[i])}), expected ${expected}`);
    }
    const back = new Float32Array(all.length);
    decodeBfloat16(new Uint8Array(out.buffer), back);
    for (let i = 0; i < all.length; i++) if (!sameValue(back[i], bf16Value(out[i]))) throw new Error(`decode of 0x${out[i].toString(16)}`);
  });
  it('keeps NaNs NaN (even those whose high bits look like Inf), and overflows past the largest bf16 to Inf', () => {
    const nanLow = new Float32Array(new Uint32Array([0x7f800001, 0xff800001, 0x7fffffff]).buffer);
    for (const x of nanLow) expect(Number.isNaN(bf16Value(float32ToBfloat16Bits(x)))).toBe(true);
    expect(float32ToBfloat16Bits(3.4028234663852886e38)).toBe(0x7f80);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });
});

describe('int8', () => {
  it('scale = max|x| / 127, the largest element is ±127, and every value is within half a step', () => {
    const rng = new Rng(11);
    for (const size of [1, 7, 1000]) {
      const x = Float32Array.from({ length: size }, () => (rng.uniform() * 2 - 1) * 3);
      const q = new Int8Array(size);
      const scale = encodeInt8(x, q);
      const max = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(scale).toBe(max / 127);
      expect(Math.max(...Array.from(q, Math.abs))).toBe(127);
      expect(q.every((v) => v >= -127 && v <= 127)).toBe(true);
      const back = new Float32Array(size);
      decodeInt8(new Uint8Array(q.buffer), scale, back);
      for (let i = 0; i < size; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(scale / 2 + 1e-6 * max);
    }
  });
  it('a zero tensor has scale 0 and decodes to zeros; a NaN or Inf makes the scale non-finite', () => {
    const q = new Int8Array(3).fill(5);
    expect(encodeInt8(new Float32Array(3), q)).toBe(0);
    expect([...q]).toEqual([0, 0, 0]);
    const out = new Float32Array(3).fill(9);
    decodeInt8(new Uint8Array(q.buffer), 0, out);
    expect([...out]).toEqual([0, 0, 0]);
    expect(Number.isFinite(encodeInt8(Float32Array.from([1, NaN, 2]), q))).toBe(false);
    expect(Number.isFinite(encodeInt8(Float32Array.from([1, -Infinity]), new Int8Array(2)))).toBe(false);
  });
  it('decodes bytes as signed, from any offset', () => {
    const backing = new Uint8Array([0, 0x81, 0x7f, 0x00, 0xff]);
    const out = new Float32Array(4);
    decodeInt8(backing.subarray(1), 0.5, out);
    expect([...out]).toEqual([-63.5, 63.5, 0, -0.5]);
  });
});

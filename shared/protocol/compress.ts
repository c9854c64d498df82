/**
 * Number formats for compressed tensors on the wire, float32 ⇄ 16 and 8 bits, on whole arrays.
 * Encoders write into caller-owned arrays (reused every step); decoders read little-endian bytes
 * at any offset (a tensor's bytes inside a received frame need not be aligned) into a Float32Array.
 *
 * - fp16: IEEE 754 binary16, round to nearest, ties to even, with subnormals; overflow gives ±Inf,
 *   NaN stays NaN. Its range ends at 65504 and its subnormals at 2^-24 ≈ 6e-8: a gradient or update
 *   outside that range saturates to ±Inf or flushes toward 0 (error feedback carries the latter).
 * - bf16: the top 16 bits of the float32 (float32's range, 8 bits of precision), round to nearest,
 *   ties to even; NaN stays NaN (a plain rounding could carry a NaN's low payload into Inf).
 * - int8: symmetric per tensor: scale = max|x| / 127, q = round(x / scale) in [-127, 127];
 *   decoded as float32(q × scale). A zero tensor has scale 0 (and decodes to zeros).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits nearest to `x` (round to nearest, ties to even). */
export function float32ToHalfBits(x: number): number {
  f32[0] = x;
  return halfBitsOfFloat32Bits(u32[0]);
}

function halfBitsOfFloat32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  // Inf stays Inf; a NaN keeps its top payload bits and the quiet bit, so it never becomes Inf.
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // the binary16 biased exponent
  if (e >= 31) return sign | 0x7c00; // beyond 65504 (and its rounding margin): ±Inf
  if (e <= 0) {
    // Subnormal in binary16 (or zero): shift the full significand down to units of 2^-24. Below
    // 2^-25 everything rounds to 0; exactly 2^-25 is a tie that goes to the even 0.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++; // may carry into the smallest normal: right
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and past 30 gives exactly 0x7c00 (Inf): right too.
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The float32 value of binary16 bits (exact: every half is a float32). */
export function halfBitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let halfTable: Float32Array | null = null;
/** All 65536 halves as float32 (256 KiB, built on first use): decoding is one lookup per element. */
function halves(): Float32Array {
  if (halfTable === null) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloat32(h);
  }
  return halfTable;
}

function bitsOf(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

function checkLengths(what: string, n: number, m: number): void {
  if (n !== m) throw new RangeError(`${what}: ${n} values into room for ${m}`);
}

export function encodeFloat16(src: Float32Array, out: Uint16Array): void {
  checkLengths('encodeFloat16', src.length, out.length);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsOfFloat32Bits(bits[i]);
}

/** Decodes `out.length` little-endian halves from `bytes`. */
export function decodeFloat16(bytes: Uint8Array, out: Float32Array): void {
  checkLengths('decodeFloat16', bytes.byteLength, 2 * out.length);
  const table = halves();
  for (let i = 0, j = 0; i < out.length; i++, j += 2) out[i] = table[bytes[j] | (bytes[j + 1] << 8)];
}

/** The bfloat16 bits nearest to the float32 with bits `u` (ties to even; NaN stays a quiet NaN). */
function bfloat16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; a carry that
  // reaches the exponent is the right result, up to Inf past the largest finite bfloat16.
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

export function float32ToBfloat16Bits(x: number): number {
  f32[0] = x;
  return bfloat16Bits(u32[0]);
}

export function encodeBfloat16(src: Float32Array, out: Uint16Array): void {
  checkLengths('encodeBfloat16', src.length, out.length);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) out[i] = bfloat16Bits(bits[i]);
}

export function decodeBfloat16(bytes: Uint8Array, out: Float32Array): void {
  checkLengths('decodeBfloat16', bytes.byteLength, 2 * out.length);
  const bits = bitsOf(out);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) bits[i] = (bytes[j] | (bytes[j + 1] << 8)) << 16;
}

/**
 * int8 with one scale for the tensor; returns the scale (max|x| / 127, 0 for a zero tensor).
 * A NaN or ±Inf in `src` makes the scale non-finite, which receivers refuse (NON_FINITE): int8
 * has no code for them.
 */
export function encodeInt8(src: Float32Array, out: Int8Array): number {
  checkLengths('encodeInt8', src.length, out.length);
  let max = 0;
  for (let i = 0; i < src.length; i++) {
    const a = Math.abs(src[i]);
    if (a > max) max = a;
    else if (a !== a) {
      max = NaN; // a NaN must reach the scale: a later larger element would otherwise hide it
      break;
    }
  }
  const scale = max / 127;
  if (scale === 0 || !Number.isFinite(scale)) {
    out.fill(0);
    return scale;
  }
  // Dividing by the scale (not multiplying by its inverse) makes the largest element exactly ±127.
  // Math.round sends ties toward +∞; either end only ever decodes, so the choice is free.
  for (let i = 0; i < src.length; i++) {
    const q = Math.round(src[i] / scale);
    out[i] = q > 127 ? 127 : q < -127 ? -127 : q;
  }
  return scale;
}

/** x = float32(q × scale), the product taken in float64 (both ends compute the same bits). */
export function decodeInt8(bytes: Uint8Array, scale: number, out: Float32Array): void {
  checkLengths('decodeInt8', bytes.byteLength, out.length);
  for (let i = 0; i < out.length; i++) out[i] = ((bytes[i] << 24) >> 24) * scale;
}

/**
 * Tensors on the wire: `{ dtype, shape, data }` with `data` the raw little-endian bytes (msgpack
 * bin), so a client in any language can produce and read them. Decoding copies the bytes into a
 * fresh, aligned array: the bin inside a received frame sits at an arbitrary offset, and a
 * Float32Array view needs 4-byte alignment (and must not keep the whole frame alive).
 *
 * Compressed float tensors (`float16`, `bfloat16`, `int8` with its `scale`) are decoded by
 * wire-compressed.ts, which knows which of them a run allows.
 */

import { z } from 'zod';
import { ProtocolError } from './errors.js';

export const WIRE_DTYPES = ['float32', 'int32', 'float16', 'bfloat16', 'int8'] as const;

export const wireTensorSchema = z.object({
  dtype: z.enum(WIRE_DTYPES),
  shape: z.array(z.number().int().nonnegative()).max(8),
  data: z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected binary data'),
  /**
   * int8 only: the value of one step of q. Any number passes the schema (NaN included), so that
   * the decoder can name the problem: non-finite is NON_FINITE, negative BAD_MESSAGE.
   */
  scale: z.custom<number>((v) => typeof v === 'number', 'expected a number').optional(),
});

export type WireTensor = z.infer<typeof wireTensorSchema>;
export type WireDType = WireTensor['dtype'];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<WireDType, number>> = { float32: 4, int32: 4, float16: 2, bfloat16: 2, int8: 1 };

const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
if (BIG_ENDIAN) throw new Error('meshgrad\'s wire format is little-endian and this host is big-endian: not supported');

function bytesOf(array: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export function toWire(array: Float32Array | Int32Array, shape: readonly number[]): WireTensor {
  return { dtype: array instanceof Float32Array ? 'float32' : 'int32', shape: [...shape], data: bytesOf(array) };
}

/** The tensor's element count, once its shape and byte length (for its dtype) are checked. */
export function checkShape(t: WireTensor, what: string): number {
  let n = 1;
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0) throw new ProtocolError('BAD_SHAPE', `${what}: invalid dimension ${String(d)} in shape [${t.shape.join(', ')}]`);
    n *= d;
  }
  const size = DTYPE_BYTES[t.dtype];
  if (t.data.byteLength !== n * size) throw new ProtocolError('BAD_SHAPE', `${what}: shape [${t.shape.join(', ')}] of ${t.dtype} needs ${n * size} bytes, got ${t.data.byteLength}`);
  return n;
}

/** Decodes a float32 tensor into `out` when given (the hot path reuses buffers), else a new array. */
export function fromWireFloat32(t: WireTensor, what: string, out?: Float32Array): Float32Array {
  if (t.dtype !== 'float32') throw new ProtocolError('BAD_DTYPE', `${what}: expected dtype float32, got ${String(t.dtype)}`);
  const n = checkShape(t, what);
  const target = out && out.length === n ? out : new Float32Array(n);
  new Uint8Array(target.buffer, target.byteOffset, n * 4).set(t.data);
  return target;
}

export function fromWireInt32(t: WireTensor, what: string): Int32Array {
  if (t.dtype !== 'int32') throw new ProtocolError('BAD_DTYPE', `${what}: expected dtype int32, got ${String(t.dtype)}`);
  const n = checkShape(t, what);
  const target = new Int32Array(n);
  new Uint8Array(target.buffer).set(t.data);
  return target;
}

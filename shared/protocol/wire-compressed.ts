/**
 * Compression modes of a run (`--compress`) and their wire tensors: encoding a float32 array into
 * a reused buffer as a `float16`, `bfloat16` or `int8` tensor, and decoding any float tensor a run
 * allows back into float32. Uncompressed float32 is always allowed; of the compressed dtypes only
 * the run's own (BAD_DTYPE otherwise, so a peer cannot slip 8-bit data into a 16-bit run).
 */

import { decodeBfloat16, decodeFloat16, decodeInt8, encodeBfloat16, encodeFloat16, encodeInt8 } from './compress.js';
import { ProtocolError } from './errors.js';
import { checkShape, fromWireFloat32, type WireDType, type WireTensor } from './wire-tensor.js';

export const COMPRESSION_MODES = ['none', 'fp16', 'bf16', 'int8'] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];
export type CompressedMode = Exclude<CompressionMode, 'none'>;

export function isCompressionMode(value: unknown): value is CompressionMode {
  return typeof value === 'string' && (COMPRESSION_MODES as readonly string[]).includes(value);
}

/** The wire dtype each compressed mode sends. */
export const MODE_DTYPE: Readonly<Record<CompressedMode, WireDType>> = { fp16: 'float16', bf16: 'bfloat16', int8: 'int8' };

const COMPRESSED_DTYPES: ReadonlySet<WireDType> = new Set(Object.values(MODE_DTYPE));

/**
 * Decodes a float tensor — float32, or the run's compressed dtype — into `out` when it has the
 * right length (the hot path reuses buffers), else into a new array. Checks the byte length for
 * the dtype (BAD_SHAPE) and int8's scale: non-finite is NON_FINITE, negative or missing
 * BAD_MESSAGE. Non-finite decoded values are left for the caller's own checks.
 */
export function fromWireFloat(t: WireTensor, what: string, mode: CompressionMode, out?: Float32Array): Float32Array {
  if (t.dtype === 'float32') {
    if (t.scale !== undefined) throw new ProtocolError('BAD_MESSAGE', `${what}: a float32 tensor carries no scale (got ${t.scale})`);
    return fromWireFloat32(t, what, out);
  }
  if (!COMPRESSED_DTYPES.has(t.dtype)) throw new ProtocolError('BAD_DTYPE', `${what}: expected a float tensor, got dtype ${t.dtype}`);
  if (mode === 'none' || MODE_DTYPE[mode] !== t.dtype) {
    throw new ProtocolError('BAD_DTYPE', `${what}: dtype ${t.dtype} is not allowed in this run (--compress ${mode}: float32${mode === 'none' ? '' : ` or ${MODE_DTYPE[mode]}`})`);
  }
  const n = checkShape(t, what);
  const target = out && out.length === n ? out : new Float32Array(n);
  if (t.dtype === 'int8') {
    const scale = t.scale;
    if (scale === undefined) throw new ProtocolError('BAD_MESSAGE', `${what}: an int8 tensor needs a scale`);
    if (!Number.isFinite(scale)) throw new ProtocolError('NON_FINITE', `${what}: scale is ${scale}`);
    if (scale < 0) throw new ProtocolError('BAD_MESSAGE', `${what}: scale must be ≥ 0, got ${scale}`);
    decodeInt8(t.data, scale, target);
    return target;
  }
  if (t.scale !== undefined) throw new ProtocolError('BAD_MESSAGE', `${what}: a ${t.dtype} tensor carries no scale (got ${t.scale})`);
  if (t.dtype === 'float16') decodeFloat16(t.data, target);
  else decodeBfloat16(t.data, target);
  return target;
}

/**
 * One tensor's encoder: owns the output buffer (reused every call), so the tensor `encode`
 * returns is valid only until the next call — encode the message that carries it at once.
 */
export class TensorCompressor {
  private readonly half: Uint16Array | null;
  private readonly bytes: Int8Array | null;

  constructor(readonly mode: CompressedMode, readonly length: number) {
    this.half = mode === 'int8' ? null : new Uint16Array(length);
    this.bytes = mode === 'int8' ? new Int8Array(length) : null;
  }

  encode(src: Float32Array, shape: readonly number[]): WireTensor {
    if (src.length !== this.length) throw new RangeError(`TensorCompressor: ${src.length} values for a tensor of ${this.length}`);
    if (this.bytes) {
      const scale = encodeInt8(src, this.bytes);
      return { dtype: 'int8', shape: [...shape], data: new Uint8Array(this.bytes.buffer, 0, this.length), scale };
    }
    const half = this.half!;
    if (this.mode === 'fp16') encodeFloat16(src, half);
    else encodeBfloat16(src, half);
    return { dtype: MODE_DTYPE[this.mode], shape: [...shape], data: new Uint8Array(half.buffer, 0, 2 * this.length) };
  }
}

/**
 * `target += delta`, element by element in float32. The coordinator's view of the workers'
 * parameters and every worker apply each update with this one function, so they stay equal bit
 * for bit (the sum is taken in float64 and rounded once to float32 on the store, the same on any
 * host).
 */
export function addDelta(target: Float32Array, delta: Float32Array): void {
  if (target.length !== delta.length) throw new RangeError(`addDelta: ${delta.length} values for a tensor of ${target.length}`);
  for (let i = 0; i < target.length; i++) target[i] += delta[i];
}

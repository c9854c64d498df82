// Compressed wire tensors: what a run allows (BAD_DTYPE otherwise), byte lengths per dtype, int8's
// scale, and the same checks on a frame as it arrives (plain msgpack, NaN scale included).
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { decodeMessage, fromWireFloat, ProtocolError, TensorCompressor, toWire, type Message, type WireTensor } from '../../shared/protocol/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('did not throw');
}

const values = Float32Array.from([0.5, -1.25, 3, 0]);

describe('compressed wire tensors', () => {
  it('round-trip through a frame in each mode, into a reused buffer', () => {
    for (const mode of ['fp16', 'bf16', 'int8'] as const) {
      const t = new TensorCompressor(mode, 4).encode(values, [2, 2]);
      expect(t.data.byteLength).toBe(mode === 'int8' ? 4 : 8);
      const m = decodeMessage(pack({ type: 'params', version: 1, delta: true, params: [t] })) as Extract<Message, { type: 'params' }>;
      const out = new Float32Array(4);
      expect(fromWireFloat(m.params[0], 'p', mode, out)).toBe(out);
      const tolerance = mode === 'int8' ? 3 / 127 / 2 : 0;
      for (let i = 0; i < 4; i++) expect(Math.abs(out[i] - values[i])).toBeLessThanOrEqual(tolerance);
    }
  });
  it('float32 is always allowed; a compressed dtype only in its own mode (BAD_DTYPE)', () => {
    expect([...fromWireFloat(toWire(values, [4]), 'g', 'int8')]).toEqual([...values]);
    const half = new TensorCompressor('fp16', 4).encode(values, [4]);
    expect(codeOf(() => fromWireFloat(half, 'g', 'none'))).toBe('BAD_DTYPE');
    expect(codeOf(() => fromWireFloat(half, 'g', 'bf16'))).toBe('BAD_DTYPE');
    expect(codeOf(() => fromWireFloat(new TensorCompressor('int8', 4).encode(values, [4]), 'g', 'fp16'))).toBe('BAD_DTYPE');
    expect(codeOf(() => fromWireFloat(toWire(new Int32Array(4), [4]), 'g', 'fp16'))).toBe('BAD_DTYPE');
  });
  it('checks the byte length for the dtype (BAD_SHAPE) and the scale (NaN/Inf: NON_FINITE; negative, missing or misplaced: BAD_MESSAGE)', () => {
    const int8 = (scale: number | undefined, bytes = 4): WireTensor => ({ dtype: 'int8', shape: [4], data: new Uint8Array(bytes), scale });
    expect(codeOf(() => fromWireFloat({ dtype: 'float16', shape: [4], data: new Uint8Array(4) }, 'g', 'fp16'))).toBe('BAD_SHAPE');
    expect(codeOf(() => fromWireFloat({ dtype: 'bfloat16', shape: [4], data: new Uint8Array(16) }, 'g', 'bf16'))).toBe('BAD_SHAPE');
    expect(codeOf(() => fromWireFloat(int8(1, 8), 'g', 'int8'))).toBe('BAD_SHAPE');
    expect(codeOf(() => fromWireFloat(int8(NaN), 'g', 'int8'))).toBe('NON_FINITE');
    expect(codeOf(() => fromWireFloat(int8(Infinity), 'g', 'int8'))).toBe('NON_FINITE');
    expect(codeOf(() => fromWireFloat(int8(-0.5), 'g', 'int8'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => fromWireFloat(int8(undefined), 'g', 'int8'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => fromWireFloat({ dtype: 'float16', shape: [4], data: new Uint8Array(8), scale: 1 }, 'g', 'fp16'))).toBe('BAD_MESSAGE');
    expect([...fromWireFloat(int8(0), 'g', 'int8')]).toEqual([0, 0, 0, 0]);
  });
  it('a frame with a NaN scale passes the schema, so the decoder can name it; a string scale does not', () => {
    const frame = (scale: unknown) => pack({ type: 'params', version: 1, delta: true, params: [{ dtype: 'int8', shape: [1], data: new Uint8Array(1), scale }] });
    const m = decodeMessage(frame(NaN)) as Extract<Message, { type: 'params' }>;
    expect(codeOf(() => fromWireFloat(m.params[0], 'p', 'int8'))).toBe('NON_FINITE');
    expect(codeOf(() => decodeMessage(frame('big')))).toBe('BAD_MESSAGE');
    expect(codeOf(() => decodeMessage(pack({ type: 'params', version: 1, params: [{ dtype: 'float8', shape: [1], data: new Uint8Array(1) }] })))).toBe('BAD_MESSAGE');
  });
});

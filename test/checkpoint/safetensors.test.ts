/** The safetensors codec: round trips, layout, a file assembled by hand from the spec, and malformed files. */

import { describe, expect, it } from 'vitest';
import { CheckpointFormatError, decodeSafetensors, encodeSafetensors, type SafeTensor } from '../../shared/checkpoint/index.js';

function headerOf(bytes: Uint8Array): { length: number; json: Record<string, unknown> } {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { length, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<string, unknown> };
}

/** Assembles a file from a header value (stringified as is) and raw data bytes. */
function assemble(header: unknown, data: Uint8Array = new Uint8Array(0), headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('encodeSafetensors / decodeSafetensors', () => {
  it('round-trips every dtype, scalars, empty tensors and metadata', () => {
    const tensors: Record<string, SafeTensor> = {
      'layer.0.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1.5, -2, 3.25, Math.PI, -0, 1e-30) },
      doubles: { dtype: 'F64', shape: [3], data: Float64Array.of(Math.E, -1e300, Number.MIN_VALUE) },
      ints: { dtype: 'I32', shape: [2, 2], data: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, -7) },
      longs: { dtype: 'I64', shape: [4], data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, 123456789012345n) },
      counter: { dtype: 'I64', shape: [], data: BigInt64Array.of(17n) },
      bytes: { dtype: 'U8', shape: [5], data: Uint8Array.of(0, 1, 127, 128, 255) },
      scalar: { dtype: 'F32', shape: [], data: Float32Array.of(42) },
      empty: { dtype: 'F64', shape: [0, 4], data: new Float64Array(0) },
      special: { dtype: 'F32', shape: [3], data: Float32Array.of(Number.NaN, Infinity, -Infinity) },
    };
    const encoded = encodeSafetensors(tensors, { note: 'héllo', format: 'pt' });
    const { tensors: decoded, metadata } = decodeSafetensors(encoded);
    expect(metadata).toEqual({ note: 'héllo', format: 'pt' });
    expect([...decoded.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const d = decoded.get(name);
      expect(d?.dtype, name).toBe(t.dtype);
      expect(d?.shape, name).toEqual(t.shape);
      expect(d?.data.constructor, name).toBe(t.data.constructor);
      expect(Buffer.from(d?.data.buffer ?? new ArrayBuffer(0), d?.data.byteOffset, d?.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(true);
    }
  });

  it('accepts a Map and typed arrays that are views into larger buffers', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const encoded = encodeSafetensors(new Map([['w', { dtype: 'F32', shape: [3], data: backing.subarray(1, 4) } as SafeTensor]]));
    expect([...(decodeSafetensors(encoded).tensors.get('w')?.data ?? [])]).toEqual([1, 2, 3]);
  });

  it('pads the header with spaces to a multiple of 8 and keeps every tensor aligned', () => {
    for (let nameLength = 1; nameLength <= 9; nameLength++) {
      const name = 'x'.repeat(nameLength);
      const encoded = encodeSafetensors({
        [name]: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
        d: { dtype: 'F64', shape: [1], data: Float64Array.of(1) },
        i: { dtype: 'I32', shape: [1], data: Int32Array.of(1) },
      });
      const { length, json } = headerOf(encoded);
      expect(length % 8).toBe(0);
      const text = new TextDecoder().decode(encoded.subarray(8, 8 + length));
      expect(text.trimEnd()).toBe(JSON.stringify(json));
      expect(/^ *$/.test(text.slice(JSON.stringify(json).length))).toBe(true);
      // Largest elements first, so each begins at a multiple of its size.
      expect((json.d as { data_offsets: number[] }).data_offsets).toEqual([0, 8]);
      expect((json.i as { data_offsets: number[] }).data_offsets).toEqual([8, 12]);
      expect((json[name] as { data_offsets: number[] }).data_offsets).toEqual([12, 15]);
    }
  });

  it('omits __metadata__ when there is none, and is deterministic', () => {
    const t = { a: { dtype: 'I32', shape: [1], data: Int32Array.of(5) } } as const;
    expect(Object.keys(headerOf(encodeSafetensors(t)).json)).toEqual(['a']);
    expect(encodeSafetensors(t, { k: 'v' })).toEqual(encodeSafetensors(t, { k: 'v' }));
  });

  it('rejects inconsistent tensors, naming them', () => {
    expect(() => encodeSafetensors({ w: { dtype: 'F64', shape: [2], data: Float32Array.of(1, 2) } })).toThrow("tensor 'w' has dtype F64 but its data is a Float32Array");
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2) } })).toThrow(/tensor 'w' has shape \[2, 2\] \(4 elements\) but 2 data elements/);
    expect(() => encodeSafetensors({ w: { dtype: 'F16' as 'F32', shape: [1], data: Float32Array.of(1) } })).toThrow(/tensor 'w' has unsupported dtype 'F16'/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [-1], data: Float32Array.of(1) } })).toThrow(/tensor 'w' has invalid shape/);
    expect(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } })).toThrow(/'__metadata__' cannot be a tensor name/);
    expect(() => encodeSafetensors({}, { n: 3 as unknown as string })).toThrow(/metadata 'n' must be a string/);
  });
});

describe('a file assembled by hand from the spec', () => {
  it('decodes, including tensors at unaligned file offsets and from a Buffer at an odd byte offset', () => {
    // An unpadded 7-byte-ish header puts the data section at an odd offset in the file.
    const data = new Uint8Array(4 * 2 + 8 + 4 + 3 + 8);
    const view = new DataView(data.buffer);
    view.setFloat32(0, 1.25, true);
    view.setFloat32(4, -3.5, true);
    view.setFloat64(8, 1 / 3, true);
    view.setInt32(16, -123456, true);
    data.set([7, 8, 9], 20);
    view.setBigInt64(23, -(2n ** 40n) - 5n, true);
    const header = {
      __metadata__: { author: 'test' },
      n: { dtype: 'I64', shape: [], data_offsets: [23, 31] },
      u: { dtype: 'U8', shape: [3], data_offsets: [20, 23] },
      f: { dtype: 'F32', shape: [1, 2], data_offsets: [0, 8] },
      d: { dtype: 'F64', shape: [], data_offsets: [8, 16] },
      i: { dtype: 'I32', shape: [1], data_offsets: [16, 20] },
    };
    let text = JSON.stringify(header);
    if ((8 + text.length) % 2 === 0) text += ' ';
    const file = assemble(null, data, text);
    const padded = new Uint8Array(file.length + 1);
    padded.set(file, 1);
    const oddBuffer = Buffer.from(padded.buffer, 1, file.length);

    for (const bytes of [file, oddBuffer]) {
      const { tensors, metadata } = decodeSafetensors(bytes);
      expect(metadata).toEqual({ author: 'test' });
      expect([...(tensors.get('f')?.data ?? [])]).toEqual([1.25, -3.5]);
      expect(tensors.get('f')?.shape).toEqual([1, 2]);
      expect(tensors.get('d')?.data[0]).toBe(1 / 3);
      expect(tensors.get('d')?.shape).toEqual([]);
      expect(tensors.get('i')?.data).toEqual(Int32Array.of(-123456));
      expect(tensors.get('u')?.data).toEqual(Uint8Array.of(7, 8, 9));
      expect(tensors.get('n')?.data).toEqual(BigInt64Array.of(-(2n ** 40n) - 5n));
      expect(tensors.get('n')?.shape).toEqual([]);
    }
  });

  it('returns copies, not views of the input', () => {
    const encoded = encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
    const w = decodeSafetensors(encoded).tensors.get('w');
    encoded.fill(0, encoded.length - 4);
    expect(w?.data[0]).toBe(1);
  });
});

describe('malformed files throw CheckpointFormatError naming the file', () => {
  const f32 = (offsets: number[], shape: number[] = [1]): Record<string, unknown> => ({ dtype: 'F32', shape, data_offsets: offsets });
  const long = new Uint8Array(16);
  new DataView(long.buffer).setBigUint64(0, 2n ** 40n, true);
  const beyond = new Uint8Array(16);
  new DataView(beyond.buffer).setBigUint64(0, 9n, true);
  const badUtf8 = assemble(null, new Uint8Array(0), '{}  ');
  badUtf8[9] = 0xff;

  const cases: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /too short .*0 bytes/],
    ['7 bytes', new Uint8Array(7), /too short .*7 bytes/],
    ['absurd header length', long, /header length 1099511627776 is implausibly large/],
    ['header past the end', beyond, /header length 9 runs past the end of the file \(16 bytes\)/],
    ['zero header length', new Uint8Array(8), /not valid JSON/],
    ['invalid UTF-8', badUtf8, /not valid UTF-8/],
    ['invalid JSON', assemble(null, undefined, '{"a": '), /not valid JSON/],
    ['JSON array', assemble([1, 2]), /header JSON is not an object/],
    ['JSON null', assemble(null), /header JSON is not an object/],
    ['non-object entry', assemble({ a: 5 }), /tensor 'a' entry is not an object/],
    ['missing dtype', assemble({ a: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor 'a' has no string dtype/],
    ['unknown dtype', assemble({ a: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor 'a' has unknown dtype 'F33'/],
    ['unsupported spec dtype', assemble({ a: { dtype: 'I16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)), /tensor 'a' has dtype I16, which meshgrad does not read/],
    ['bad shape', assemble({ a: f32([0, 4], [1.5]) }, new Uint8Array(4)), /tensor 'a' has invalid shape \[1.5\]/],
    ['negative dim', assemble({ a: f32([0, 4], [-1]) }, new Uint8Array(4)), /invalid shape/],
    ['bad offsets', assemble({ a: f32([0]) }, new Uint8Array(4)), /tensor 'a' has invalid data_offsets \[0\]/],
    ['begin after end', assemble({ a: f32([4, 0]) }, new Uint8Array(4)), /begin after end/],
    ['offsets out of bounds', assemble({ a: f32([0, 8], [2]) }, new Uint8Array(4)), /tensor 'a' data_offsets \[0, 8\] run past the data section \(4 bytes\)/],
    ['size mismatch', assemble({ a: f32([0, 8], [3]) }, new Uint8Array(8)), /shape \[3\] of F32 \(12 bytes\) but data_offsets span 8 bytes/],
    ['overlap', assemble({ a: f32([0, 4]), b: f32([2, 6]) }, new Uint8Array(8)), /overlap another tensor/],
    ['gap', assemble({ a: f32([0, 4]), b: f32([8, 12]) }, new Uint8Array(12)), /data section bytes \[4, 8\) belong to no tensor/],
    ['trailing bytes', assemble({ a: f32([0, 4]) }, new Uint8Array(6)), /data section has 6 bytes but the tensors cover only 4/],
    ['metadata not an object', assemble({ __metadata__: 'x' }), /'__metadata__' is not an object/],
    ['metadata value not a string', assemble({ __metadata__: { k: 1 } }), /metadata 'k' is not a string/],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => {
      let error: unknown;
      try {
        decodeSafetensors(bytes, 'model.safetensors');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CheckpointFormatError);
      expect((error as Error).message.startsWith('model.safetensors: ')).toBe(true);
      expect((error as Error).message).toMatch(message);
      expect((error as CheckpointFormatError).file).toBe('model.safetensors');
    });
  }

  it('uses <buffer> as the file name by default', () => {
    expect(() => decodeSafetensors(new Uint8Array(3))).toThrow(/^<buffer>: too short/);
  });
});

// The codec and wire tensors on their own: round trips, and malformed bytes with stable codes.
import { describe, expect, it } from 'vitest';
import { pack, Packr } from 'msgpackr';
import { decodeMessage, encodeMessage, fromWireFloat32, fromWireInt32, PROTOCOL_VERSION, ProtocolError, toWire, type Message } from '../../shared/protocol/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('did not throw');
}

describe('codec', () => {
  it('round-trips every message type', () => {
    const t = toWire(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const messages: Message[] = [
      { type: 'join', protocol: PROTOCOL_VERSION, capabilities: { threads: 2, device: 'cpu', datasets: ['fashion-mnist'] } },
      { type: 'welcome', workerId: 'w1', runId: 'r', model: { name: 'm' }, dataset: 'd', numClasses: 10, sendSamples: false, seed: 1, labelSmoothing: 0, heartbeatMs: 1000, compression: 'none', version: 0, params: [t] },
      { type: 'assign', step: 3, version: 3, shard: 1, batchSize: 8, indices: toWire(new Int32Array([5, 6]), [2]) },
      { type: 'gradients', step: 3, version: 3, shard: 1, samples: 2, loss: 0.5, correct: 1, computeMs: 2, grads: [t] },
      { type: 'params', version: 4, params: [t] },
      { type: 'heartbeat', time: 1 },
      { type: 'error', code: 'STALE_STEP', message: 'x', step: 2 },
      { type: 'leave', reason: 'finished' },
    ];
    for (const m of messages) {
      const back = decodeMessage(encodeMessage(m));
      expect(back.type).toBe(m.type);
    }
    const g = decodeMessage(encodeMessage(messages[3])) as Extract<Message, { type: 'gradients' }>;
    expect([...fromWireFloat32(g.grads[0], 'g')]).toEqual([1, 2, 3, 4]);
  });
  it('is plain msgpack: a tensor is a map with dtype, shape and raw little-endian bytes', () => {
    const bytes = encodeMessage({ type: 'params', version: 1, params: [toWire(new Float32Array([1.5]), [1])] });
    const generic = decodeMessage(pack({ type: 'params', version: 1, params: [{ dtype: 'float32', shape: [1], data: Buffer.from([0, 0, 0xc0, 0x3f]) }] }));
    expect(generic.type).toBe('params');
    expect([...fromWireFloat32((generic as Extract<Message, { type: 'params' }>).params[0], 'p')]).toEqual([1.5]);
    expect(bytes.length).toBeGreaterThan(0);
  });
  it('decodes tensors whose bytes sit at an odd offset', () => {
    const backing = new Uint8Array(9);
    backing.set(new Uint8Array(new Float32Array([7, 8]).buffer), 1);
    expect([...fromWireFloat32({ dtype: 'float32', shape: [2], data: backing.subarray(1) }, 't')]).toEqual([7, 8]);
  });
  it('names malformed input with stable codes', () => {
    expect(codeOf(() => decodeMessage(new Uint8Array([0xc1])))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(new Uint8Array([0x92, 0x01, 0x02])))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(pack({ type: 'launch-missiles' })))).toBe('UNKNOWN_TYPE');
    expect(codeOf(() => decodeMessage(pack({ hello: 1 })))).toBe('UNKNOWN_TYPE');
    expect(codeOf(() => decodeMessage(pack({ type: 'gradients', step: -1 })))).toBe('BAD_MESSAGE');
    expect(codeOf(() => fromWireFloat32({ dtype: 'int32', shape: [1], data: new Uint8Array(4) }, 't'))).toBe('BAD_DTYPE');
    expect(codeOf(() => fromWireFloat32({ dtype: 'float32', shape: [3], data: new Uint8Array(8) }, 't'))).toBe('BAD_SHAPE');
    expect(codeOf(() => fromWireInt32({ dtype: 'int32', shape: [2, -1], data: new Uint8Array(8) }, 't'))).toBe('BAD_SHAPE');
  });
  it('refuses msgpack extension types and msgpackr records, but reads bin holding any bytes', () => {
    const join = { type: 'join', protocol: PROTOCOL_VERSION, capabilities: { threads: 1, device: 'cpu', datasets: [] } };
    expect(decodeMessage(pack(join)).type).toBe('join');
    // Our own encoder never writes one: an undefined field (msgpackr's ext 0) is left out.
    expect(decodeMessage(encodeMessage({ type: 'join', protocol: PROTOCOL_VERSION, name: undefined, capabilities: { threads: 1, device: 'cpu', datasets: [] } })).type).toBe('join');
    expect(codeOf(() => decodeMessage(new Packr({ useRecords: true }).pack(join)))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(new Packr({ structures: [] }).pack(join)))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(pack({ ...join, name: new Date(0) })))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(new Packr({ moreTypes: true }).pack({ ...join, name: new Float64Array(2) })))).toBe('UNDECODABLE');
    // Every ext form: fixext 1/2/4/8/16, ext 8/16/32.
    const head = Buffer.from(encodeMessage({ type: 'heartbeat', time: 1 }));
    for (const ext of [[0xd4, 1, 0], [0xd5, 1, 0, 0], [0xd6, 1, 0, 0, 0, 0], [0xd7, 1, ...new Array(8).fill(0)], [0xd8, 1, ...new Array(16).fill(0)], [0xc7, 1, 1, 0], [0xc8, 0, 1, 1, 0], [0xc9, 0, 0, 0, 1, 1, 0]]) {
      // { type: 'heartbeat', time: <ext> }: replace the value of `time` (the last byte, fixint 1).
      const frame = Buffer.concat([head.subarray(0, head.length - 1), Buffer.from(ext)]);
      expect(codeOf(() => decodeMessage(frame))).toBe('UNDECODABLE');
    }
    // Tensor bytes that look like ext type bytes are data, not structure.
    const bytes = new Uint8Array([0xd4, 0x72, 0xc7, 0xc1, 0xd8, 0xc9, 0xff, 0x00]);
    const m = decodeMessage(encodeMessage({ type: 'params', version: 1, params: [{ dtype: 'float32', shape: [2], data: bytes }] }));
    expect([...(m as Extract<Message, { type: 'params' }>).params[0].data]).toEqual([...bytes]);
    // Trailing bytes after the map, or a truncated one.
    expect(codeOf(() => decodeMessage(Buffer.concat([head, Buffer.from([0x01])])))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(head.subarray(0, head.length - 1)))).toBe('UNDECODABLE');
    expect(codeOf(() => decodeMessage(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])))).toBe('UNDECODABLE');
  });
  it('names a non-finite loss NON_FINITE, and tells which gradients frame failed validation', () => {
    const g = { type: 'gradients', step: 3, version: 3, shard: 1, samples: 2, loss: 0.5, correct: 1, computeMs: 2, grads: [toWire(new Float32Array(1), [1])] };
    const err = (value: unknown): ProtocolError => {
      try {
        decodeMessage(pack(value));
      } catch (e) {
        if (e instanceof ProtocolError) return e;
        throw e;
      }
      throw new Error('did not throw');
    };
    expect(decodeMessage(pack(g)).type).toBe('gradients');
    for (const loss of [NaN, Infinity, -Infinity]) {
      const e = err({ ...g, loss });
      expect(e.code).toBe('NON_FINITE');
      expect(e.frame).toEqual({ type: 'gradients', step: 3, version: 3, shard: 1 });
    }
    const { grads: _grads, ...noGrads } = g;
    const bad = [{ ...g, samples: 0 }, { ...g, samples: -1 }, { ...g, samples: 1.5 }, { ...g, computeMs: Infinity }, { ...g, computeMs: -1 }, { ...g, computeMs: NaN }, noGrads, { ...g, grads: [{ dtype: 'float64', shape: [1], data: new Uint8Array(8) }] }, { ...g, grads: [{ dtype: 'float32', shape: [1], data: [0, 0, 0, 0] }] }];
    for (const v of bad) {
      const e = err(v);
      expect(e.code).toBe('BAD_MESSAGE');
      expect(e.frame).toEqual({ type: 'gradients', step: 3, version: 3, shard: 1 });
    }
    expect(err({ ...g, step: 'soon', samples: 0 }).frame).toEqual({ type: 'gradients', step: undefined, version: 3, shard: 1 });
  });
});

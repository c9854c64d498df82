// The codec and wire tensors on their own: round trips, and malformed bytes with stable codes.
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { decodeMessage, encodeMessage, fromWireFloat32, fromWireInt32, ProtocolError, toWire, type Message } from '../../shared/protocol/index.js';

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
      { type: 'join', protocol: 1, capabilities: { threads: 2, device: 'cpu', datasets: ['fashion-mnist'] } },
      { type: 'welcome', workerId: 'w1', runId: 'r', model: { name: 'm' }, dataset: 'd', numClasses: 10, sendSamples: false, seed: 1, labelSmoothing: 0, heartbeatMs: 1000, version: 0, params: [t] },
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
});
